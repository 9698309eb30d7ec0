// Package safetext makes server-provided text safe to put into an error, a condition or a log:
// valid UTF-8, no control characters, bounded length, and (through Scrub) no secrets.
package safetext

import (
	"strings"
	"unicode"
)

// Clip returns s as valid UTF-8 with control characters turned into spaces, trimmed, and cut
// to at most limit runes (with an ellipsis when cut).
func Clip(s string, limit int) string {
	s = strings.TrimSpace(normalize(s))
	if i := cutIndex(s, limit); i >= 0 {
		return s[:i] + ellipsis
	}
	return s
}

// ellipsis marks text that Clip or Scrub cut at the limit.
const ellipsis = "…"

// normalize makes s valid UTF-8 and turns control characters into spaces. It maps rune by rune,
// so it never joins two pieces of text that were apart.
func normalize(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// cutIndex is the byte index at which s must be cut to keep limit runes, or -1 when s is
// short enough. A negative limit never cuts.
func cutIndex(s string, limit int) int {
	n := 0
	for i := range s {
		if n == limit {
			return i
		}
		n++
	}
	return -1
}
