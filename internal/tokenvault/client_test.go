package tokenvault

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func asConfigError(err error, target **ConfigError) bool { return errors.As(err, target) }

// assertNoKeyMaterial fails when msg quotes any base64 line of pemBytes.
func assertNoKeyMaterial(t *testing.T, msg string, pemBytes []byte) {
	t.Helper()
	for line := range strings.SplitSeq(string(pemBytes), "\n") {
		if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(msg, line) {
			t.Fatalf("message quotes key material: %q", msg)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	good := Config{Domain: domain, ClientID: clientID, PrivateKey: pkcs1PEM(testKey())}
	tests := map[string]struct {
		mutate     func(*Config)
		wantReason string
	}{
		"valid":                  {mutate: func(*Config) {}},
		"domain with scheme":     {mutate: func(c *Config) { c.Domain = "https://" + domain }, wantReason: ReasonInvalidConfig},
		"domain with path":       {mutate: func(c *Config) { c.Domain = domain + "/x" }, wantReason: ReasonInvalidConfig},
		"no domain":              {mutate: func(c *Config) { c.Domain = "" }, wantReason: ReasonInvalidConfig},
		"no client ID":           {mutate: func(c *Config) { c.ClientID = " " }, wantReason: ReasonInvalidConfig},
		"bad CA bundle":          {mutate: func(c *Config) { c.CABundle = []byte("not a cert") }, wantReason: ReasonInvalidConfig},
		"negative rate":          {mutate: func(c *Config) { c.RequestsPerSecond = -1 }, wantReason: ReasonInvalidConfig},
		"no key":                 {mutate: func(c *Config) { c.PrivateKey = nil }, wantReason: ReasonInvalidKey},
		"key with a secret too":  {mutate: func(c *Config) { c.ClientSecret = "s" }},
		"PKCS#8 key":             {mutate: func(c *Config) { c.PrivateKey = pkcs8PEM(t, testKey()) }},
		"public key as the key":  {mutate: func(c *Config) { c.PrivateKey = publicPEM(t, testKey()) }, wantReason: ReasonInvalidKey},
		"secret never in errors": {mutate: func(c *Config) { c.ClientSecret = "s3cr3t-value"; c.Domain = "" }, wantReason: ReasonInvalidConfig},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := good
			tc.mutate(&cfg)
			err := cfg.Validate()
			_, newErr := New(cfg)
			if tc.wantReason == "" {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v, New: %v", err, newErr)
				}
				return
			}
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Reason != tc.wantReason || newErr == nil {
				t.Fatalf("Validate: %v, New: %v; want reason %s", err, newErr, tc.wantReason)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error quotes the client secret: %v", err)
			}
		})
	}
}

// simTenant is a simulator with a Token Vault connection and a user on it,
// and a fake clock shared with the clients.
type simTenant struct {
	s   *auth0sim.Server
	clk *testingclock.FakeClock
}

const (
	simUser = "google-oauth2|7"
	simConn = "google-oauth2"
)

func newSimTenant(t testing.TB) simTenant {
	t.Helper()
	clk := testingclock.NewFakeClock(now)
	s, err := auth0sim.New(auth0sim.Options{Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	s.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "g", ClientSecret: "gs", AccessTokenLifetime: time.Hour})
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_g", Name: simConn, Strategy: "google-oauth2", IdP: "google", TokenVault: true})
	s.AddUser(simUser, auth0sim.IdentitySpec{Connection: simConn, Provider: "google-oauth2", UserID: "7", IdP: "google", OfflineAccess: true})
	s.AddTokenVaultClient(clientID, publicPEM(t, testKey()), "worker-secret")
	return simTenant{s: s, clk: clk}
}

func (st simTenant) client(t testing.TB, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{Domain: st.s.Domain(), ClientID: clientID, PrivateKey: pkcs1PEM(testKey()), CABundle: st.s.CAPEM(), Clock: st.clk, Burst: 100}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	return c
}

