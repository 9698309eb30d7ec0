package auth0

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
)

func TestTokenSharedByConcurrentAndSequentialCalls(t *testing.T) {
	f := newFakeAuth0(t)
	const concurrent, sequential = 10, 5
	for i := range concurrent + sequential {
		id := fmt.Sprintf("auth0|user%d", i)
		f.addUser(id, userBody(id))
	}
	c := f.client(t)
	ctx := testContext(t)

	var wg sync.WaitGroup
	errs := make(chan error, concurrent)
	for i := range concurrent {
		wg.Go(func() {
			_, err := c.GetUser(ctx, fmt.Sprintf("auth0|user%d", i))
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent GetUser: %v", err)
		}
	}
	for i := concurrent; i < concurrent+sequential; i++ {
		if _, err := c.GetUser(ctx, fmt.Sprintf("auth0|user%d", i)); err != nil {
			t.Fatalf("sequential GetUser: %v", err)
		}
	}

	if got := f.tokens.Load(); got != 1 {
		t.Errorf("token endpoint saw %d requests, want 1", got)
	}
	st := c.Stats()
	if st.TokenRequests != 1 || st.APIRequests != concurrent+sequential {
		t.Errorf("Stats = %+v, want 1 token request and %d API requests", st, concurrent+sequential)
	}
	for _, req := range f.requests() {
		if req.Auth != "Bearer "+m2mTokenPrefix+"1" {
			t.Errorf("request %s used another token", req.Path)
		}
	}
}

func TestTokenRefetchedOnlyWhenExpiring(t *testing.T) {
	tests := map[string]struct {
		expiresIn  int
		wantTokens int64
	}{
		"long-lived token is reused":                 {expiresIn: 86400, wantTokens: 1},
		"token inside the 1 minute margin is not":    {expiresIn: 30, wantTokens: 3},
		"token just outside the margin is reused":    {expiresIn: 3600, wantTokens: 1},
		"token expiring exactly at the margin isn't": {expiresIn: 60, wantTokens: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.expiresIn = tc.expiresIn
			f.addUser("auth0|1", userBody("auth0|1"))
			c := f.client(t)
			for range 3 {
				if _, err := c.GetUser(testContext(t), "auth0|1"); err != nil {
					t.Fatal(err)
				}
			}
			if got := c.Stats().TokenRequests; got != tc.wantTokens {
				t.Errorf("TokenRequests = %d, want %d", got, tc.wantTokens)
			}
		})
	}
}

func TestTokenRequestSendsCredentialsAndAudience(t *testing.T) {
	tests := map[string]struct {
		audience     string // Config.Audience
		wantAudience func(f *fakeAuth0) string
	}{
		"default audience": {wantAudience: func(f *fakeAuth0) string { return "https://" + f.domain() + "/api/v2/" }},
		"custom audience": {
			audience:     "https://custom.example.com/api/v2/",
			wantAudience: func(*fakeAuth0) string { return "https://custom.example.com/api/v2/" },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.audience = tc.wantAudience(f)
			c := f.client(t, func(cfg *Config) { cfg.Audience = tc.audience })
			if _, err := c.Authenticate(testContext(t)); err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.tokenForms) != 1 {
				t.Fatalf("got %d token requests, want 1", len(f.tokenForms))
			}
			form := f.tokenForms[0]
			want := map[string]string{
				"grant_type":    "client_credentials",
				"client_id":     testClientID,
				"client_secret": testClientSecret,
				"audience":      f.audience,
			}
			for k, v := range want {
				if form.Get(k) != v {
					t.Errorf("form field %s = %q, want %q", k, form.Get(k), v)
				}
			}
			if f.tokenAuth[0] != "" {
				t.Error("credentials were also sent in an Authorization header; Auth0 wants them in the body only")
			}
		})
	}
}

func TestAuthenticateReturnsGrantedScopes(t *testing.T) {
	tests := map[string]struct {
		scope string
		want  []string
	}{
		"several": {scope: "read:users read:user_idp_tokens read:connections", want: []string{"read:users", "read:user_idp_tokens", "read:connections"}},
		"none":    {scope: "", want: nil},
		"spacing": {scope: "  read:users   read:connections ", want: []string{"read:users", "read:connections"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.scope = tc.scope
			c := f.client(t)
			for range 2 {
				got, err := c.Authenticate(testContext(t))
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, tc.want) {
					t.Errorf("scopes = %q, want %q", got, tc.want)
				}
			}
			if n := c.Stats().TokenRequests; n != 1 {
				t.Errorf("TokenRequests = %d, want 1 (cached)", n)
			}
		})
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	tests := map[string]struct {
		status      int
		contentType string
		body        string
		wantKind    ErrorKind
		wantStatus  int // 0: no usable response
		wantCode    string
		wantMessage string
	}{
		"wrong secret": {
			status: 401, wantStatus: 401, body: `{"error":"access_denied","error_description":"Unauthorized"}`,
			wantKind: Unauthorized, wantCode: "access_denied", wantMessage: "Unauthorized",
		},
		"unknown client": {
			status: 401, wantStatus: 401, body: `{"error":"invalid_client","error_description":"Client authentication failed"}`,
			wantKind: Unauthorized, wantCode: "invalid_client", wantMessage: "Client authentication failed",
		},
		"no client grant": {
			status: 403, wantStatus: 403, body: `{"error":"unauthorized_client","error_description":"Client is not authorized to access \"https://t/api/v2/\". You need to create a \"client-grant\" associated to this API."}`,
			wantKind: Unauthorized, wantCode: "unauthorized_client",
			wantMessage: `Client is not authorized to access "https://t/api/v2/". You need to create a "client-grant" associated to this API.`,
		},
		"error in a 200 body": {
			status: 200, wantStatus: 200, body: `{"error":"access_denied","error_description":"Unauthorized"}`,
			wantKind: Unauthorized, wantCode: "access_denied", wantMessage: "Unauthorized",
		},
		"rate limited": {
			status: 429, wantStatus: 429, body: `{"error":"too_many_requests","error_description":"Global limit has been reached"}`,
			wantKind: RateLimited, wantCode: "too_many_requests", wantMessage: "Global limit has been reached",
		},
		"server error": {
			status: 503, wantStatus: 503, contentType: "text/html", body: `<html>SECRET maintenance</html>`,
			wantKind: ServerError,
		},
		"garbage success": {
			status: 200, contentType: "application/json", body: `{"access_token": SECRET`,
			wantKind: BadResponse,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.tokenHook = func(w http.ResponseWriter, _ *http.Request) bool {
				ct := tc.contentType
				if ct == "" {
					ct = "application/json"
				}
				w.Header().Set("Content-Type", ct)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			}
			c := f.client(t)
			_, err := c.Authenticate(testContext(t))
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v is not an *APIError", err)
			}
			if apiErr.Kind != tc.wantKind || apiErr.Code != tc.wantCode || apiErr.Message != tc.wantMessage {
				t.Errorf("got kind %v code %q message %q, want %v %q %q", apiErr.Kind, apiErr.Code, apiErr.Message, tc.wantKind, tc.wantCode, tc.wantMessage)
			}
			if apiErr.StatusCode != tc.wantStatus {
				t.Errorf("StatusCode = %d, want %d", apiErr.StatusCode, tc.wantStatus)
			}
			assertNoSecrets(t, err.Error())
			f.mu.Lock()
			n := len(f.tokenForms)
			f.mu.Unlock()
			if n != 1 {
				t.Errorf("token endpoint saw %d requests, want exactly 1 (no auth-style probing)", n)
			}
		})
	}
}

