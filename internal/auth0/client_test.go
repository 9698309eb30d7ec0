package auth0

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestGetUserRequest(t *testing.T) {
	tests := map[string]struct {
		id          string
		wantEscaped string
	}{
		"pipe is escaped":      {id: "github|1234567", wantEscaped: "github%7C1234567"},
		"slash stays in place": {id: "samlp|acme/jane", wantEscaped: "samlp%7Cacme%2Fjane"},
		"email-like id":        {id: "auth0|jane+test@example.com", wantEscaped: "auth0%7Cjane+test@example.com"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.addUser(tc.id, userBody(tc.id))
			c := f.client(t)
			u, err := c.GetUser(testContext(t), tc.id)
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if u.UserID != tc.id {
				t.Errorf("UserID = %q, want %q", u.UserID, tc.id)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			path, _, _ := strings.Cut(r.RequestURI, "?")
			if want := "/api/v2/users/" + tc.wantEscaped; path != want {
				t.Errorf("request path = %q, want %q", path, want)
			}
			if got := r.Query.Get("fields"); got != "user_id,identities,last_login" {
				t.Errorf("fields = %q", got)
			}
			if got := r.Query.Get("include_fields"); got != "true" {
				t.Errorf("include_fields = %q, want true", got)
			}
			if r.Auth != "Bearer "+m2mTokenPrefix+"1" {
				t.Error("request not authorized with the M2M token")
			}
			if r.UserAgent != DefaultUserAgent || r.Accept != "application/json" {
				t.Errorf("User-Agent %q, Accept %q", r.UserAgent, r.Accept)
			}
		})
	}
}

func TestGetUserParsesIdentities(t *testing.T) {
	f := newFakeAuth0(t)
	f.addUser("github|1234567", userBody("github|1234567"))
	u, err := f.client(t).GetUser(testContext(t), "github|1234567")
	if err != nil {
		t.Fatal(err)
	}
	wantLogin := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	if u.LastLogin == nil || !u.LastLogin.Equal(wantLogin) {
		t.Errorf("LastLogin = %v, want %v", u.LastLogin, wantLogin)
	}
	want := []Identity{
		{Connection: "github", Provider: "github", UserID: "1234567", IsSocial: true,
			AccessToken: "ghu_SECRET_access", RefreshToken: "ghr_SECRET_refresh", ExpiresIn: 28800},
		{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "108234567890123456789", IsSocial: true,
			AccessToken: "ya29.SECRET"},
	}
	if len(u.Identities) != len(want) {
		t.Fatalf("got %d identities, want %d", len(u.Identities), len(want))
	}
	for i := range want {
		if u.Identities[i] != want[i] {
			// Compare field by field so the failure message stays redacted.
			t.Errorf("identity %d differs: got %s, want %s", i, u.Identities[i], want[i])
		}
	}
}

