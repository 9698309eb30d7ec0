package idp

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/internal/auth0"
)

func clientTrusting(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("bad CA PEM")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// step is one Refresh call in a scenario. send is the refresh token to use;
// "$last" means the one returned by the previous successful step.
type step struct {
	send        string
	wantErr     error
	wantRotated bool
}

func TestRefreshAgainstIdPBehaviours(t *testing.T) {
	tests := map[string]struct {
		rotation      rotation
		steps         []step
		wantExpiresIn time.Duration
	}{
		"non-rotating (Google)": {
			rotation: nonRotating, wantExpiresIn: 3599 * time.Second,
			steps: []step{{send: initialRT}, {send: initialRT}, {send: "$last"}},
		},
		"rotating with one grace use (Microsoft)": {
			rotation: rotating, wantExpiresIn: 3599 * time.Second,
			steps: []step{
				{send: initialRT, wantRotated: true},
				{send: initialRT, wantRotated: true}, // grace use of the replaced token
				{send: initialRT, wantErr: ErrInvalidGrant},
				{send: "$last", wantRotated: true},
			},
		},
		"strict single use, 400 invalid_grant": {
			rotation: strict, wantExpiresIn: 3599 * time.Second,
			steps: []step{
				{send: initialRT, wantRotated: true},
				{send: initialRT, wantErr: ErrInvalidGrant},
				{send: "$last", wantRotated: true},
			},
		},
		"GitHub form-encoded, 200 bad_refresh_token": {
			rotation: githubForm, wantExpiresIn: 8 * time.Hour,
			steps: []step{
				{send: initialRT, wantRotated: true},
				{send: initialRT, wantErr: ErrInvalidGrant},
				{send: "$last", wantRotated: true},
			},
		},
		"GitHub JSON, 200 bad_refresh_token": {
			rotation: githubJSON, wantExpiresIn: 3599 * time.Second,
			steps: []step{
				{send: initialRT, wantRotated: true},
				{send: initialRT, wantErr: ErrInvalidGrant},
			},
		},
		"unknown refresh token": {
			rotation: nonRotating,
			steps:    []step{{send: "rt-SECRET-unknown", wantErr: ErrInvalidGrant}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeIDP(t, tc.rotation, oauth2.AuthStyleInParams)
			fc := clocktesting.NewFakeClock(fakeNow)
			r := &Refresher{HTTPClient: f.httpClient(t), Clock: fc}
			last := ""
			for i, s := range tc.steps {
				send := s.send
				if send == "$last" {
					send = last
				}
				before := f.requests.Load()
				tok, err := r.Refresh(testContext(t), f.endpoint(), send)
				if n := f.requests.Load() - before; n != 1 {
					t.Errorf("step %d: %d HTTP requests, want exactly 1", i, n)
				}
				if s.wantErr != nil {
					if !errors.Is(err, s.wantErr) {
						t.Fatalf("step %d: got %v, want %v", i, err, s.wantErr)
					}
					if IsTransient(err) {
						t.Errorf("step %d: invalid_grant must not be transient", i)
					}
					assertNoSecrets(t, err.Error())
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				checkToken(t, tok, send, s.wantRotated, tc.wantExpiresIn, fc.Now())
				last = tok.RefreshToken
				fc.Step(time.Minute)
			}
		})
	}
}

func checkToken(t *testing.T, tok *Token, sent string, wantRotated bool, wantExpiresIn time.Duration, now time.Time) {
	t.Helper()
	if !strings.HasPrefix(tok.AccessToken, "at-SECRET-") {
		t.Error("no access token")
	}
	if tok.RefreshTokenRotated != wantRotated {
		t.Errorf("RefreshTokenRotated = %v, want %v", tok.RefreshTokenRotated, wantRotated)
	}
	if rotated := tok.RefreshToken != sent; rotated != wantRotated {
		t.Errorf("returned refresh token changed = %v, want %v", rotated, wantRotated)
	}
	if tok.ExpiresIn != wantExpiresIn {
		t.Errorf("ExpiresIn = %v, want %v", tok.ExpiresIn, wantExpiresIn)
	}
	if want := now.Add(wantExpiresIn); !tok.Expiry.Equal(want) {
		t.Errorf("Expiry = %v, want %v (fake clock + expires_in)", tok.Expiry, want)
	}
	if !strings.EqualFold(tok.TokenType, "bearer") {
		t.Errorf("TokenType = %q", tok.TokenType)
	}
}

func TestRefreshFormEncodedExtras(t *testing.T) {
	f := newFakeIDP(t, githubForm, oauth2.AuthStyleInParams)
	r := &Refresher{HTTPClient: f.httpClient(t), Clock: clocktesting.NewFakeClock(fakeNow)}
	tok, err := r.Refresh(testContext(t), f.endpoint(), initialRT)
	if err != nil {
		t.Fatal(err)
	}
	if got := tok.Extra("refresh_token_expires_in"); got != int64(15811200) {
		t.Errorf(`Extra("refresh_token_expires_in") = %v (%T), want int64 15811200`, got, got)
	}
	if got := tok.Extra("absent"); got != "" {
		t.Errorf(`Extra("absent") = %v`, got)
	}
}

func TestRefreshClientAuthentication(t *testing.T) {
	tests := map[string]struct {
		server, client oauth2.AuthStyle
		wantErr        bool
	}{
		"params":                            {server: oauth2.AuthStyleInParams, client: oauth2.AuthStyleInParams},
		"basic header":                      {server: oauth2.AuthStyleInHeader, client: oauth2.AuthStyleInHeader},
		"auto-detect means params":          {server: oauth2.AuthStyleInParams, client: oauth2.AuthStyleAutoDetect},
		"auto-detect never probes a header": {server: oauth2.AuthStyleInHeader, client: oauth2.AuthStyleAutoDetect, wantErr: true},
		"params where header is required":   {server: oauth2.AuthStyleInHeader, client: oauth2.AuthStyleInParams, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeIDP(t, strict, tc.server)
			ep := f.endpoint()
			ep.AuthStyle = tc.client
			r := &Refresher{HTTPClient: f.httpClient(t)}
			_, err := r.Refresh(testContext(t), ep, initialRT)
			if n := f.requests.Load(); n != 1 {
				t.Errorf("%d HTTP requests, want exactly 1 (a second would spend a strict refresh token twice)", n)
			}
			if tc.wantErr {
				if !IsInvalidClient(err) {
					t.Fatalf("got %v, want an invalid client error", err)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.lastForm.Get("refresh_token") != initialRT || f.lastForm.Get("grant_type") != "refresh_token" {
				t.Error("refresh_token grant not sent as form fields")
			}
		})
	}
}

func TestRefreshErrors(t *testing.T) {
	tests := map[string]struct {
		status      int
		contentType string
		body        string
		header      map[string]string
		wantKind    ErrorKind
		wantCode    string
		wantDesc    string
		transient   bool
		retryAfter  time.Duration
	}{
		"invalid_grant": {
			status: 400, body: `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`,
			wantKind: InvalidGrant, wantCode: "invalid_grant", wantDesc: "Token has been expired or revoked.",
		},
		"invalid_client": {
			status: 401, body: `{"error":"invalid_client","error_description":"The OAuth client was not found."}`,
			wantKind: InvalidClient, wantCode: "invalid_client", wantDesc: "The OAuth client was not found.",
		},
		"unauthorized_client": {
			status: 400, body: `{"error":"unauthorized_client","error_description":"Unauthorized"}`,
			wantKind: InvalidClient, wantCode: "unauthorized_client", wantDesc: "Unauthorized",
		},
		"GitHub incorrect_client_credentials": {
			status: 200, body: `{"error":"incorrect_client_credentials","error_description":"The client_id and/or client_secret passed are incorrect."}`,
			wantKind: InvalidClient, wantCode: "incorrect_client_credentials", wantDesc: "The client_id and/or client_secret passed are incorrect.",
		},
		"other 400": {
			status: 400, body: `{"error":"invalid_scope"}`,
			wantKind: Rejected, wantCode: "invalid_scope",
		},
		"500 with a body that must not leak": {
			status: 500, contentType: "text/plain", body: "SECRET stack trace",
			wantKind: Transient, transient: true,
		},
		"503 temporarily_unavailable": {
			status: 503, body: `{"error":"temporarily_unavailable"}`,
			wantKind: Transient, wantCode: "temporarily_unavailable", transient: true,
		},
		"400 temporarily_unavailable": {
			status: 400, body: `{"error":"temporarily_unavailable","error_description":"AADSTS50196: loop detected"}`,
			wantKind: Transient, wantCode: "temporarily_unavailable", wantDesc: "AADSTS50196: loop detected", transient: true,
		},
		"429 Retry-After": {
			status: 429, header: map[string]string{"Retry-After": "30"}, body: `{"error":"slow_down"}`,
			wantKind: Transient, wantCode: "slow_down", transient: true, retryAfter: 30 * time.Second,
		},
		"200 without access_token": {
			status: 200, body: `{"refresh_token":"SECRET","token_type":"Bearer"}`,
			wantKind: BadResponse, transient: true,
		},
		"200 malformed JSON": {
			status: 200, body: `{"access_token":"SECRET"`,
			wantKind: BadResponse, transient: true,
		},
		"long description is cut, control characters removed": {
			status: 400, body: `{"error":"invalid_grant","error_description":"line1\nline2 ` + strings.Repeat("yes ", 125) + `"}`,
			wantKind: InvalidGrant, wantCode: "invalid_grant", wantDesc: ("line1 line2 " + strings.Repeat("yes ", 125))[:maxDescriptionLen] + "…",
		},
		"extra body fields are not quoted": {
			status: 400, body: `{"error":"invalid_request","error_description":"bad","access_token":"SECRET"}`,
			wantKind: Rejected, wantCode: "invalid_request", wantDesc: "bad",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
			f.hook = func(w http.ResponseWriter, _ *http.Request) bool {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			}
			r := &Refresher{HTTPClient: f.httpClient(t)}
			_, err := r.Refresh(testContext(t), f.endpoint(), initialRT)
			var re *RefreshError
			if !errors.As(err, &re) {
				t.Fatalf("got %v, want a *RefreshError", err)
			}
			if re.Kind != tc.wantKind || re.Code != tc.wantCode || re.Description != tc.wantDesc {
				t.Errorf("got %v %q %q, want %v %q %q", re.Kind, re.Code, re.Description, tc.wantKind, tc.wantCode, tc.wantDesc)
			}
			if tc.wantKind != BadResponse && re.StatusCode != tc.status {
				t.Errorf("StatusCode = %d, want %d", re.StatusCode, tc.status)
			}
			if IsTransient(err) != tc.transient {
				t.Errorf("IsTransient = %v, want %v", IsTransient(err), tc.transient)
			}
			if errors.Is(err, ErrInvalidGrant) != (tc.wantKind == InvalidGrant) {
				t.Errorf("errors.Is(err, ErrInvalidGrant) = %v", errors.Is(err, ErrInvalidGrant))
			}
			if re.RetryAfter != tc.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", re.RetryAfter, tc.retryAfter)
			}
			if n := f.requests.Load(); n != 1 {
				t.Errorf("%d HTTP requests, want 1", n)
			}
			assertNoSecrets(t, err.Error())
			if !strings.HasPrefix(err.Error(), "idp: refreshing at "+f.srv.URL+"/token: ") {
				t.Errorf("Error() = %q does not name the endpoint", err)
			}
		})
	}
}

func TestRefreshTransportFailures(t *testing.T) {
	tests := map[string]struct {
		hook    func(w http.ResponseWriter, r *http.Request) bool
		timeout time.Duration
		check   func(t *testing.T, err error)
	}{
		"connection dropped": {
			hook: func(w http.ResponseWriter, _ *http.Request) bool {
				conn, _, err := http.NewResponseController(w).Hijack()
				if err == nil {
					_ = conn.Close()
				}
				return true
			},
		},
		"hanging server times out": {
			hook: func(_ http.ResponseWriter, r *http.Request) bool {
				<-r.Context().Done()
				return true
			},
			timeout: 200 * time.Millisecond,
			check: func(t *testing.T, err error) {
				var netErr net.Error
				if !errors.As(err, &netErr) || !netErr.Timeout() {
					t.Errorf("%v does not unwrap to a timeout", err)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
			f.hook = tc.hook
			hc := f.httpClient(t)
			if tc.timeout > 0 {
				hc.Timeout = tc.timeout
			}
			ctx := testContext(t)
			_, err := (&Refresher{HTTPClient: hc}).Refresh(ctx, f.endpoint(), initialRT)
			var re *RefreshError
			if !errors.As(err, &re) || re.Kind != Transient || re.StatusCode != 0 {
				t.Fatalf("got %v, want a transient network RefreshError", err)
			}
			if ctx.Err() != nil {
				t.Fatal("returned only because the test context ended")
			}
			if n := f.requests.Load(); n != 1 {
				t.Errorf("%d HTTP requests, want 1 (no retries)", n)
			}
			assertNoSecrets(t, err.Error())
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}
}

func TestRefreshContextCancelled(t *testing.T) {
	f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
	started := make(chan struct{})
	f.hook = func(_ http.ResponseWriter, r *http.Request) bool {
		close(started)
		<-r.Context().Done()
		return true
	}
	ctx, cancel := context.WithCancel(testContext(t))
	go func() { <-started; cancel() }()
	_, err := (&Refresher{HTTPClient: f.httpClient(t)}).Refresh(ctx, f.endpoint(), initialRT)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if IsTransient(err) {
		t.Error("a cancelled context is the caller's decision, not a transient IdP failure")
	}
}

func TestRefreshUsesTenantTrustRoots(t *testing.T) {
	f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw})
	tests := map[string]struct {
		caBundle []byte
		wantOK   bool
	}{
		"tenant CA bundle": {caBundle: caPEM, wantOK: true},
		"no CA bundle":     {caBundle: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tenant, err := auth0.NewClient(auth0.Config{Domain: "tenant.example.com", ClientID: "id", ClientSecret: "s", CABundle: tc.caBundle})
			if err != nil {
				t.Fatal(err)
			}
			_, err = (&Refresher{HTTPClient: tenant.HTTPClient()}).Refresh(testContext(t), f.endpoint(), initialRT)
			if tc.wantOK {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Fatalf("got %v, want a certificate verification error", err)
			}
		})
	}
}

func TestRefreshRejectsUnusableInputWithoutRequests(t *testing.T) {
	f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
	good := f.endpoint()
	tests := map[string]struct {
		mutate       func(*Endpoint)
		refreshToken string
		wantNoEP     bool
	}{
		"http token URL":    {mutate: func(e *Endpoint) { e.TokenURL = "http://idp.example.com/token" }, refreshToken: initialRT, wantNoEP: true},
		"relative URL":      {mutate: func(e *Endpoint) { e.TokenURL = "/token" }, refreshToken: initialRT, wantNoEP: true},
		"credentials":       {mutate: func(e *Endpoint) { e.TokenURL = "https://u:p@idp.example.com/token" }, refreshToken: initialRT, wantNoEP: true},
		"no client id":      {mutate: func(e *Endpoint) { e.ClientID = "" }, refreshToken: initialRT, wantNoEP: true},
		"bad auth style":    {mutate: func(e *Endpoint) { e.AuthStyle = 7 }, refreshToken: initialRT, wantNoEP: true},
		"no refresh token":  {mutate: func(*Endpoint) {}},
		"control character": {mutate: func(e *Endpoint) { e.TokenURL = "https://idp\x7f.example.com/" }, refreshToken: initialRT, wantNoEP: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ep := good
			tc.mutate(&ep)
			_, err := (&Refresher{HTTPClient: f.httpClient(t)}).Refresh(testContext(t), ep, tc.refreshToken)
			if err == nil {
				t.Fatal("Refresh succeeded")
			}
			if errors.Is(err, ErrNoEndpoint) != tc.wantNoEP {
				t.Errorf("errors.Is(%v, ErrNoEndpoint) = %v, want %v", err, !tc.wantNoEP, tc.wantNoEP)
			}
			assertNoSecrets(t, err.Error())
		})
	}
	if n := f.requests.Load(); n != 0 {
		t.Errorf("%d HTTP requests, want none", n)
	}
}

func TestRedaction(t *testing.T) {
	tok := Token{AccessToken: "at-SECRET", RefreshToken: "rt-SECRET", TokenType: "Bearer", ExpiresIn: time.Hour, Expiry: fakeNow,
		Extra: func(string) any { return "SECRET" }}
	ep := Endpoint{TokenURL: googleTokenURL, ClientID: "cid", ClientSecret: "cs-SECRET", AuthStyle: oauth2.AuthStyleInParams}
	values := map[string]struct {
		v        any
		mustShow string
	}{
		"Token":    {tok, "ExpiresIn:1h0m0s"},
		"*Token":   {&tok, "Bearer"},
		"Endpoint": {ep, googleTokenURL},
		"nested":   {struct{ E Endpoint }{ep}, "cid"},
	}
	for name, tc := range values {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			out := fmt.Sprintf(verb, tc.v)
			assertNoSecrets(t, out)
			if !strings.Contains(out, tc.mustShow) || (verb != "%q" && !strings.Contains(out, "<redacted>")) {
				t.Errorf("%s with %s = %s; want %q and <redacted>", name, verb, out, tc.mustShow)
			}
		}
	}
}