func TestUnauthorizedDropsTokenOnce(t *testing.T) {
	f := newFakeAuth0(t)
	for i := range 6 {
		id := fmt.Sprintf("auth0|%d", i)
		f.addUser(id, userBody(id))
	}
	f.rejected[m2mTokenPrefix+"1"] = true // e.g. revoked, or signing key rotated
	c := f.client(t)
	ctx := testContext(t)

	_, err := c.GetUser(ctx, "auth0|0")
	if !IsUnauthorized(err) {
		t.Fatalf("first call: got %v, want Unauthorized", err)
	}
	assertNoSecrets(t, err.Error())
	if st := c.Stats(); st.TokenRequests != 1 || st.APIRequests != 1 {
		t.Fatalf("after the 401: Stats = %+v, want 1 token and 1 API request (no retry loop)", st)
	}

	// Concurrent calls: whoever still holds the dropped token may see a 401,
	// but only one new token is ever fetched.
	var wg sync.WaitGroup
	for i := 1; i < 6; i++ {
		wg.Go(func() {
			if _, err := c.GetUser(ctx, fmt.Sprintf("auth0|%d", i)); err != nil {
				t.Errorf("GetUser after token drop: %v", err)
			}
		})
	}
	wg.Wait()
	if got := c.Stats().TokenRequests; got != 2 {
		t.Errorf("TokenRequests = %d, want 2", got)
	}
}

func TestConcurrentUnauthorizedDropsTokenOnce(t *testing.T) {
	f := newFakeAuth0(t)
	for i := range 8 {
		id := fmt.Sprintf("auth0|%d", i)
		f.addUser(id, userBody(id))
	}
	f.rejected[m2mTokenPrefix+"1"] = true
	c := f.client(t)
	// Fetch token 1 first so every concurrent caller starts with it.
	if _, err := c.Authenticate(testContext(t)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			_, err := c.GetUser(testContext(t), fmt.Sprintf("auth0|%d", i))
			if err != nil && !IsUnauthorized(err) {
				t.Errorf("GetUser: %v", err)
			}
		})
	}
	wg.Wait()
	if _, err := c.GetUser(testContext(t), "auth0|0"); err != nil {
		t.Fatalf("GetUser after the drop: %v", err)
	}
	if got := c.Stats().TokenRequests; got != 2 {
		t.Errorf("TokenRequests = %d, want 2: many 401s for one token must drop it once", got)
	}
}

func TestLate401DoesNotDropTheNewToken(t *testing.T) {
	f := newFakeAuth0(t)
	for _, id := range []string{"a", "b", "c"} {
		f.addUser(id, userBody(id))
	}
	f.rejected[m2mTokenPrefix+"1"] = true
	releaseB, openB := gate(t)
	bArrived := make(chan struct{})
	f.apiHook = func(_ http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api/v2/users/b" {
			close(bArrived)
			<-releaseB // answer 401 for token 1 only after token 2 is in use
		}
		return false
	}
	c := f.client(t)
	ctx := testContext(t)
	if _, err := c.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	bErr := make(chan error, 1)
	go func() {
		_, err := c.GetUser(ctx, "b")
		bErr <- err
	}()
	<-bArrived
	if _, err := c.GetUser(ctx, "a"); !IsUnauthorized(err) {
		t.Fatalf("a: got %v, want Unauthorized", err)
	}
	if _, err := c.GetUser(ctx, "c"); err != nil {
		t.Fatalf("c with the new token: %v", err)
	}
	openB()
	if err := <-bErr; !IsUnauthorized(err) {
		t.Fatalf("b: got %v, want Unauthorized", err)
	}
	if _, err := c.GetUser(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if got := c.Stats().TokenRequests; got != 2 {
		t.Errorf("TokenRequests = %d, want 2: a late 401 for the old token must not drop the new one", got)
	}
}