// TestGetUserRefusesAnotherUsersAnswer: the tokens of the user Auth0 answered about must never
// be taken for the one asked for, so an answer with another user_id is the asked-for user not
// being found.
func TestGetUserRefusesAnotherUsersAnswer(t *testing.T) {
	long := strings.Repeat("x", 5000)
	tests := map[string]struct {
		asked, answered string
		wantIn          []string // in the error; none when the read must succeed
	}{
		"the asked-for user":  {asked: "github|42", answered: "github|42"},
		"another user":        {asked: "github|42", answered: "github|43", wantIn: []string{`"github|43"`, `"github|42"`}},
		"another connection":  {asked: "github|42", answered: "google-oauth2|42", wantIn: []string{`"google-oauth2|42"`, `"github|42"`}},
		"another case":        {asked: "auth0|Jane", answered: "auth0|jane", wantIn: []string{`"auth0|jane"`, `"auth0|Jane"`}},
		"a trailing space":    {asked: "github|42", answered: "github|42 ", wantIn: []string{`"github|42 "`, `"github|42"`}},
		"a control character": {asked: "github|42", answered: "github|42\n", wantIn: []string{`"github|42\n"`, `"github|42"`}},
		"an id Auth0 escaped": {asked: "samlp|acme/jane", answered: "samlp|acme%2Fjane", wantIn: []string{`"samlp|acme%2Fjane"`}},
		"a huge answered id is clipped": {
			asked: "github|42", answered: long,
			wantIn: []string{`"` + strings.Repeat("x", maxAnsweredIDLen) + `…"`, `"github|42"`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.addUser(tc.asked, userBody(tc.answered)) // served at the asked-for path
			c := f.client(t)
			u, err := c.GetUser(testContext(t), tc.asked)
			if n := c.Stats().APIRequests; n != 1 {
				t.Errorf("APIRequests = %d, want 1", n)
			}
			if len(tc.wantIn) == 0 {
				if err != nil {
					t.Fatalf("GetUser: %v", err)
				}
				if u.UserID != tc.asked {
					t.Errorf("UserID = %q, want %q", u.UserID, tc.asked)
				}
				return
			}
			if err == nil {
				t.Fatalf("GetUser(%q) answered user %q, want an error", tc.asked, u.UserID)
			}
			if u != nil {
				t.Error("GetUser returned a user along with its error")
			}
			if !IsNotFound(err) {
				t.Errorf("IsNotFound(%v) = false, want true (the binding reports UserNotFound)", err)
			}
			if IsTransient(err) {
				t.Errorf("IsTransient(%v) = true, want false", err)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) && apiErr.Code != "user_id_mismatch" {
				t.Errorf("Code = %q, want user_id_mismatch", apiErr.Code)
			}
			msg := err.Error()
			for _, s := range tc.wantIn {
				if !strings.Contains(msg, s) {
					t.Errorf("%q does not name %s", msg, s)
				}
			}
			if len(msg) > 600 {
				t.Errorf("the error is %d bytes long", len(msg))
			}
			assertNoSecrets(t, msg)
		})
	}
}

// TestGetUserOtherUserErrorHoldsNoSecret: the answered user_id is the server's text, so an
// answer that echoes the M2M token or the client secret as its user_id must not put them into
// the error, where anyone who can read the binding would see them.
func TestGetUserOtherUserErrorHoldsNoSecret(t *testing.T) {
	const secret = "cl1ent/SECRET+value=" // changed by URL escaping
	tests := map[string]func(r *http.Request) string{
		"the bearer token":            func(r *http.Request) string { return strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ") },
		"the bearer token, uppercase": func(r *http.Request) string { return strings.ToUpper(r.Header.Get("Authorization")) },
		"the client secret":           func(*http.Request) string { return "auth0|" + secret },
		"the client secret, URL-escaped": func(*http.Request) string {
			return "auth0|" + url.QueryEscape(secret)
		},
		"the client secret across the clip": func(*http.Request) string {
			return strings.Repeat("x", maxAnsweredIDLen-4) + secret
		},
	}
	for name, answered := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.tokenHook = func(w http.ResponseWriter, _ *http.Request) bool { // accepts this test's secret
				writeJSON(w, http.StatusOK, `{"access_token":"`+m2mTokenPrefix+`1","token_type":"Bearer","expires_in":86400}`)
				return true
			}
			f.apiHook = func(w http.ResponseWriter, r *http.Request) bool {
				writeJSON(w, http.StatusOK, userBody(answered(r)))
				return true
			}
			c := f.client(t, func(cfg *Config) { cfg.ClientSecret = secret })
			_, err := c.GetUser(testContext(t), "github|42")
			if !IsNotFound(err) {
				t.Fatalf("IsNotFound(err) = false, want true (err is nil: %v)", err == nil)
			}
			msg := err.Error()
			lower := strings.ToLower(msg)
			for what, v := range map[string]string{"M2M token": m2mTokenPrefix, "client secret": secret, "escaped client secret": url.QueryEscape(secret)} {
				if strings.Contains(lower, strings.ToLower(v)) {
					t.Fatalf("the error (%d bytes) contains the %s", len(msg), what)
				}
			}
			if !strings.Contains(msg, `user_id [redacted], not the "github|42" asked for`) {
				t.Errorf("the error (%d bytes) does not name the asked id next to [redacted]", len(msg))
			}
		})
	}
}

