package secrettemplate

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// builtins are the text/template functions a template may use: they compute without
// allocating more than their arguments. print and printf are replaced by bounded versions.
var builtins = []string{"and", "eq", "ge", "gt", "index", "le", "len", "lt", "ne", "not", "or", "slice"}

// disabled are text/template builtins a template may not use: call reaches functions the
// data would have to hold (Input holds none), and the escapers and println are not needed.
// Compile refuses them; they are also replaced by functions that fail, as a second guard.
var disabled = []string{"call", "html", "js", "println", "urlquery"}

// available are the functions a template may use, sorted.
var available = func() []string {
	names := slices.Collect(maps.Keys(funcMap(nil)))
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(disabled, n) })
	return slices.Sorted(slices.Values(append(names, builtins...)))
}()

// builtinReasons explains the failure of a builtin without quoting its arguments.
var builtinReasons = map[string]string{
	"index": "index out of range, or the value cannot be indexed",
	"slice": "slice bounds out of range, or the value cannot be sliced",
	"len":   "the value has no length",
	"eq":    "the values cannot be compared",
	"ne":    "the values cannot be compared",
	"lt":    "the values cannot be compared",
	"le":    "the values cannot be compared",
	"gt":    "the values cannot be compared",
	"ge":    "the values cannot be compared",
}

// funcError is a function's failure, worded without its arguments.
type funcError struct{ fn, reason string }

func (e *funcError) Error() string { return e.fn + ": " + e.reason }

// stringFunc makes a bounded template function of a string function.
func (m *meter) stringFunc(fn string, f func(string) string) func(string) (string, error) {
	return func(s string) (string, error) {
		if err := m.arg(fn, s); err != nil {
			return "", err
		}
		return m.result(fn, f(s))
	}
}

// funcMap is the fixed function set, bound to the meter of one Render.
func funcMap(m *meter) template.FuncMap {
	fm := template.FuncMap{
		"b64enc": m.stringFunc("b64enc", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }),
		"b64dec": func(s string) (string, error) {
			if err := m.arg("b64dec", s); err != nil {
				return "", err
			}
			b, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return "", &funcError{"b64dec", "the argument is not valid standard base64"}
			}
			return m.result("b64dec", string(b))
		},
		"quote": m.stringFunc("quote", strconv.Quote),
		"upper": m.stringFunc("upper", strings.ToUpper),
		"lower": m.stringFunc("lower", strings.ToLower),
		"trim":  m.stringFunc("trim", strings.TrimSpace),
		"toJson": func(v any) (string, error) {
			if s, ok := v.(string); ok {
				if err := m.arg("toJson", s); err != nil {
					return "", err
				}
			}
			s, err := toJSON(v)
			if err != nil {
				return "", &funcError{"toJson", "the value cannot be encoded as JSON"}
			}
			return m.result("toJson", s)
		},
		"default":   defaultFunc,
		"rfc3339":   formatTime,
		"unixEpoch": unixEpoch,
		"print": func(args ...any) (string, error) {
			if err := m.before("print", estimate(0, args)); err != nil {
				return "", err
			}
			return m.result("print", fmt.Sprint(args...))
		},
		"printf": func(format string, args ...any) (string, error) {
			widths, err := checkFormat(format)
			if err != nil {
				return "", err
			}
			if err := m.before("printf", estimate(len(format)+widths, args)); err != nil {
				return "", err
			}
			return m.result("printf", fmt.Sprintf(format, args...))
		},
	}
	for _, name := range disabled {
		fm[name] = func(...any) (string, error) { return "", &funcError{name, "is not available"} }
	}
	return fm
}

// toJSON encodes v without HTML escaping; a time is its rfc3339 string.
func toJSON(v any) (string, error) {
	if t, ok := v.(time.Time); ok {
		v = formatTime(t)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// defaultFunc is sprig's default: given when it is set and not empty, else def.
func defaultFunc(def any, given ...any) any {
	if len(given) == 0 || empty(given[0]) {
		return def
	}
	return given[0]
}

// empty is true for nil, "", 0, false and the zero time.
func empty(v any) bool {
	if t, ok := v.(time.Time); ok {
		return t.IsZero()
	}
	rv := reflect.ValueOf(v)
	return !rv.IsValid() || rv.IsZero()
}

// unixEpoch is the time in decimal seconds since 1970, or "" for the zero time.
func unixEpoch(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.Unix(), 10)
}
