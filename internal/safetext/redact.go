package safetext

import (
	"fmt"
	"io"
)

// Redacted stands for a secret value in formatted output: `""` when there is none, so that a
// missing token still shows, and <redacted> otherwise.
func Redacted(s string) string {
	if s == "" {
		return `""`
	}
	return "<redacted>"
}

// FormatRedacted implements fmt.Formatter for secret-holding types, so that every verb,
// including %+v and %#v, goes through the type's redacting String form s.
func FormatRedacted(f fmt.State, verb rune, typeName, s string) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, typeName+s)
	case verb == 'q':
		_, _ = fmt.Fprintf(f, "%q", s)
	default:
		_, _ = io.WriteString(f, s)
	}
}