func TestManagementAPIErrors(t *testing.T) {
	longMessage := strings.Repeat("x ", 2500) // words: a 20+ run would be cut as token-shaped
	tests := map[string]struct {
		status      int
		contentType string
		body        string
		header      map[string]string
		wantKind    ErrorKind
		wantCode    string
		wantMessage string
		wantString  string // exact Error(), when set
		transient   bool
		missing     bool // IsMissingScope
	}{
		"404 user": {
			status: 404, body: `{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}`,
			wantKind: NotFound, wantCode: "inexistent_user", wantMessage: "The user does not exist.",
			wantString: "auth0: GET /api/v2/users/github|42: 404 Not Found (inexistent_user): The user does not exist.",
		},
		"401": {
			status: 401, body: `{"statusCode":401,"error":"Unauthorized","message":"Invalid token"}`,
			wantKind: Unauthorized, wantMessage: "Invalid token",
		},
		"403 missing scope": {
			status: 403, body: `{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:users","errorCode":"insufficient_scope"}`,
			wantKind: Forbidden, wantCode: "insufficient_scope", wantMessage: "Insufficient scope, expected any of: read:users", missing: true,
		},
		"403 other": {
			status: 403, body: `{"statusCode":403,"error":"Forbidden","message":"Operation not allowed","errorCode":"operation_not_supported"}`,
			wantKind: Forbidden, wantCode: "operation_not_supported", wantMessage: "Operation not allowed",
		},
		"400": {
			status: 400, body: `{"statusCode":400,"error":"Bad Request","message":"Query validation error","errorCode":"invalid_query_string"}`,
			wantKind: BadRequest, wantCode: "invalid_query_string", wantMessage: "Query validation error",
		},
		"429 beyond MaxRateLimitWait": {
			status: 429, header: map[string]string{"Retry-After": "120"},
			body:     `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}`,
			wantKind: RateLimited, wantCode: "too_many_requests", wantMessage: "Global limit has been reached", transient: true,
		},
		"500": {
			status: 500, body: `{"statusCode":500,"error":"Internal Server Error","message":"Internal error"}`,
			wantKind: ServerError, wantMessage: "Internal error", transient: true,
		},
		"502 html": {
			status: 502, contentType: "text/html", body: "<html>bad gateway SECRET</html>",
			wantKind: ServerError, transient: true,
			wantString: "auth0: GET /api/v2/users/github|42: 502 Bad Gateway",
		},
		"long message is truncated": {
			status: 404, body: `{"statusCode":404,"message":"` + longMessage + `","errorCode":"inexistent_user"}`,
			wantKind: NotFound, wantCode: "inexistent_user", wantMessage: longMessage[:maxMessageLen] + "…",
		},
		"200 html": {
			status: 200, contentType: "text/html", body: "<html>login SECRET</html>",
			wantKind: BadResponse, transient: true,
		},
		"200 JSON labelled as HTML": {
			status: 200, contentType: "text/html; charset=utf-8", body: `{"user_id":"github|42","identities":[]}`,
			wantKind: BadResponse, transient: true,
		},
		"200 malformed json": {
			status: 200, body: `{"user_id":"github|42","identities":[{"access_token":"SECRET"`,
			wantKind: BadResponse, transient: true,
		},
		"200 wrong json types": {
			status: 200, body: `{"user_id":"github|42","identities":{"access_token":"SECRET"}}`,
			wantKind: BadResponse, transient: true,
		},
		"200 without user_id": {
			status: 200, body: `{"identities":[]}`,
			wantKind: BadResponse, transient: true,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.apiHook = func(w http.ResponseWriter, _ *http.Request) bool {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				ct := tc.contentType
				if ct == "" {
					ct = "application/json; charset=utf-8"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			}
			c := f.client(t)
			u, err := c.GetUser(testContext(t), "github|42")
			if err == nil {
				t.Fatalf("GetUser returned %v, want an error", u)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("%v is not an *APIError", err)
			}
			if apiErr.Kind != tc.wantKind || apiErr.Code != tc.wantCode || apiErr.Message != tc.wantMessage {
				t.Errorf("got kind %v code %q message %q; want %v %q %q", apiErr.Kind, apiErr.Code, apiErr.Message, tc.wantKind, tc.wantCode, tc.wantMessage)
			}
			if apiErr.StatusCode != tc.status {
				t.Errorf("StatusCode = %d, want %d", apiErr.StatusCode, tc.status)
			}
			if tc.wantString != "" && err.Error() != tc.wantString {
				t.Errorf("Error() = %q, want %q", err.Error(), tc.wantString)
			}
			if got := IsTransient(err); got != tc.transient {
				t.Errorf("IsTransient = %v, want %v", got, tc.transient)
			}
			if got := IsMissingScope(err); got != tc.missing {
				t.Errorf("IsMissingScope = %v, want %v", got, tc.missing)
			}
			helpers := map[ErrorKind]bool{NotFound: IsNotFound(err), Unauthorized: IsUnauthorized(err), Forbidden: IsForbidden(err)}
			_, helpers[RateLimited] = IsRateLimited(err)
			for k, got := range helpers {
				if got != (k == tc.wantKind) {
					t.Errorf("Is%v = %v for kind %v", k, got, tc.wantKind)
				}
			}
			assertNoSecrets(t, err.Error())
			if n := c.Stats().APIRequests; n != 1 {
				t.Errorf("APIRequests = %d, want 1 (errors are not retried)", n)
			}
		})
	}
}

