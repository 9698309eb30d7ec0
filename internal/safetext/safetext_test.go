package safetext

import "testing"

func TestClip(t *testing.T) {
	tests := map[string]struct {
		in    string
		limit int
		want  string
	}{
		"short text unchanged":         {in: "invalid_grant", limit: 20, want: "invalid_grant"},
		"control characters to spaces": {in: "a\nb\tc\x00", limit: 20, want: "a b c"},
		"invalid UTF-8 replaced":       {in: "a\xffb", limit: 20, want: "a\uFFFDb"},
		"cut at the limit, in runes":   {in: "ééééé", limit: 3, want: "ééé…"},
		"exactly the limit":            {in: "abc", limit: 3, want: "abc"},
		"trimmed":                      {in: "  x  ", limit: 3, want: "x"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Clip(tc.in, tc.limit); got != tc.want {
				t.Fatalf("Clip(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
			}
		})
	}
}
