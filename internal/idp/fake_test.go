package idp

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

const (
	testClientID     = "idp-client-id"
	testClientSecret = "idp-client-SECRET"
	initialRT        = "rt-SECRET-initial"
)

// rotation is how a fake IdP treats refresh tokens.
type rotation int

const (
	// nonRotating is Google-like: the refresh token is reusable and the
	// response carries no refresh_token.
	nonRotating rotation = iota
	// rotating is Microsoft-like: every response carries a new refresh token
	// and a replaced one still works once more.
	rotating
	// strict is GitHub-App-like: a refresh token works exactly once, then
	// the IdP answers invalid_grant (400 JSON).
	strict
	// githubForm is GitHub without "Accept: application/json": strict,
	// form-encoded bodies, and errors as 200 bad_refresh_token.
	githubForm
	// githubJSON is GitHub with JSON bodies: errors are 200 bad_refresh_token.
	githubJSON
)

// fakeIDP is an OAuth2 token endpoint (RFC 6749 §6) over HTTPS.
type fakeIDP struct {
	srv      *httptest.Server
	rotation rotation
	style    oauth2.AuthStyle // how the client must authenticate

	// hook may answer a request itself by returning true.
	hook func(w http.ResponseWriter, r *http.Request) bool

	requests atomic.Int64
	minted   atomic.Int64

	mu       sync.Mutex
	uses     map[string]int // refresh token -> times used
	lastForm url.Values
	lastAuth string
	lastAcc  string
}

func newFakeIDP(t *testing.T, rot rotation, style oauth2.AuthStyle) *fakeIDP {
	t.Helper()
	f := &fakeIDP{rotation: rot, style: style, uses: map[string]int{initialRT: 0}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIDP) endpoint() Endpoint {
	return Endpoint{TokenURL: f.srv.URL + "/token", ClientID: testClientID, ClientSecret: testClientSecret, AuthStyle: f.style}
}

// httpClient trusts the fake through its CA certificate, not by skipping
// verification.
func (f *fakeIDP) httpClient(t *testing.T) *http.Client {
	t.Helper()
	return clientTrusting(t, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
}

func (f *fakeIDP) serve(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	if err := r.ParseForm(); err != nil || r.URL.Path != "/token" || r.Method != http.MethodPost {
		f.fail(w, http.StatusBadRequest, "invalid_request", "malformed request")
		return
	}
	f.mu.Lock()
	f.lastForm, f.lastAuth, f.lastAcc = r.PostForm, r.Header.Get("Authorization"), r.Header.Get("Accept")
	f.mu.Unlock()
	if f.hook != nil && f.hook(w, r) {
		return
	}
	if !f.clientAuthOK(r) {
		f.fail(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed.")
		return
	}
	if r.PostForm.Get("grant_type") != "refresh_token" {
		f.fail(w, http.StatusBadRequest, "unsupported_grant_type", "only refresh_token")
		return
	}
	next, ok := f.spend(r.PostForm.Get("refresh_token"))
	if !ok {
		f.fail(w, http.StatusBadRequest, "invalid_grant", "The refresh token is invalid or expired.")
		return
	}
	f.succeed(w, next)
}

// clientAuthOK checks that credentials arrive in exactly the expected place.
func (f *fakeIDP) clientAuthOK(r *http.Request) bool {
	id, secret, basic := r.BasicAuth()
	form := r.PostForm
	if f.style == oauth2.AuthStyleInHeader {
		return basic && id == testClientID && secret == testClientSecret && form.Get("client_secret") == ""
	}
	return !basic && form.Get("client_id") == testClientID && form.Get("client_secret") == testClientSecret
}

// spend applies the rotation policy and returns the refresh token to hand
// out ("" for none).
func (f *fakeIDP) spend(rt string) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	used, known := f.uses[rt]
	if !known {
		return "", false
	}
	switch f.rotation {
	case nonRotating:
		f.uses[rt] = used + 1
		return "", true
	case rotating:
		if used >= 2 { // replaced, and its one grace use is gone
			return "", false
		}
	default:
		if used >= 1 {
			return "", false
		}
	}
	f.uses[rt] = used + 1
	next := fmt.Sprintf("rt-SECRET-%d", f.minted.Add(1))
	f.uses[next] = 0
	return next, true
}

func (f *fakeIDP) succeed(w http.ResponseWriter, refreshToken string) {
	at := fmt.Sprintf("at-SECRET-%d", f.minted.Add(1))
	if f.rotation == githubForm {
		v := url.Values{"access_token": {at}, "expires_in": {"28800"}, "refresh_token": {refreshToken},
			"refresh_token_expires_in": {"15811200"}, "scope": {""}, "token_type": {"bearer"}}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = io.WriteString(w, v.Encode())
		return
	}
	body := map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": 3599, "scope": "openid email"}
	if refreshToken != "" {
		body["refresh_token"] = refreshToken
	}
	writeJSON(w, http.StatusOK, body)
}

func (f *fakeIDP) fail(w http.ResponseWriter, status int, code, description string) {
	switch f.rotation {
	case githubForm:
		if code == "invalid_grant" {
			code, description = "bad_refresh_token", "The refresh token passed is incorrect or expired."
		}
		v := url.Values{"error": {code}, "error_description": {description}, "error_uri": {"https://docs.github.com"}}
		w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		_, _ = io.WriteString(w, v.Encode()) // GitHub: 200 even for errors
	case githubJSON:
		if code == "invalid_grant" {
			code = "bad_refresh_token"
		}
		writeJSON(w, http.StatusOK, map[string]any{"error": code, "error_description": description})
	default:
		writeJSON(w, status, map[string]any{"error": code, "error_description": description})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// assertNoSecrets fails when s contains a token or the client secret.
func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	if strings.Contains(s, "SECRET") {
		t.Errorf("%q leaks a secret", s)
	}
}

var fakeNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