func TestSingleflightCoalescesConcurrentReads(t *testing.T) {
	f := newFakeAuth0(t)
	const id, callers = "github|1234567", 20
	f.addUser(id, userBody(id))
	release, open := gate(t)
	f.apiHook = func(_ http.ResponseWriter, r *http.Request) bool {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		return false
	}
	c := f.client(t)
	ctx := testContext(t)

	users := make([]*User, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { users[i], errs[i] = c.GetUser(ctx, id) })
	}
	eventually(t, "all callers to join the in-flight request", func() bool {
		return len(f.requests()) == 1 && c.flightWaiters.Load() == callers
	})
	open()
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if n := len(f.requests()); n != 1 {
		t.Errorf("server saw %d requests, want 1", n)
	}
	if n := c.Stats().APIRequests; n != 1 {
		t.Errorf("APIRequests = %d, want 1", n)
	}
	// Every caller owns its result: changing one must not change another.
	users[0].Identities[0].AccessToken = "changed"
	users[0].Identities = append(users[0].Identities[:0], Identity{})
	for i := 1; i < callers; i++ {
		if users[i] == users[0] || users[i].Identities[0].AccessToken != "ghu_SECRET_access" || len(users[i].Identities) != 2 {
			t.Fatalf("caller %d shares state with caller 0", i)
		}
	}
}

func TestSingleflightSurvivesLeaderCancellation(t *testing.T) {
	f := newFakeAuth0(t)
	const id = "github|7"
	f.addUser(id, userBody(id))
	first := make(chan struct{})
	var once sync.Once
	f.apiHook = func(_ http.ResponseWriter, r *http.Request) bool {
		blocked := false
		once.Do(func() { blocked = true })
		if blocked {
			close(first)
			<-r.Context().Done() // hang until the leader gives up
		}
		return false
	}
	c := f.client(t)

	leaderCtx, cancelLeader := context.WithCancel(testContext(t))
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.GetUser(leaderCtx, id)
		leaderErr <- err
	}()
	<-first
	followerErr := make(chan error, 1)
	go func() {
		_, err := c.GetUser(testContext(t), id)
		followerErr <- err
	}()
	eventually(t, "the follower to join", func() bool { return c.flightWaiters.Load() == 2 })
	cancelLeader()

	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: got %v, want context.Canceled", err)
	}
	if err := <-followerErr; err != nil {
		t.Errorf("follower: %v (must not inherit the leader's cancellation)", err)
	}
	if n := len(f.requests()); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