func TestExchangeAgainstTheSimulator(t *testing.T) {
	for name, mutate := range map[string]func(*Config){
		"private_key_jwt": nil,
		"client secret":   func(c *Config) { c.ClientSecret = "worker-secret" },
	} {
		t.Run(name, func(t *testing.T) {
			st := newSimTenant(t)
			c := st.client(t, mutate)
			ctx := context.Background()

			tok, err := c.Exchange(ctx, simUser, simConn, "idptoken-operator team-a/alice")
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			vaulted, exp := st.s.VaultedToken(simUser, simConn)
			if tok.AccessToken != vaulted || tok.ExpiresIn != time.Hour || !tok.ExpiresAt.Equal(now.Add(time.Hour)) || !tok.ExpiresAt.Equal(exp) {
				t.Errorf("token %v expires at %v; want the vaulted token, 1h, %v", tok, tok.ExpiresAt, exp)
			}
			if tok.IssuedTokenType != RequestedTokenType || tok.Scope == "" {
				t.Errorf("issued_token_type %q scope %q", tok.IssuedTokenType, tok.Scope)
			}

			// Later, the same token with its remaining lifetime.
			st.clk.Step(20 * time.Minute)
			again, err := c.Exchange(ctx, simUser, simConn, "x")
			if err != nil {
				t.Fatal(err)
			}
			if again.AccessToken != tok.AccessToken || again.ExpiresIn != 40*time.Minute || !again.ExpiresAt.Equal(tok.ExpiresAt) {
				t.Errorf("second exchange: same %v, expires_in %v, at %v", again.AccessToken == tok.AccessToken, again.ExpiresIn, again.ExpiresAt)
			}
			// Past the expiry Auth0 has refreshed it.
			st.clk.Step(41 * time.Minute)
			fresh, err := c.Exchange(ctx, simUser, simConn, "x")
			if err != nil {
				t.Fatal(err)
			}
			if fresh.AccessToken == tok.AccessToken || fresh.ExpiresIn != time.Hour {
				t.Errorf("after expiry: new token %v, expires_in %v", fresh.AccessToken != tok.AccessToken, fresh.ExpiresIn)
			}

			stats := st.s.Stats()
			if stats.TokenVaultExchanges != 3 || stats.TokenVaultValidSubjectTokens != 3 || stats.TokenVaultInvalidSubjectTokens != 0 || stats.TokenVaultReplays != 0 {
				t.Errorf("simulator stats %+v", stats)
			}
			for _, rec := range st.s.TokenVaultSubjects() {
				if rec.Lifetime > 60*time.Second || rec.UserID != simUser || rec.ClientID != clientID {
					t.Errorf("subject token %+v", rec)
				}
			}
			if strings.Contains(tok.String(), tok.AccessToken) {
				t.Error("Token.String shows the access token")
			}
		})
	}
}

