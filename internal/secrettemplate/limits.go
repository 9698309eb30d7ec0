package secrettemplate

import (
	"bytes"
	"errors"
	"strconv"
)

const (
	// MaxKeyBytes bounds one rendered key, and every value a function computes on the way.
	MaxKeyBytes = 64 << 10
	// MaxDataBytes bounds the rendered keys together (names and values), well under the
	// 1 MiB of a Secret.
	MaxDataBytes = 512 << 10

	// maxWorkBytes bounds what the functions of one Render read and produce in total, so that
	// a template reassigning a variable through b64enc or printf cannot burn CPU for long.
	maxWorkBytes = 4 << 20
	// maxFormatWidth bounds a printf width or precision, which fmt allocates before anything
	// can look at the result.
	maxFormatWidth = 1024
)

// meter counts the bytes the functions of one Render read and produce.
type meter struct{ used int }

// charge adds n bytes of work for fn.
func (m *meter) charge(fn string, n int) error {
	m.used += n
	if m.used > maxWorkBytes {
		return &funcError{fn, "the templates compute more than 4 MiB of text in all"}
	}
	return nil
}

// arg refuses an argument over MaxKeyBytes before fn works on it.
func (m *meter) arg(fn, s string) error {
	if len(s) > MaxKeyBytes {
		return &funcError{fn, "the argument is over 64 KiB"}
	}
	return m.charge(fn, len(s))
}

// before refuses to format what would come to over MaxKeyBytes, before fmt allocates it.
func (m *meter) before(fn string, estimate int) error {
	if estimate > MaxKeyBytes {
		return &funcError{fn, "the result would be over 64 KiB"}
	}
	return m.charge(fn, estimate)
}

// result refuses a result over MaxKeyBytes.
func (m *meter) result(fn, s string) (string, error) {
	if len(s) > MaxKeyBytes {
		return "", &funcError{fn, "the result is over 64 KiB"}
	}
	return s, m.charge(fn, len(s))
}

// estimate is what formatting args comes to, give or take the verbs: a non-string argument
// (a number, a time) prints short.
func estimate(n int, args []any) int {
	for _, a := range args {
		if s, ok := a.(string); ok {
			n += len(s)
		} else {
			n += 64
		}
	}
	return n
}

// checkFormat refuses * widths, argument indexes, and widths or precisions over
// maxFormatWidth, and returns the sum of the widths and precisions.
func checkFormat(format string) (int, error) {
	sum := 0
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			continue
		}
	directive:
		for i++; i < len(format); i++ {
			switch c := format[i]; {
			case c == '*':
				return 0, &funcError{"printf", "* widths are not available"}
			case c == '[':
				// %[1]s%[1]s... would print one argument many times over.
				return 0, &funcError{"printf", "argument indexes are not available"}
			case c >= '0' && c <= '9':
				j := i
				for j < len(format) && format[j] >= '0' && format[j] <= '9' {
					j++
				}
				n, err := strconv.Atoi(format[i:j])
				if err != nil || n > maxFormatWidth {
					return 0, &funcError{"printf", "a width or precision is over 1024"}
				}
				sum += n
				i = j - 1
			case c == '%' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
				break directive
			}
		}
	}
	return sum, nil
}

var errTooLarge = errors.New("the value is over 64 KiB")

// limitedBuffer fails a write that would take it over MaxKeyBytes, which stops the template.
type limitedBuffer struct{ bytes.Buffer }

func (w *limitedBuffer) Write(p []byte) (int, error) {
	if w.Len()+len(p) > MaxKeyBytes {
		return 0, errTooLarge
	}
	return w.Buffer.Write(p)
}
