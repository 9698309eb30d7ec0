// Package safetext makes server-provided text safe to put into an error, a condition or a log:
// valid UTF-8, no control characters, bounded length.
package safetext

import (
	"strings"
	"unicode"
)

// Clip returns s as valid UTF-8 with control characters turned into spaces, trimmed, and cut
// to at most limit runes (with an ellipsis when cut).
func Clip(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	n := 0
	for i := range s {
		if n == limit {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