func TestExchangeErrorsOverHTTPS(t *testing.T) {
	type setup struct {
		st simTenant
		c  *Client
	}
	tests := []struct {
		name    string
		arrange func(t *testing.T, s *setup)
		user    string
		want    Kind
		status  int
		retry   time.Duration
	}{
		{name: "no linked account", user: "google-oauth2|404", want: IdentityNotFound, status: 401},
		{name: "unknown client", arrange: func(t *testing.T, s *setup) {
			s.c = s.st.client(t, func(c *Config) { c.ClientID = "someone-else" })
		}, want: ClientAuthFailed, status: 401},
		{name: "another key registered", arrange: func(t *testing.T, s *setup) {
			other, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				t.Fatal(err)
			}
			s.st.s.AddTokenVaultClient(clientID, publicPEM(t, other), "")
		}, want: ClientAuthFailed, status: 401},
		{name: "wrong client secret", arrange: func(t *testing.T, s *setup) {
			s.c = s.st.client(t, func(c *Config) { c.ClientSecret = "wrong" })
		}, want: ClientAuthFailed, status: 401},
		{name: "wrong client secret, Auth0's access_denied Unauthorized", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetTokenVaultBadClientAccessDenied(true)
			s.c = s.st.client(t, func(c *Config) { c.ClientSecret = "wrong" })
		}, want: ClientAuthFailed, status: 401},
		{name: "unknown client, Auth0's access_denied Unauthorized", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetTokenVaultBadClientAccessDenied(true)
			s.c = s.st.client(t, func(c *Config) { c.ClientID = "someone-else" })
		}, want: ClientAuthFailed, status: 401},
		{name: "no linked account while bad clients get access_denied", user: "google-oauth2|404", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetTokenVaultBadClientAccessDenied(true)
		}, want: IdentityNotFound, status: 401},
		{name: "application without the grant", arrange: func(t *testing.T, s *setup) {
			s.st.s.AddM2MClient("m2m", "m2m-secret")
			s.c = s.st.client(t, func(c *Config) { c.ClientID, c.ClientSecret = "m2m", "m2m-secret" })
		}, want: NotAuthorized, status: 403},
		{name: "address outside the IP allow-list", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetTokenVaultIPAllowlist(clientID, "192.0.2.0/24")
		}, want: NotAuthorized, status: 403},
		{name: "429 with Retry-After", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetFault("/oauth/token", auth0sim.Fault{Status: 429, RetryAfter: 7 * time.Second, Times: 1})
		}, want: RateLimited, status: 429, retry: 7 * time.Second},
		{name: "500", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetFault("/oauth/token", auth0sim.Fault{Status: 500})
		}, want: Transient, status: 500},
		{name: "503", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetFault("/oauth/token", auth0sim.Fault{Status: 503})
		}, want: Transient, status: 503},
		{name: "malformed body", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetFault("/oauth/token", auth0sim.Fault{Malformed: true})
		}, want: Transient, status: 200},
		{name: "oversize body", arrange: func(t *testing.T, s *setup) {
			s.st.s.SetFault("/oauth/token", auth0sim.Fault{Oversize: true})
		}, want: Transient, status: 200},
		{name: "connection without Token Vault", arrange: func(t *testing.T, s *setup) {
			s.st.s.AddConnection(auth0sim.ConnectionSpec{ID: "con_g", Name: simConn, Strategy: "google-oauth2", IdP: "google"})
		}, want: IdentityNotFound, status: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &setup{st: newSimTenant(t)}
			s.c = s.st.client(t, nil)
			if tc.arrange != nil {
				tc.arrange(t, s)
			}
			user := tc.user
			if user == "" {
				user = simUser
			}
			tok, err := s.c.Exchange(context.Background(), user, simConn, "a")
			var e *Error
			if tok != nil || !errors.As(err, &e) {
				t.Fatalf("Exchange = %v, %v; want an *Error", tok, err)
			}
			if e.Kind != tc.want || e.StatusCode != tc.status || e.RetryAfter != tc.retry {
				t.Fatalf("got kind %v status %d retry %v (%v); want %v %d %v", e.Kind, e.StatusCode, e.RetryAfter, err, tc.want, tc.status, tc.retry)
			}
			if !errors.Is(err, tc.want.sentinel()) {
				t.Errorf("errors.Is(err, %v sentinel) is false", tc.want)
			}
			if IsTransient(err) != (tc.want == Transient || tc.want == RateLimited) {
				t.Errorf("IsTransient = %v for %v", IsTransient(err), tc.want)
			}
			msg := err.Error()
			if auth0sim.TokenPattern.MatchString(msg) || strings.Contains(msg, "eyJ") || strings.Contains(msg, "worker-secret") || strings.Contains(msg, "m2m-secret") {
				t.Errorf("error leaks a credential: %s", msg)
			}
		})
	}
}

func TestRateLimitedHoldsOffWithoutARequest(t *testing.T) {
	st := newSimTenant(t)
	c := st.client(t, nil)
	st.s.SetFault("/oauth/token", auth0sim.Fault{Status: 429, RetryAfter: 5 * time.Second, Times: 1})
	if _, err := c.Exchange(context.Background(), simUser, simConn, ""); KindOf(err) != RateLimited {
		t.Fatalf("first: %v", err)
	}
	// The fault is spent: a request now would succeed, so a RateLimited
	// answer proves none was sent.
	st.clk.Step(2 * time.Second)
	_, err := c.Exchange(context.Background(), simUser, simConn, "")
	if wait, ok := RetryAfter(err); !ok || wait != 3*time.Second {
		t.Fatalf("during the hold: %v (wait %v), want RateLimited with 3s left", err, wait)
	}
	st.clk.Step(3 * time.Second)
	if _, err := c.Exchange(context.Background(), simUser, simConn, ""); err != nil {
		t.Fatalf("after the hold: %v", err)
	}
}

