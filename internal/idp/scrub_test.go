package idp

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// randomToken is a token-shaped value nobody told Scrub about, like one an IdP mints itself.
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// leakedSecret returns the name of the first secret msg contains, or "". Tests print that
// name and the message length, never the message while it may hold a secret.
func leakedSecret(msg string, secrets map[string]string) string {
	for name, v := range secrets {
		if v != "" && strings.Contains(msg, v) {
			return name
		}
	}
	return ""
}

// TestRefreshErrorScrubsEchoedSecrets has a hostile IdP put back into error_description (and
// once into error) everything it received: the refresh token and client secret quoted alone,
// where only their names catch them, the raw form body, the Authorization header, and a token
// of its own. None of it may reach the error, which ends up in a condition and an Event.
func TestRefreshErrorScrubsEchoedSecrets(t *testing.T) {
	tests := map[string]struct {
		style oauth2.AuthStyle
		// form answers GitHub-style: 200 with a form-encoded error body.
		form bool
		// codeIsRefreshToken puts the refresh token into "error" too.
		codeIsRefreshToken bool
		wantKind           ErrorKind
		wantCode           string
	}{
		"JSON 400, secret in params":      {style: oauth2.AuthStyleInParams, wantKind: InvalidGrant, wantCode: "invalid_grant"},
		"JSON 400, Basic credentials":     {style: oauth2.AuthStyleInHeader, wantKind: InvalidGrant, wantCode: "invalid_grant"},
		"GitHub form 200":                 {style: oauth2.AuthStyleInParams, form: true, wantKind: InvalidGrant, wantCode: "invalid_grant"},
		"refresh token as the error code": {style: oauth2.AuthStyleInParams, codeIsRefreshToken: true, wantKind: Rejected, wantCode: "[redacted]"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			minted := randomToken(t)
			f := newFakeIDP(t, nonRotating, tc.style)
			f.hook = func(w http.ResponseWriter, r *http.Request) bool {
				body := r.PostForm // parsed by the fake before the hook
				rt, secret := r.PostForm.Get("refresh_token"), r.PostForm.Get("client_secret")
				if _, s, ok := r.BasicAuth(); ok {
					secret, _ = url.QueryUnescape(s)
				}
				desc := fmt.Sprintf("mine: %s; refresh token '%s' rejected for client secret '%s'; auth %s; request %s",
					minted, rt, secret, r.Header.Get("Authorization"), body.Encode())
				code := "invalid_grant"
				if tc.codeIsRefreshToken {
					code = rt
				}
				if tc.form {
					w.Header().Set("Content-Type", "application/x-www-form-urlencoded")
					_, _ = io.WriteString(w, url.Values{"error": {code}, "error_description": {desc}}.Encode())
					return true
				}
				writeJSON(w, http.StatusBadRequest, map[string]any{"error": code, "error_description": desc})
				return true
			}
			_, err := (&Refresher{HTTPClient: f.httpClient(t)}).Refresh(testContext(t), f.endpoint(), initialRT)
			if err == nil {
				t.Fatal("refresh succeeded against an IdP that always fails")
			}
			msg := err.Error()
			secrets := map[string]string{
				"refresh token":           initialRT,
				"client secret":           testClientSecret,
				"URL-encoded form body":   "refresh_token=" + url.QueryEscape(initialRT),
				"Basic credentials":       base64.StdEncoding.EncodeToString([]byte(testClientID + ":" + testClientSecret)),
				"IdP-minted token":        minted,
				"a part of the IdP token": minted[:20],
			}
			if leaked := leakedSecret(msg, secrets); leaked != "" {
				t.Fatalf("the error (%d bytes) contains the %s", len(msg), leaked)
			}
			if !strings.Contains(msg, "[redacted]") {
				t.Errorf("Error() = %q, want [redacted] where the secrets were", msg)
			}
			var re *RefreshError
			if !errors.As(err, &re) || re.Kind != tc.wantKind || re.Code != tc.wantCode {
				t.Fatalf("got %v, want a %v *RefreshError with code %q", err, tc.wantKind, tc.wantCode)
			}
			if errors.Is(err, ErrInvalidGrant) != (tc.wantKind == InvalidGrant) || IsInvalidClient(err) {
				t.Errorf("classification changed: %v", err)
			}
		})
	}
}
