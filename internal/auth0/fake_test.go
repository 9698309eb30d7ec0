package auth0

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// Values a test may grep for: none of them may ever show up in an error.
const (
	testClientID     = "m2m-client-id"
	testClientSecret = "m2m-client-SECRET-value"
	m2mTokenPrefix   = "m2m-SECRET-token-"
)

// fakeAuth0 is an HTTPS server that behaves like the parts of Auth0 the
// client uses: /oauth/token (client credentials, Auth0 error bodies) and the
// Management API reads, with Bearer checks and Auth0-style error bodies.
// Tests adjust it through the exported-looking fields before the first call
// or through the hooks.
type fakeAuth0 struct {
	srv *httptest.Server

	mu          sync.Mutex
	audience    string
	expiresIn   int
	scope       string
	users       map[string]string // id -> JSON body
	connections map[string]string // id -> JSON body
	rejected    map[string]bool   // access tokens the API answers 401 for
	tokenForms  []url.Values
	tokenAuth   []string
	apiReqs     []recordedRequest

	// tokenHook and apiHook may answer a request themselves by returning
	// true; apiHook runs before the Bearer check.
	tokenHook func(w http.ResponseWriter, r *http.Request) bool
	apiHook   func(w http.ResponseWriter, r *http.Request) bool

	tokens atomic.Int64
}

type recordedRequest struct {
	RequestURI, Path, Auth, UserAgent, Accept string
	Query                                     url.Values
}

func newFakeAuth0(t *testing.T) *fakeAuth0 {
	t.Helper()
	f := &fakeAuth0{
		expiresIn:   86400,
		scope:       "read:users read:user_idp_tokens read:connections",
		users:       map[string]string{},
		connections: map[string]string{},
		rejected:    map[string]bool{},
	}
	f.srv = newTLSServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	f.audience = "https://" + f.domain() + "/api/v2/"
	return f
}

func (f *fakeAuth0) domain() string { return strings.TrimPrefix(f.srv.URL, "https://") }

// newTLSServer starts an HTTPS test server whose expected TLS handshake
// failures (tests of untrusted roots, closed clients) are not logged.
func newTLSServer(h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	return srv
}

// caPEM is the PEM of the server's certificate, which is its own root.
func caPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// config trusts the server through CABundle and disables client-side
// limiting (tests that need it set it back).
func (f *fakeAuth0) config() Config {
	return Config{
		Domain:            f.domain(),
		ClientID:          testClientID,
		ClientSecret:      testClientSecret,
		CABundle:          caPEM(f.srv),
		RequestsPerSecond: math.Inf(1),
		Burst:             1,
		Timeout:           5 * time.Second,
	}
}

func (f *fakeAuth0) client(t *testing.T, mutate ...func(*Config)) *Client {
	t.Helper()
	cfg := f.config()
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func (f *fakeAuth0) addUser(id, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.users[id] = body
}

func (f *fakeAuth0) addConnection(id, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.connections[id] = body
}

func (f *fakeAuth0) requests() []recordedRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recordedRequest(nil), f.apiReqs...)
}

func (f *fakeAuth0) serve(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/oauth/token":
		f.serveToken(w, r)
	case strings.HasPrefix(r.URL.Path, "/api/v2/"):
		f.serveAPI(w, r)
	default:
		writeJSON(w, http.StatusNotFound, `{"statusCode":404,"error":"Not Found","message":"Not Found"}`)
	}
}

func (f *fakeAuth0) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		writeJSON(w, http.StatusBadRequest, `{"error":"invalid_request","error_description":"bad request"}`)
		return
	}
	f.mu.Lock()
	f.tokenForms = append(f.tokenForms, r.PostForm)
	f.tokenAuth = append(f.tokenAuth, r.Header.Get("Authorization"))
	hook, audience, expiresIn, scope := f.tokenHook, f.audience, f.expiresIn, f.scope
	f.mu.Unlock()
	if hook != nil && hook(w, r) {
		return
	}
	form := r.PostForm
	switch {
	case form.Get("grant_type") != "client_credentials":
		writeJSON(w, http.StatusForbidden, `{"error":"unauthorized_client","error_description":"Grant type not allowed"}`)
	case form.Get("client_id") != testClientID || form.Get("client_secret") != testClientSecret:
		writeJSON(w, http.StatusUnauthorized, `{"error":"access_denied","error_description":"Unauthorized"}`)
	case form.Get("audience") != audience:
		writeJSON(w, http.StatusForbidden, `{"error":"access_denied","error_description":"Service not enabled within domain"}`)
	default:
		n := f.tokens.Add(1)
		body, _ := json.Marshal(map[string]any{
			"access_token": fmt.Sprintf("%s%d", m2mTokenPrefix, n),
			"token_type":   "Bearer",
			"expires_in":   expiresIn,
			"scope":        scope,
		})
		writeJSON(w, http.StatusOK, string(body))
	}
}

