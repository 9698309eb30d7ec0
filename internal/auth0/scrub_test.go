package auth0

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// randomToken is a token-shaped value nobody told Scrub about, like one a server mints itself.
func randomToken(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// shortClientSecret is shorter than safetext.MinTokenRun: echoed on its own, only its name can
// catch it, so these tests fail if the secret is not passed to the scrubbing.
const shortClientSecret = "m2m-SECRET-short"

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

// TestTokenErrorScrubsEchoedClientSecret has /oauth/token put back into error_description
// the client secret it received, alone (only its name catches it), inside the form body it
// was sent in, and next to a token of its own.
func TestTokenErrorScrubsEchoedClientSecret(t *testing.T) {
	tests := map[string]struct {
		status   int
		code     func(secret string) string
		wantKind ErrorKind
		wantCode string
	}{
		"401 access_denied": {
			status: http.StatusUnauthorized, code: func(string) string { return "access_denied" },
			wantKind: Unauthorized, wantCode: "access_denied",
		},
		"503 with the secret as the error code": {
			status: http.StatusServiceUnavailable, code: func(s string) string { return s },
			wantKind: ServerError, wantCode: "[redacted]",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			minted := randomToken(t)
			f := newFakeAuth0(t)
			f.tokenHook = func(w http.ResponseWriter, r *http.Request) bool {
				secret := r.PostForm.Get("client_secret")
				body, _ := json.Marshal(map[string]string{
					"error": tc.code(secret),
					"error_description": fmt.Sprintf("mine: %s; client secret '%s' is wrong; request %s",
						minted, secret, r.PostForm.Encode()),
				})
				writeJSON(w, tc.status, string(body))
				return true
			}
			_, err := f.client(t, func(cfg *Config) { cfg.ClientSecret = shortClientSecret }).Authenticate(testContext(t))
			if err == nil {
				t.Fatal("Authenticate succeeded against a token endpoint that always fails")
			}
			msg := err.Error()
			if leaked := leakedSecret(msg, map[string]string{"client secret": shortClientSecret, "minted token": minted}); leaked != "" {
				t.Fatalf("the error (%d bytes) contains the %s", len(msg), leaked)
			}
			if !strings.Contains(msg, "[redacted]") {
				t.Errorf("Error() = %q, want [redacted] where the secret was", msg)
			}
			e, ok := kindOf(err)
			if !ok || e.Kind != tc.wantKind || e.Code != tc.wantCode {
				t.Fatalf("got %v, want a %v *APIError with code %q", err, tc.wantKind, tc.wantCode)
			}
		})
	}
}

// TestManagementAPIErrorScrubsEchoedSecrets has the Management API put back into its message
// the M2M access token it received, the client secret the tenant's client holds (the token
// endpoint is the same host), and a token of its own. Both secrets are shorter than
// safetext.MinTokenRun and quoted, so only their names catch them.
func TestManagementAPIErrorScrubsEchoedSecrets(t *testing.T) {
	tests := map[string]struct {
		status        int
		header        map[string]string
		errorCode     string
		is            func(error) bool
		wantErrorCode string
	}{
		"404 inexistent_user": {
			status: http.StatusNotFound, errorCode: "inexistent_user",
			is: IsNotFound, wantErrorCode: "inexistent_user",
		},
		"403 insufficient_scope": {
			status: http.StatusForbidden, errorCode: "insufficient_scope",
			is: IsMissingScope, wantErrorCode: "insufficient_scope",
		},
		"429 beyond MaxRateLimitWait": {
			status: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "120"}, errorCode: "too_many_requests",
			is: func(err error) bool { _, ok := IsRateLimited(err); return ok }, wantErrorCode: "too_many_requests",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			minted := randomToken(t)
			f := newFakeAuth0(t)
			f.tokenHook = func(w http.ResponseWriter, _ *http.Request) bool {
				// Any client secret will do: the short one is what the client holds.
				writeJSON(w, http.StatusOK, `{"access_token":"`+m2mTokenPrefix+`1","token_type":"Bearer","expires_in":86400}`)
				return true
			}
			f.apiHook = func(w http.ResponseWriter, r *http.Request) bool {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				token := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
				body, _ := json.Marshal(map[string]any{
					"statusCode": tc.status,
					"message": fmt.Sprintf("mine: %s; token '%s' (Authorization: %s) of client '%s' with secret '%s'",
						minted, token, r.Header.Get("Authorization"), testClientID, shortClientSecret),
					"errorCode": tc.errorCode,
				})
				writeJSON(w, tc.status, string(body))
				return true
			}
			_, err := f.client(t, func(cfg *Config) { cfg.ClientSecret = shortClientSecret }).GetUser(testContext(t), "github|42")
			if err == nil {
				t.Fatal("GetUser succeeded against an API that always fails")
			}
			msg := err.Error()
			secrets := map[string]string{
				"access token":  m2mTokenPrefix + "1",
				"client secret": shortClientSecret,
				"minted token":  minted,
			}
			if leaked := leakedSecret(msg, secrets); leaked != "" {
				t.Fatalf("the error (%d bytes) contains the %s", len(msg), leaked)
			}
			if !strings.Contains(msg, "[redacted]") || !strings.Contains(msg, "client '"+testClientID+"'") {
				t.Errorf("Error() = %q, want [redacted] where the secrets were and the client ID kept", msg)
			}
			e, ok := kindOf(err)
			if !ok || !tc.is(err) || e.Code != tc.wantErrorCode {
				t.Fatalf("got %v, want the same classification with code %q", err, tc.wantErrorCode)
			}
		})
	}
}