func TestClientSideRateLimitWaitsOnTheClock(t *testing.T) {
	st := newSimTenant(t)
	c := st.client(t, func(c *Config) { c.RequestsPerSecond, c.Burst = 1, 1 })
	if _, err := c.Exchange(context.Background(), simUser, simConn, ""); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Exchange(context.Background(), simUser, simConn, "")
		done <- err
	}()
	// The second call waits for a token of the bucket, on the fake clock.
	for !st.clk.HasWaiters() {
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("second call did not wait: %v", err)
	default:
	}
	st.clk.Step(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("second call: %v", err)
	}

	// A cancelled context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !st.clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := c.Exchange(ctx, simUser, simConn, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
}

func TestRedirectsAreNeverFollowed(t *testing.T) {
	var followed atomic.Int64
	target := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		followed.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"stolen","expires_in":60}`))
	}))
	defer target.Close()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/oauth/token", status)
		}))
		c, err := New(Config{
			Domain: strings.TrimPrefix(redirector.URL, "https://"), ClientID: clientID, PrivateKey: pkcs1PEM(testKey()),
			Transport: redirector.Client().Transport,
		})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exchange(context.Background(), simUser, simConn, "")
		redirector.Close()
		if KindOf(err) != Transient || !strings.Contains(err.Error(), "redirect") {
			t.Errorf("%d: err = %v, want a Transient redirect error", status, err)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
}

func TestServerTextIsMasked(t *testing.T) {
	// A server that echoes the request into its error description.
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		desc := "bad " + r.PostForm.Get("subject_token") + " and " + r.PostForm.Get("client_assertion") + " and " + r.PostForm.Get("client_secret")
		_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"` + desc + `"}`))
	}))
	defer srv.Close()
	for _, secret := range []string{"", "a-client-secret-value"} {
		c, err := New(Config{Domain: strings.TrimPrefix(srv.URL, "https://"), ClientID: clientID, ClientSecret: secret, PrivateKey: pkcs1PEM(testKey()), Transport: srv.Client().Transport})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Exchange(context.Background(), simUser, simConn, "")
		if KindOf(err) != IdentityNotFound {
			t.Fatalf("err = %v, want IdentityNotFound", err)
		}
		msg := err.Error()
		if strings.Contains(msg, "eyJ") || (secret != "" && strings.Contains(msg, secret)) || !strings.Contains(msg, "[redacted]") {
			t.Errorf("error is not masked: %s", msg)
		}
	}
}

func TestConcurrentExchangesAreEachValidAndUnique(t *testing.T) {
	st := newSimTenant(t)
	c := st.client(t, nil)
	const n = 40
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := c.Exchange(context.Background(), simUser, simConn, "concurrent"); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	stats := st.s.Stats()
	if stats.TokenVaultExchanges != n || stats.TokenVaultValidSubjectTokens != n || stats.TokenVaultReplays != 0 {
		t.Errorf("simulator stats %+v; want %d valid exchanges and no replay", stats, n)
	}
}

func TestLoadSecretData(t *testing.T) {
	key := pkcs1PEM(testKey())
	var cfg Config
	if err := cfg.LoadSecretData(map[string][]byte{"client_id": []byte("worker\n"), "private_key": key}); err != nil {
		t.Fatal(err)
	}
	if cfg.ClientID != "worker" || string(cfg.PrivateKey) != string(key) || cfg.ClientSecret != "" {
		t.Errorf("loaded client %q, secret set %v", cfg.ClientID, cfg.ClientSecret != "")
	}
	if err := cfg.LoadSecretData(map[string][]byte{"client_id": []byte("w"), "private_key": key, "client_secret": []byte("s ")}); err != nil || cfg.ClientSecret != "s" {
		t.Errorf("with a client secret: %v", err)
	}
	for _, missing := range []string{"client_id", "private_key"} {
		data := map[string][]byte{"client_id": []byte("w"), "private_key": key}
		delete(data, missing)
		var ce *ConfigError
		if err := (&Config{}).LoadSecretData(data); !errors.As(err, &ce) || !strings.Contains(err.Error(), missing) {
			t.Errorf("without %s: %v", missing, err)
		}
	}
}