func TestResponseSizeLimit(t *testing.T) {
	const limit = 1024
	tests := map[string]struct {
		size     int
		wantKind ErrorKind // 0: success
	}{
		"exactly the limit": {size: limit},
		"one byte over":     {size: limit + 1, wantKind: BadResponse},
		"far over":          {size: 10 * limit, wantKind: BadResponse},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			body := `{"user_id":"auth0|1","identities":[]}`
			body += strings.Repeat(" ", tc.size-len(body)) // still valid JSON
			f.addUser("auth0|1", body)
			c := f.client(t, func(cfg *Config) { cfg.MaxResponseBytes = limit })
			_, err := c.GetUser(testContext(t), "auth0|1")
			if tc.wantKind == 0 {
				if err != nil {
					t.Fatalf("GetUser: %v", err)
				}
				return
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Kind != tc.wantKind {
				t.Fatalf("got %v, want kind %v", err, tc.wantKind)
			}
			if !strings.Contains(err.Error(), "exceeds 1024 bytes") {
				t.Errorf("error %q does not say the body was too large", err)
			}
		})
	}
}

func TestHangingServerTimesOut(t *testing.T) {
	f := newFakeAuth0(t)
	f.apiHook = func(_ http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	}
	c := f.client(t, func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	ctx := testContext(t)
	_, err := c.GetUser(ctx, "auth0|1")
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Kind != Network {
		t.Fatalf("got %v, want a Network APIError", err)
	}
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Errorf("error %v does not unwrap to a timeout", err)
	}
	if ctx.Err() != nil {
		t.Error("the call returned only because the test context expired, not because of Config.Timeout")
	}
	if !IsTransient(err) {
		t.Error("a timeout must be transient")
	}
}

func TestCABundle(t *testing.T) {
	f := newFakeAuth0(t)
	tests := map[string]struct {
		bundle []byte
		wantOK bool
	}{
		"server's CA":    {bundle: caPEM(f.srv), wantOK: true},
		"no bundle":      {bundle: nil},
		"unrelated CA":   {bundle: selfSignedPEM(t)},
		"both are added": {bundle: append(selfSignedPEM(t), caPEM(f.srv)...), wantOK: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := f.client(t, func(cfg *Config) { cfg.CABundle = tc.bundle })
			_, err := c.Authenticate(testContext(t))
			if tc.wantOK {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				return
			}
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a certificate verification error", err)
			}
			if !isKind(err, Network) {
				t.Errorf("kind of %v is not Network", err)
			}
		})
	}
}

