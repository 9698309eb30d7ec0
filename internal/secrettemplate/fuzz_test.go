package secrettemplate

import (
	"regexp"
	"testing"
	"time"
)

// tokenLike is a token that cannot appear by chance in the parts of an error that are not
// scrubbed (the key names and positions here).
var tokenLike = regexp.MustCompile(`^[A-Za-z0-9]{16,64}$`)

// FuzzRender: whatever the template and the token, Render does not panic, returns all keys or
// no map, and an error never holds the token.
func FuzzRender(f *testing.F) {
	for _, tc := range funcCases {
		f.Add(tc.src, "tok3nV4lue0123456789")
	}
	f.Add(`{{ $x := .AccessToken }}{{ $x = print $x $x }}{{ $x = print $x $x }}{{ b64dec $x }}`, "QUJDREVGR0hJSktMTU5PUA")
	f.Add(`{{ printf "%s|%q|%x|%v" .AccessToken .AccessToken .AccessToken . }}`, "abcdefghijklmnop1234")
	f.Add(`{{ slice .AccessToken 1 | b64dec | quote | toJson }}`, "0aGVsbG8gd29ybGQhIQ==")
	f.Fuzz(func(t *testing.T, src, token string) {
		c, err := Compile(spec(map[string]string{"k": src, "plain": "{{ .AccessToken }}"}), true)
		if err != nil {
			return
		}
		in := Input{AccessToken: token, RefreshToken: token, AccessTokenSecret: token, Scope: "s", ExpiresAt: time.Unix(1893553445, 0)}
		out, err := c.Render(in)
		switch {
		case err != nil && out != nil:
			t.Fatalf("Render returned %d keys and %v", len(out), err)
		case err == nil && len(out) != 2:
			t.Fatalf("Render returned %d keys without an error", len(out))
		case err == nil && string(out["plain"]) != token:
			t.Fatalf("plain = %q, want the token", out["plain"])
		case err != nil && tokenLike.MatchString(token) && regexp.MustCompile(`(?i)`+token).MatchString(err.Error()):
			t.Fatalf("the error holds the token: %v", err)
		}
	})
}