func (f *fakeAuth0) serveAPI(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	f.mu.Lock()
	f.apiReqs = append(f.apiReqs, recordedRequest{
		RequestURI: r.RequestURI, Path: r.URL.Path, Auth: auth, Query: r.URL.Query(),
		UserAgent: r.Header.Get("User-Agent"), Accept: r.Header.Get("Accept"),
	})
	hook := f.apiHook
	token := strings.TrimPrefix(auth, "Bearer ")
	rejected := f.rejected[token]
	f.mu.Unlock()
	w.Header().Set("X-Ratelimit-Limit", "50")
	w.Header().Set("X-Ratelimit-Remaining", "49")
	w.Header().Set("X-Ratelimit-Reset", fmt.Sprint(time.Now().Add(time.Second).Unix()))
	if hook != nil && hook(w, r) {
		return
	}
	if !strings.HasPrefix(auth, "Bearer "+m2mTokenPrefix) || rejected {
		writeJSON(w, http.StatusUnauthorized, `{"statusCode":401,"error":"Unauthorized","message":"Invalid token","attributes":{"error":"Invalid token"}}`)
		return
	}
	f.route(w, r)
}

func (f *fakeAuth0) route(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id, ok := strings.CutPrefix(r.URL.Path, "/api/v2/users/"); ok {
		if body, found := f.users[id]; found {
			writeJSON(w, http.StatusOK, body)
			return
		}
		writeJSON(w, http.StatusNotFound, `{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}`)
		return
	}
	if id, ok := strings.CutPrefix(r.URL.Path, "/api/v2/connections/"); ok {
		if body, found := f.connections[id]; found {
			writeJSON(w, http.StatusOK, body)
			return
		}
		writeJSON(w, http.StatusNotFound, `{"statusCode":404,"error":"Not Found","message":"The connection does not exist","errorCode":"inexistent_connection"}`)
		return
	}
	if r.URL.Path == "/api/v2/connections" {
		name := r.URL.Query().Get("name")
		var matches []string
		for _, body := range f.connections {
			var c struct{ Name string }
			if json.Unmarshal([]byte(body), &c) == nil && c.Name == name {
				matches = append(matches, body)
			}
		}
		writeJSON(w, http.StatusOK, "["+strings.Join(matches, ",")+"]")
		return
	}
	writeJSON(w, http.StatusNotFound, `{"statusCode":404,"error":"Not Found","message":"Not Found"}`)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// userBody is a typical user: a GitHub identity (numeric user_id) with tokens
// and a Google identity (string user_id).
func userBody(id string) string {
	b, _ := json.Marshal(map[string]any{
		"user_id":    id,
		"last_login": "2024-05-06T07:08:09.123Z",
		"identities": []any{
			map[string]any{
				"provider": "github", "connection": "github", "user_id": 1234567, "isSocial": true,
				"access_token": "ghu_SECRET_access", "refresh_token": "ghr_SECRET_refresh", "expires_in": 28800,
			},
			map[string]any{
				"provider": "google-oauth2", "connection": "google-oauth2", "user_id": "108234567890123456789",
				"isSocial": true, "access_token": "ya29.SECRET",
			},
		},
	})
	return string(b)
}

// assertNoSecrets fails when s contains any value that must never leak.
func assertNoSecrets(t *testing.T, s string) {
	t.Helper()
	for _, secret := range []string{testClientSecret, m2mTokenPrefix, "SECRET", "Bearer"} {
		if strings.Contains(s, secret) {
			t.Errorf("%q leaks %q", s, secret)
		}
	}
}

// eventually polls cond until it holds; the timeout only turns a hang into a
// failure, nothing asserts on elapsed time.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeStart is a whole second, so epoch-second reset headers line up exactly.
var fakeStart = time.Unix(1_700_000_000, 0)

// runStepping runs fn and, whenever fn is blocked on the fake clock, advances
// it by step; it returns how many steps were needed and fn's error.
func runStepping(t *testing.T, fc *clocktesting.FakeClock, step time.Duration, fn func() error) (int, error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	steps := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			return steps, err
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the call to return")
		}
		if fc.HasWaiters() {
			fc.Step(step)
			steps++
			continue
		}
		time.Sleep(time.Millisecond)
	}
}

// gate returns a channel that blocks server hooks until open is called or
// the test ends, so a failing test cannot hang in httptest.Server.Close.
func gate(t *testing.T) (wait <-chan struct{}, open func()) {
	ch := make(chan struct{})
	var once sync.Once
	open = func() { once.Do(func() { close(ch) }) }
	t.Cleanup(open)
	return ch, open
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