// selfSignedPEM makes a CA certificate that signed nothing the server uses.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unrelated test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func TestNewClientValidation(t *testing.T) {
	valid := Config{Domain: "tenant.eu.auth0.com", ClientID: "id", ClientSecret: testClientSecret}
	tests := map[string]struct {
		mutate  func(*Config)
		wantErr string // substring; empty means valid
	}{
		"valid":              {mutate: func(*Config) {}},
		"host:port":          {mutate: func(c *Config) { c.Domain = "127.0.0.1:8443" }},
		"empty domain":       {mutate: func(c *Config) { c.Domain = "" }, wantErr: "Domain is empty"},
		"scheme":             {mutate: func(c *Config) { c.Domain = "https://tenant.auth0.com" }, wantErr: "without scheme"},
		"path":               {mutate: func(c *Config) { c.Domain = "tenant.auth0.com/api" }, wantErr: "without scheme or path"},
		"user info":          {mutate: func(c *Config) { c.Domain = "me@tenant.auth0.com" }, wantErr: "Domain"},
		"bad port":           {mutate: func(c *Config) { c.Domain = "tenant.auth0.com:abc" }, wantErr: "not a valid host"},
		"no client id":       {mutate: func(c *Config) { c.ClientID = "" }, wantErr: "ClientID is empty"},
		"no secret":          {mutate: func(c *Config) { c.ClientSecret = "" }, wantErr: "ClientSecret is empty"},
		"bad CA":             {mutate: func(c *Config) { c.CABundle = []byte("not a PEM") }, wantErr: "CABundle"},
		"negative rps":       {mutate: func(c *Config) { c.RequestsPerSecond = -1 }, wantErr: "RequestsPerSecond"},
		"NaN rps":            {mutate: func(c *Config) { c.RequestsPerSecond = math.NaN() }, wantErr: "RequestsPerSecond"},
		"negative burst":     {mutate: func(c *Config) { c.Burst = -1 }, wantErr: "Burst"},
		"negative timeout":   {mutate: func(c *Config) { c.Timeout = -time.Second }, wantErr: "Timeout"},
		"negative body size": {mutate: func(c *Config) { c.MaxResponseBytes = -1 }, wantErr: "MaxResponseBytes"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := valid
			tc.mutate(&cfg)
			c, err := NewClient(cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("NewClient: %v", err)
				}
				if c.HTTPClient() == nil || c.HTTPClient().Timeout != DefaultTimeout {
					t.Error("HTTPClient is not configured with the default timeout")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.wantErr)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestNewClientDefaults(t *testing.T) {
	c, err := NewClient(Config{Domain: "tenant.auth0.com", ClientID: "id", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	got := c.cfg
	if got.Audience != "https://tenant.auth0.com/api/v2/" || got.RequestsPerSecond != 2 || got.Burst != 2 ||
		got.Timeout != 10*time.Second || got.MaxResponseBytes != 1<<20 || got.MaxRateLimitWait != 30*time.Second ||
		got.UserAgent != "idptoken-operator" || got.Clock == nil {
		t.Errorf("defaults not applied: %+v", got)
	}
}

func TestGetConnection(t *testing.T) {
	f := newFakeAuth0(t)
	f.addConnection("con_waad1", `{"id":"con_waad1","name":"contoso","strategy":"waad","enabled_clients":["x"],
		"options":{"client_id":"app-id","client_secret":"SECRET-cs","tenant_domain":"contoso.onmicrosoft.com",
		"admin_access_token":"SECRET-admin-at","admin_refresh_token":"SECRET-admin-rt",
		"admin_access_token_expiresin":"2025-01-02T03:04:05.000Z","waad_protocol":"openid-connect","max_groups_to_retrieve":50}}`)
	c := f.client(t)
	conn, err := c.GetConnection(testContext(t), "con_waad1")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	o := conn.Options
	if conn.ID != "con_waad1" || conn.Name != "contoso" || conn.Strategy != "waad" ||
		o.ClientID != "app-id" || o.ClientSecret != "SECRET-cs" || o.TenantDomain != "contoso.onmicrosoft.com" ||
		o.AdminAccessToken != "SECRET-admin-at" || o.AdminRefreshToken != "SECRET-admin-rt" ||
		o.AdminAccessTokenExpiresAt == nil || !o.AdminAccessTokenExpiresAt.Equal(exp) {
		t.Errorf("unexpected connection %v", conn)
	}

	_, err = c.GetConnection(testContext(t), "con_missing")
	if !IsNotFound(err) {
		t.Errorf("missing connection: got %v, want NotFound", err)
	}
}

func TestGetConnectionByName(t *testing.T) {
	conn := func(id, name string) string {
		b, _ := json.Marshal(map[string]any{"id": id, "name": name, "strategy": "oauth2",
			"options": map[string]any{"client_id": "cid", "client_secret": "SECRET", "tokenURL": "https://idp.example.com/token"}})
		return string(b)
	}
	tests := map[string]struct {
		body     string
		wantID   string
		wantKind ErrorKind
	}{
		"array":                  {body: "[" + conn("con_1", "my-idp") + "]", wantID: "con_1"},
		"include_totals object":  {body: `{"total":1,"start":0,"limit":50,"connections":[` + conn("con_2", "my-idp") + `]}`, wantID: "con_2"},
		"picks the exact name":   {body: "[" + conn("con_3", "my-idp-2") + "," + conn("con_4", "my-idp") + "]", wantID: "con_4"},
		"empty list":             {body: "[]", wantKind: NotFound},
		"only other names":       {body: "[" + conn("con_5", "MY-IDP") + "]", wantKind: NotFound},
		"object without list":    {body: `{"total":0}`, wantKind: BadResponse},
		"entry without id":       {body: `[{"name":"my-idp"}]`, wantKind: BadResponse},
		"not a list":             {body: `"my-idp"`, wantKind: BadResponse},
		"malformed with secrets": {body: `[{"id":"c","options":{"client_secret":"SECRET"`, wantKind: BadResponse},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.apiHook = func(w http.ResponseWriter, _ *http.Request) bool {
				writeJSON(w, http.StatusOK, tc.body)
				return true
			}
			c := f.client(t)
			got, err := c.GetConnectionByName(testContext(t), "my-idp")
			if q := f.requests()[0]; q.Path != "/api/v2/connections" || q.Query.Get("name") != "my-idp" {
				t.Errorf("request %s?%s, want /api/v2/connections?name=my-idp", q.Path, q.Query.Encode())
			}
			if tc.wantKind != 0 {
				if !isKind(err, tc.wantKind) {
					t.Fatalf("got %v, want kind %v", err, tc.wantKind)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != tc.wantID || got.Options.TokenURL != "https://idp.example.com/token" {
				t.Errorf("got %v, want id %s", got, tc.wantID)
			}
		})
	}
}

func TestEmptyIDsAreRejectedWithoutRequests(t *testing.T) {
	f := newFakeAuth0(t)
	c := f.client(t)
	ctx := testContext(t)
	calls := map[string]func() error{
		"GetUser":             func() error { _, err := c.GetUser(ctx, ""); return err },
		"GetConnection":       func() error { _, err := c.GetConnection(ctx, ""); return err },
		"GetConnectionByName": func() error { _, err := c.GetConnectionByName(ctx, ""); return err },
	}
	for name, call := range calls {
		if err := call(); err == nil {
			t.Errorf("%s(\"\") succeeded", name)
		}
	}
	if st := c.Stats(); st.APIRequests != 0 || st.TokenRequests != 0 {
		t.Errorf("Stats = %+v, want no traffic", st)
	}
}

func TestRedaction(t *testing.T) {
	exp := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	u := User{UserID: "github|1", LastLogin: &exp, Identities: []Identity{{
		Connection: "github", Provider: "github", UserID: "1",
		AccessToken: "SECRET-at", AccessTokenSecret: "SECRET-ats", RefreshToken: "SECRET-rt", ExpiresIn: 3600,
	}}}
	conn := Connection{ID: "con_1", Name: "gh", Strategy: "github", Options: ConnectionOptions{
		ClientID: "cid", ClientSecret: "SECRET-cs", AdminAccessToken: "SECRET-aat", AdminRefreshToken: "SECRET-art",
		AdminAccessTokenExpiresAt: &exp,
	}}
	values := map[string]struct {
		v        any
		mustShow string
	}{
		"User":              {u, "github|1"},
		"*User":             {&u, "github|1"},
		"Identity":          {u.Identities[0], "ExpiresIn:3600"},
		"[]Identity":        {u.Identities, "Provider:github"},
		"Connection":        {conn, "con_1"},
		"*Connection":       {&conn, "con_1"},
		"ConnectionOptions": {conn.Options, "cid"},
		"in a struct":       {struct{ U User }{u}, "github|1"},
	}
	for name, tc := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			out := fmt.Sprintf(verb, tc.v)
			if strings.Contains(out, "SECRET") {
				t.Errorf("%s with %s leaks: %s", name, verb, out)
			}
			if !strings.Contains(out, tc.mustShow) || (verb != "%q" && !strings.Contains(out, "<redacted>")) {
				t.Errorf("%s with %s = %s; want %q and <redacted>", name, verb, out, tc.mustShow)
			}
		}
	}
	if s := (Identity{}).String(); strings.Contains(s, "<redacted>") {
		t.Errorf("empty tokens shown as redacted: %s", s)
	}
}

func TestAPIErrorUnwrapsCause(t *testing.T) {
	cause := &url.Error{Op: "Get", URL: "https://x", Err: context.DeadlineExceeded}
	err := request{method: "GET", display: "/api/v2/users/a"}.networkError(cause)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("network error does not unwrap to its cause")
	}
	if strings.Contains(err.Error(), "https://x") {
		t.Errorf("network error repeats the URL: %s", err)
	}
}
