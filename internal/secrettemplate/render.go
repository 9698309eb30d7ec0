package secrettemplate

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/idptoken/idptoken-operator/internal/safetext"
)

var (
	execPos = regexp.MustCompile(`^(\d+):(\d+): `)
	// execCalling finds the function a text/template "error calling" names.
	execCalling = regexp.MustCompile(`>: error calling (\w+): `)
	// execSafe are the text/template messages made only of names and types, never of values.
	execSafe = []*regexp.Regexp{
		regexp.MustCompile(`>: (wrong type for value; expected [\w.*\[\] {}]+; got [\w.*\[\] {}]+)$`),
		regexp.MustCompile(`>: (wrong number of args for \w+: want (?:at least )?\d+ got \d+)$`),
		regexp.MustCompile(`>: (can't evaluate field \w+ in type [\w.*\[\] {}]+)$`),
	}
)

// Render renders every key for in: all of them, or none and an error. Without
// includeRefreshToken, in.RefreshToken is not read at all. The error names each failing key
// (in sorted order), the position in its template and the function that failed, never a value.
func (t *Template) Render(in Input) (map[string][]byte, error) {
	if !t.includeRefreshToken {
		in.RefreshToken = ""
	}
	m := &meter{}
	funcs := funcMap(m)
	out := make(map[string][]byte, len(t.keys))
	var msgs []string
	total := 0
	for _, k := range t.keys {
		tmpl, err := newTemplate(k, t.sources[k], funcs)
		if err != nil {
			// Compile parsed the same text with the same function names.
			return nil, fmt.Errorf("key %q: the template no longer parses", k)
		}
		var w limitedBuffer
		if err := tmpl.Execute(&w, in); err != nil {
			msgs = append(msgs, describe(k, err, in.secrets()))
			continue
		}
		out[k] = append([]byte{}, w.Bytes()...)
		total += len(k) + w.Len()
	}
	if len(msgs) > 0 {
		return nil, errors.New(strings.Join(msgs, "; "))
	}
	if total > MaxDataBytes {
		return nil, fmt.Errorf("the rendered data is %d bytes, over the limit of %d (512 KiB)", total, MaxDataBytes)
	}
	return out, nil
}

// describe words a render error of key k without the values text/template may quote: the
// position and function are read from the error, the reason is a fixed text or a message made
// of names and types, and that is scrubbed of the secrets as a second guard.
func describe(k string, err error, secrets []string) string {
	if errors.Is(err, errTooLarge) {
		return fmt.Sprintf("key %q: %s", k, errTooLarge)
	}
	msg := strings.TrimPrefix(err.Error(), "template: "+k+":")
	pos := ""
	if m := execPos.FindStringSubmatch(msg); m != nil {
		pos = " at " + position(m[1]+":"+m[2])
	}
	reason := "the template cannot be executed for this token"
	var fe *funcError
	switch {
	case errors.As(err, &fe):
		reason = fe.Error()
	case execCalling.MatchString(msg):
		fn := execCalling.FindStringSubmatch(msg)[1]
		if !slices.Contains(available, fn) {
			break
		}
		reason = fn + ": failed"
		if r, ok := builtinReasons[fn]; ok {
			reason = fn + ": " + r
		}
	default:
		for _, re := range execSafe {
			if m := re.FindStringSubmatch(msg); m != nil {
				reason = strings.ReplaceAll(m[1], "secrettemplate.Input", "the template data (.)")
				break
			}
		}
	}
	return fmt.Sprintf("key %q%s: %s", k, pos, safetext.Scrub(reason, maxMessageRunes, secrets...))
}
