package safetext

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// keptSecret returns the index of the first secret that out still contains outside its
// Redactions (ignoring ASCII case, as Scrub does), or -1. Failure messages print that index
// and lengths, never the secret or an output that contains one.
func keptSecret(out string, secrets []string) int {
	for _, piece := range strings.Split(asciiLower(out), asciiLower(Redaction)) {
		for i, s := range secrets {
			if s != "" && (strings.Contains(piece, asciiLower(s)) || strings.Contains(piece, asciiLower(url.QueryEscape(s)))) {
				return i
			}
		}
	}
	return -1
}

// longestTokenRun is the longest run of the token alphabet in s that keep does not allow.
func longestTokenRun(s string, keep func(string) bool) int {
	longest := 0
	for _, run := range strings.FieldsFunc(s, func(r rune) bool { return r >= utf8.RuneSelf || !isTokenByte(byte(r)) }) {
		if len(run) > longest && !keep(run) {
			longest = len(run)
		}
	}
	return longest
}

func TestScrub(t *testing.T) {
	tests := map[string]struct {
		text    string
		limit   int
		secrets []string
		want    string
	}{
		"plain description unchanged": {
			text: "The refresh token is invalid or expired.", limit: 200,
			want: "The refresh token is invalid or expired.",
		},
		"no secrets still cleans like Clip": {text: "  a\nb\x00  ", limit: 200, want: "a b"},
		"short secret removed everywhere": {
			text: "token rt-short is bad; rt-short again", limit: 200, secrets: []string{"rt-short"},
			want: "token [redacted] is bad; [redacted] again",
		},
		"empty secret ignored": {text: "nothing to hide", limit: 200, secrets: []string{""}, want: "nothing to hide"},
		"URL query encoded echo": {
			text: "bad body refresh_token=a+b%2Fc%2Bd%3D&x=1", limit: 200, secrets: []string{"a b/c+d="},
			want: "bad body refresh_token=[redacted]&x=1",
		},
		"URL encoded echo with lowercase hex": {
			text: "got a+b%2fc%2bd%3d", limit: 200, secrets: []string{"a b/c+d="},
			want: "got [redacted]",
		},
		"URL path encoded echo": {text: "got a%20b%2Fc.", limit: 200, secrets: []string{"a b/c"}, want: "got [redacted]."},
		"JSON escaped echo": {
			text: `body {"client_secret":"q\"s\\t\u003c/x\u003e"}`, limit: 200, secrets: []string{`q"s\t</x>`},
			want: `body {"client_secret":"[redacted]"}`,
		},
		"JSON escaped echo without HTML escaping, slash escaped": {
			text: `body "q\"s<\/x>"`, limit: 200, secrets: []string{`q"s</x>`},
			want: `body "[redacted]"`,
		},
		"secret differing in ASCII case": {text: "got ABCdef!", limit: 200, secrets: []string{"abcDEF"}, want: "got [redacted]!"},
		"overlapping secrets": {
			text: "x abcdefghi y", limit: 200, secrets: []string{"abcdef", "defghi"},
			want: "x [redacted] y",
		},
		"adjacent secrets give one redaction": {text: "x abc:def y", limit: 200, secrets: []string{"abc", ":def"}, want: "x [redacted] y"},
		"shorter secret inside a longer one": {
			text: "x ab-cd-ef y", limit: 200, secrets: []string{"cd", "ab-cd-ef"},
			want: "x [redacted] y",
		},
		"secret with a control character": {text: "x a\nb y", limit: 200, secrets: []string{"a\nb"}, want: "x [redacted] y"},
		"secret that is not UTF-8 takes the whole character": {
			text: "café au lait", limit: 200, secrets: []string{"\xa9"},
			want: "caf[redacted] au lait",
		},
		"19 characters of the alphabet kept": {text: "id 1234567890abcd.efgh, ok", limit: 200, want: "id 1234567890abcd.efgh, ok"},
		"20 characters of the alphabet cut":  {text: "id 1234567890abcd.efghi, ok", limit: 200, want: "id [redacted], ok"},
		"JWT cut": {
			text: "bad assertion eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl!", limit: 200,
			want: "bad assertion [redacted]!",
		},
		"standard base64 cut":     {text: "key=AbC+/xyz0123456789+/==", limit: 200, want: "[redacted]"},
		"snake_case words cut":    {text: "field refresh_token_expires_in bad", limit: 200, want: "field [redacted] bad"},
		"run around a secret cut": {text: "aaaaaaaaaaSECRETbbbbbbbbbb", limit: 200, secrets: []string{"SECRET"}, want: "[redacted]"},
		"cut at the limit":        {text: "ééééé", limit: 3, want: "ééé…"},
		"cut never splits a redaction": {
			text: "error rt-x tail", limit: 10, secrets: []string{"rt-x"},
			want: "error …",
		},
		"cut just after a redaction": {text: "rt-x tail", limit: 10, secrets: []string{"rt-x"}, want: "[redacted]…"},
		"server text already saying [redacted]": {
			text: "[redacted] and [redacted]", limit: 200, secrets: []string{"a"},
			want: "[red[redacted]cted] [redacted]nd [red[redacted]cted]",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Scrub(tc.text, tc.limit, tc.secrets...)
			if i := keptSecret(got, tc.secrets); i >= 0 {
				t.Fatalf("output (%d bytes) keeps secret #%d", len(got), i)
			}
			if got != tc.want {
				t.Errorf("Scrub = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestScrubCode(t *testing.T) {
	tests := map[string]struct {
		code    string
		secrets []string
		want    string
	}{
		"short code":                         {code: "invalid_grant", want: "invalid_grant"},
		"long OAuth2 code kept":              {code: "temporarily_unavailable", want: "temporarily_unavailable"},
		"long GitHub code kept":              {code: "incorrect_client_credentials", want: "incorrect_client_credentials"},
		"named secret removed even if wordy": {code: "abcdefghijklmnopqrstuvwxyz", secrets: []string{"abcdefghijklmnopqrstuvwxyz"}, want: "[redacted]"},
		"short secret as the code":           {code: "rt-x", secrets: []string{"rt-x"}, want: "[redacted]"},
		"token-shaped code cut":              {code: "invalid_token_eyJhbGciOiJSUzI1NiJ9", want: "[redacted]"},
		"mixed case long run cut":            {code: "Invalid_Client_Credentials", want: "[redacted]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := ScrubCode(tc.code, 64, tc.secrets...)
			if i := keptSecret(got, tc.secrets); i >= 0 {
				t.Fatalf("output (%d bytes) keeps secret #%d", len(got), i)
			}
			if got != tc.want {
				t.Errorf("ScrubCode = %q, want %q", got, tc.want)
			}
		})
	}
}

// FuzzScrub checks Scrub's promises on arbitrary text and secrets: no secret (of any length from
// 1) survives outside a Redaction, no token-shaped run survives, the output is what Clip
// promises, and a cut only shortens the uncut result without splitting a Redaction. One secret
// is taken from the text itself, so that most inputs contain a secret to find.
func FuzzScrub(f *testing.F) {
	seeds := []struct {
		text, s1, s2 string
		from, n      uint8
		limit        int
	}{
		{"invalid_grant: token rt-SECRET-1 is expired", "rt-SECRET-1", "", 0, 0, 200},
		{"refresh_token=a+b%2Fc&client_secret=s%3Ds", "a b/c", "s=s", 0, 0, 200},
		{`{"error":"x","error_description":"got \"q\\\"s\""}`, `q"s`, "", 3, 5, 200},
		{"x abcdefghi y", "abcdef", "defghi", 2, 4, 200},
		{"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "", "", 0, 10, 20},
		{"café\xffau\nlait…", "\xa9", "…", 1, 3, 5},
		{"[redacted] d]x", "d]x", "a", 0, 1, 12},
		{"error rt-x tail", "rt-x", "", 0, 0, 10},
	}
	for _, s := range seeds {
		f.Add(s.text, s.s1, s.s2, s.from, s.n, s.limit)
	}
	f.Fuzz(func(t *testing.T, text, s1, s2 string, from, n uint8, limit int) {
		limit %= 300
		secrets := []string{s1, s2}
		if int(from) < len(text) {
			secrets = append(secrets, text[from:min(len(text), int(from)+int(n))])
		}
		for name, scrub := range map[string]struct {
			fn   func(string, int, ...string) string
			keep func(string) bool
		}{
			"Scrub":     {fn: Scrub, keep: func(string) bool { return false }},
			"ScrubCode": {fn: ScrubCode, keep: isCodeWord},
		} {
			full := scrub.fn(text, -1, secrets...)
			if i := keptSecret(full, secrets); i >= 0 {
				t.Fatalf("%s keeps secret #%d (%d bytes)", name, i, len(secrets[i]))
			}
			if n := longestTokenRun(full, scrub.keep); n >= MinTokenRun {
				t.Fatalf("%s keeps a token-shaped run of %d characters", name, n)
			}
			if !utf8.ValidString(full) || strings.IndexFunc(full, unicode.IsControl) >= 0 || strings.TrimSpace(full) != full {
				t.Fatalf("%s output is not clean text", name)
			}
			out := scrub.fn(text, limit, secrets...)
			if out == full {
				continue
			}
			cut, ok := strings.CutSuffix(out, ellipsis)
			if !ok || !strings.HasPrefix(full, cut) || (limit >= 0 && utf8.RuneCountInString(cut) > limit) {
				t.Fatalf("%s with limit %d is not a cut of the unlimited output", name, limit)
			}
			for k := strings.Index(full, Redaction); k >= 0 && k < len(cut); {
				if len(cut) < k+len(Redaction) {
					t.Fatalf("%s cut through a redaction", name)
				}
				next := strings.Index(full[k+1:], Redaction)
				if next < 0 {
					break
				}
				k += 1 + next
			}
		}
	})
}
