/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// Two RSA keys shared by the tests: generating them is the slow part.
var testKeys = sync.OnceValue(func() [2]*rsa.PrivateKey {
	var keys [2]*rsa.PrivateKey
	for i := range keys {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		keys[i] = k
	}
	return keys
})

func publicPEM(t *testing.T, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// worker is a Privileged Worker client of the simulator that signs its own
// JWTs, so that tests can also sign wrong ones.
type worker struct {
	t   *testing.T
	s   *auth0sim.Server
	clk *testingclock.FakeClock
	id  string
	key *rsa.PrivateKey
}

func newWorker(t *testing.T, s *auth0sim.Server, clk *testingclock.FakeClock, id, secret string) *worker {
	t.Helper()
	k := testKeys()[0]
	s.AddTokenVaultClient(id, publicPEM(t, k), secret)
	return &worker{t: t, s: s, clk: clk, id: id, key: k}
}

// jwtSpec describes a JWT to sign; the zero value of a field means "the
// correct value".
type jwtSpec struct {
	key    *rsa.PrivateKey
	alg    jose.SignatureAlgorithm
	typ    string
	claims jwt.Claims
	extra  map[string]any
}

func (w *worker) sign(spec jwtSpec) string {
	w.t.Helper()
	if spec.key == nil {
		spec.key = w.key
	}
	if spec.alg == "" {
		spec.alg = jose.RS256
	}
	opts := &jose.SignerOptions{}
	if spec.typ != "" {
		opts = opts.WithType(jose.ContentType(spec.typ))
	}
	var key any = spec.key
	if spec.alg == jose.HS256 {
		key = []byte("0123456789abcdef0123456789abcdef")
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: spec.alg, Key: key}, opts)
	if err != nil {
		w.t.Fatal(err)
	}
	b := jwt.Signed(sig).Claims(spec.claims)
	if spec.extra != nil {
		b = b.Claims(spec.extra)
	}
	tok, err := b.Serialize()
	if err != nil {
		w.t.Fatal(err)
	}
	return tok
}

// claims returns correct claims for sub, valid now for a minute.
func (w *worker) claims(sub string) jwt.Claims {
	now := w.clk.Now().Truncate(time.Second)
	return jwt.Claims{
		Issuer: w.id, Subject: sub, Audience: jwt.Audience{"https://" + w.s.Domain() + "/"},
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: rand.Text(),
	}
}

func (w *worker) subject(user string) string {
	return w.sign(jwtSpec{typ: auth0sim.TokenVaultSubjectJWTType, claims: w.claims(user),
		extra: map[string]any{"audit_context": "idptoken-operator team-a/alice"}})
}

func (w *worker) assertion() string {
	return w.sign(jwtSpec{claims: w.claims(w.id)})
}

// form is a correct exchange request with a client assertion.
func (w *worker) form(user, connection string) url.Values {
	return url.Values{
		"grant_type":            {auth0sim.TokenVaultGrantType},
		"subject_token_type":    {auth0sim.TokenVaultSubjectTokenType},
		"subject_token":         {w.subject(user)},
		"requested_token_type":  {auth0sim.TokenVaultAccessTokenType},
		"connection":            {connection},
		"client_id":             {w.id},
		"client_assertion_type": {auth0sim.ClientAssertionType},
		"client_assertion":      {w.assertion()},
	}
}

type vaultAnswer struct {
	AccessToken     string `json:"access_token"`
	ExpiresIn       *int64 `json:"expires_in"`
	Scope           string `json:"scope"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	Error           string `json:"error"`
	Description     string `json:"error_description"`
}

func exchange(t *testing.T, c *http.Client, s *auth0sim.Server, form url.Values) (response, vaultAnswer) {
	t.Helper()
	r := postForm(t, c, s.URL()+"/oauth/token", form)
	var a vaultAnswer
	assertDecode(t, r.body, &a)
	return r, a
}

// vaultTenant is a simulator with a Token Vault connection "google-oauth2",
// a plain connection "github" and a user linked to both.
func vaultTenant(t *testing.T, opts auth0sim.Options, rotation auth0sim.RotationMode, offline bool) (*auth0sim.Server, *testingclock.FakeClock, *http.Client) {
	t.Helper()
	s, clk := newSim(t, opts)
	s.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "g", ClientSecret: "gs", Rotation: rotation, AccessTokenLifetime: time.Hour})
	s.AddIdP(auth0sim.IdPOptions{Name: "github", ClientID: "h", ClientSecret: "hs"})
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_g", Name: "google-oauth2", Strategy: "google-oauth2", IdP: "google", TokenVault: true})
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_h", Name: "github", Strategy: "github", IdP: "github"})
	s.AddUser("google-oauth2|1",
		auth0sim.IdentitySpec{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "1", IsSocial: true, IdP: "google", OfflineAccess: offline},
		auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "2", IsSocial: true, IdP: "github", OfflineAccess: true})
	return s, clk, clientFor(t, s)
}

func TestTokenVaultExchangeReturnsTheVaultedToken(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "")

	r, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
	if r.status != http.StatusOK {
		t.Fatalf("exchange: %d %s", r.status, r.body)
	}
	vaulted, exp := s.VaultedToken("google-oauth2|1", "google-oauth2")
	if a.AccessToken == "" || a.AccessToken != vaulted {
		t.Errorf("access_token is not the vaulted token")
	}
	if a.ExpiresIn == nil || *a.ExpiresIn != 3600 || !exp.Equal(t0.Add(time.Hour)) {
		t.Errorf("expires_in = %v, vaulted expiry %v; want 3600 and %v", a.ExpiresIn, exp, t0.Add(time.Hour))
	}
	if a.IssuedTokenType != auth0sim.TokenVaultAccessTokenType || a.TokenType != "Bearer" || a.Scope == "" {
		t.Errorf("issued_token_type %q, token_type %q, scope %q", a.IssuedTokenType, a.TokenType, a.Scope)
	}
	if r.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.header.Get("Cache-Control"))
	}
	if _, ok := s.AccessTokenValid(a.AccessToken); !ok {
		t.Error("the returned token is not valid at the IdP")
	}
	subjects := s.TokenVaultSubjects()
	if len(subjects) != 1 || subjects[0].UserID != "google-oauth2|1" || subjects[0].ClientID != "worker" ||
		subjects[0].Connection != "google-oauth2" || subjects[0].AuditContext != "idptoken-operator team-a/alice" || subjects[0].Lifetime != time.Minute {
		t.Errorf("subjects = %+v", subjects)
	}
	st := s.Stats()
	if st.TokenVaultExchanges != 1 || st.TokenVaultValidSubjectTokens != 1 || st.TokenVaultInvalidSubjectTokens != 0 || st.TokenVaultRefreshes != 0 {
		t.Errorf("stats = %+v", st)
	}

	// The other documented requested_token_type is accepted and echoed.
	f := w.form("google-oauth2|1", "google-oauth2")
	f.Set("requested_token_type", auth0sim.TokenVaultFederatedAccessTokenType)
	if r, a := exchange(t, c, s, f); r.status != http.StatusOK || a.IssuedTokenType != auth0sim.TokenVaultFederatedAccessTokenType {
		t.Errorf("federated-connection-access-token: %d, issued_token_type %q", r.status, a.IssuedTokenType)
	}

	// A JSON body works as well as a form.
	clk.Step(time.Second)
	f = w.form("google-oauth2|1", "google-oauth2")
	var parts []string
	for k := range f {
		parts = append(parts, `"`+k+`":"`+f.Get(k)+`"`)
	}
	req := newRequest(t, http.MethodPost, s.URL()+"/oauth/token", strings.NewReader("{"+strings.Join(parts, ",")+"}"))
	req.Header.Set("Content-Type", "application/json")
	if r := do(t, c, req); r.status != http.StatusOK {
		t.Errorf("JSON body: %d %s", r.status, r.body)
	}
}

func TestTokenVaultIdentitiesCarryNoTokens(t *testing.T) {
	s, _, c := vaultTenant(t, auth0sim.Options{}, auth0sim.RotationNone, true)
	tok := m2mToken(t, s, c, auth0sim.ScopeReadUsers, auth0sim.ScopeReadUserIdPTokens, auth0sim.ScopeReadConnections)

	r := get(t, c, s.URL()+"/api/v2/users/"+url.PathEscape("google-oauth2|1"), tok)
	var u struct {
		Identities []map[string]any `json:"identities"`
	}
	assertDecode(t, r.body, &u)
	if len(u.Identities) != 2 {
		t.Fatalf("identities: %s", r.body)
	}
	for _, id := range u.Identities {
		_, hasAT := id["access_token"]
		_, hasRT := id["refresh_token"]
		_, hasExp := id["expires_in"]
		vaulted := id["connection"] == "google-oauth2"
		if vaulted && (hasAT || hasRT || hasExp) {
			t.Errorf("Token Vault identity carries tokens: %v", id["connection"])
		}
		if !vaulted && (!hasAT || !hasRT) {
			t.Errorf("plain identity %v lost its tokens", id["connection"])
		}
	}

	r = get(t, c, s.URL()+"/api/v2/connections/con_g", tok)
	var conn struct {
		ConnectedAccounts *struct {
			Active bool `json:"active"`
		} `json:"connected_accounts"`
		Options struct {
			FCAT *struct {
				Active bool `json:"active"`
			} `json:"federated_connections_access_tokens"`
		} `json:"options"`
	}
	assertDecode(t, r.body, &conn)
	if conn.Options.FCAT == nil || !conn.Options.FCAT.Active || conn.ConnectedAccounts == nil || !conn.ConnectedAccounts.Active {
		t.Errorf("Token Vault connection lacks options.federated_connections_access_tokens.active: %s", r.body)
	}
	r = get(t, c, s.URL()+"/api/v2/connections/con_h", tok)
	if strings.Contains(string(r.body), "federated_connections_access_tokens") || strings.Contains(string(r.body), "connected_accounts") {
		t.Errorf("plain connection has the Token Vault flag: %s", r.body)
	}
}

func TestTokenVaultRefreshesOnlyOnceExpired(t *testing.T) {
	for _, rotation := range []auth0sim.RotationMode{auth0sim.RotationNone, auth0sim.RotationRotate, auth0sim.RotationStrict} {
		t.Run(string(rotation), func(t *testing.T) {
			s, clk, c := vaultTenant(t, auth0sim.Options{}, rotation, true)
			w := newWorker(t, s, clk, "worker", "")
			first, _ := s.VaultedToken("google-oauth2|1", "google-oauth2")

			clk.Step(time.Hour - time.Second) // one second left
			r, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
			if r.status != http.StatusOK || a.AccessToken != first || a.ExpiresIn == nil || *a.ExpiresIn != 1 {
				t.Fatalf("before expiry: %d, same token %v, expires_in %v", r.status, a.AccessToken == first, a.ExpiresIn)
			}
			if s.Stats().TokenVaultRefreshes != 0 {
				t.Fatal("refreshed before expiry")
			}

			// Three lifetimes in a row: each needs the (rotated) refresh token.
			prev := first
			for i := range 3 {
				clk.Step(time.Hour)
				r, a = exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
				if r.status != http.StatusOK || a.AccessToken == prev || a.ExpiresIn == nil || *a.ExpiresIn != 3600 {
					t.Fatalf("lifetime %d: %d %s, new token %v", i, r.status, r.body, a.AccessToken != prev)
				}
				prev = a.AccessToken
			}
			st := s.Stats()
			if st.TokenVaultRefreshes != 3 || st.IdPRefreshes["google"] != 3 {
				t.Errorf("refreshes: vault %d, IdP %d; want 3", st.TokenVaultRefreshes, st.IdPRefreshes["google"])
			}
		})
	}
}

func TestTokenVaultEarlyRefreshWindow(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{TokenVaultRefreshWindow: 5 * time.Minute}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "")
	first, _ := s.VaultedToken("google-oauth2|1", "google-oauth2")

	clk.Step(55*time.Minute - time.Second)
	if _, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); a.AccessToken != first {
		t.Fatal("refreshed before the window")
	}
	clk.Step(time.Second)
	_, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
	if a.AccessToken == first || a.ExpiresIn == nil || *a.ExpiresIn != 3600 {
		t.Fatalf("inside the window: new token %v, expires_in %v", a.AccessToken != first, a.ExpiresIn)
	}
}

func TestTokenVaultWithoutRefreshToken(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{TokenVaultRefreshWindow: time.Minute}, auth0sim.RotationNone, false)
	w := newWorker(t, s, clk, "worker", "")

	clk.Step(time.Hour - time.Second) // in the window, refresh impossible: the valid token is served
	if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
		t.Fatalf("valid token without refresh token: %d %s", r.status, r.body)
	}
	clk.Step(time.Second)
	r, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
	if r.status != http.StatusUnauthorized || a.Error != "access_denied" {
		t.Fatalf("expired without refresh token: %d %s", r.status, r.body)
	}
	s.Login("google-oauth2|1") // the user connects again
	if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
		t.Fatalf("after a new login: %d %s", r.status, r.body)
	}
}

func TestTokenVaultSubjectTokenVerification(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "")
	const user = "google-oauth2|1"
	good := func() jwtSpec {
		return jwtSpec{typ: auth0sim.TokenVaultSubjectJWTType, claims: w.claims(user)}
	}
	replayed := w.sign(good())
	if r, _ := exchange(t, c, s, withSubject(w.form(user, "google-oauth2"), replayed)); r.status != http.StatusOK {
		t.Fatalf("first use of a subject token: %d %s", r.status, r.body)
	}

	tests := map[string]func() string{
		"replayed jti":          func() string { return replayed },
		"typ JWT":               func() string { s := good(); s.typ = "JWT"; return w.sign(s) },
		"no typ":                func() string { s := good(); s.typ = ""; return w.sign(s) },
		"HS256":                 func() string { s := good(); s.alg = jose.HS256; return w.sign(s) },
		"PS256":                 func() string { s := good(); s.alg = jose.PS256; return w.sign(s) },
		"signed by another key": func() string { s := good(); s.key = testKeys()[1]; return w.sign(s) },
		"iss another client":    func() string { s := good(); s.claims.Issuer = "other"; return w.sign(s) },
		"aud the token endpoint": func() string {
			s := good()
			s.claims.Audience = jwt.Audience{s.claims.Audience[0] + "oauth/token"}
			return w.sign(s)
		},
		"aud without slash": func() string {
			s := good()
			s.claims.Audience = jwt.Audience{strings.TrimSuffix(s.claims.Audience[0], "/")}
			return w.sign(s)
		},
		"no sub":       func() string { s := good(); s.claims.Subject = ""; return w.sign(s) },
		"no jti":       func() string { s := good(); s.claims.ID = ""; return w.sign(s) },
		"jti too long": func() string { s := good(); s.claims.ID = strings.Repeat("j", 65); return w.sign(s) },
		"no exp":       func() string { s := good(); s.claims.Expiry = nil; return w.sign(s) },
		"no iat":       func() string { s := good(); s.claims.IssuedAt = nil; return w.sign(s) },
		"lifetime 61s": func() string {
			s := good()
			s.claims.Expiry = jwt.NewNumericDate(s.claims.IssuedAt.Time().Add(61 * time.Second))
			return w.sign(s)
		},
		"expired":       func() string { s := good(); s.claims = w.claimsAt(user, -2*time.Minute); return w.sign(s) },
		"iat 11s ahead": func() string { s := good(); s.claims = w.claimsAt(user, 11*time.Second); return w.sign(s) },
		"nbf 11s ahead": func() string {
			s := good()
			s.claims.NotBefore = jwt.NewNumericDate(clk.Now().Add(12 * time.Second))
			return w.sign(s)
		},
		"audit_context a map": func() string {
			s := good()
			s.extra = map[string]any{"audit_context": map[string]any{}}
			return w.sign(s)
		},
		"not a JWT": func() string { return "not-a-jwt" },
	}
	for name, subject := range tests {
		t.Run(name, func(t *testing.T) {
			before := s.Stats().TokenVaultInvalidSubjectTokens
			r, a := exchange(t, c, s, withSubject(w.form(user, "google-oauth2"), subject()))
			if r.status != http.StatusUnauthorized || a.Error != "invalid_grant" || a.AccessToken != "" {
				t.Fatalf("got %d %s, want 401 invalid_grant", r.status, r.body)
			}
			if got := s.Stats().TokenVaultInvalidSubjectTokens; got != before+1 {
				t.Errorf("invalid subject tokens %d -> %d", before, got)
			}
		})
	}
	// Skew within 10 s is tolerated.
	ahead := good()
	ahead.claims = w.claimsAt(user, 9*time.Second)
	if r, _ := exchange(t, c, s, withSubject(w.form(user, "google-oauth2"), w.sign(ahead))); r.status != http.StatusOK {
		t.Errorf("iat 9 s ahead: %d %s", r.status, r.body)
	}
	if st := s.Stats(); st.TokenVaultReplays != 1 || st.TokenVaultValidSubjectTokens != 2 {
		t.Errorf("replays %d, valid %d; want 1, 2", st.TokenVaultReplays, st.TokenVaultValidSubjectTokens)
	}
}

// claimsAt returns correct claims issued at now+offset.
func (w *worker) claimsAt(sub string, offset time.Duration) jwt.Claims {
	c := w.claims(sub)
	iat := w.clk.Now().Add(offset).Truncate(time.Second)
	c.IssuedAt, c.NotBefore, c.Expiry = jwt.NewNumericDate(iat), jwt.NewNumericDate(iat), jwt.NewNumericDate(iat.Add(time.Minute))
	return c
}

func withSubject(f url.Values, subject string) url.Values {
	f.Set("subject_token", subject)
	return f
}

func TestTokenVaultClientAuthentication(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "worker-secret")
	newWorker(t, s, clk, "nosecret", "")
	s.AddM2MClient("m2m", "m2m-secret", auth0sim.ScopeReadUsers)
	const user = "google-oauth2|1"
	assertion := func(mut func(*jwtSpec)) string {
		spec := jwtSpec{claims: w.claims(w.id)}
		if mut != nil {
			mut(&spec)
		}
		return w.sign(spec)
	}
	replayed := assertion(nil)
	if r, _ := exchange(t, c, s, set(w.form(user, "google-oauth2"), "client_assertion", replayed)); r.status != http.StatusOK {
		t.Fatalf("first use of an assertion: %d %s", r.status, r.body)
	}
	secretForm := func(id, secret string) url.Values {
		return set(set(set(set(w.form(user, "google-oauth2"), "client_assertion", ""), "client_assertion_type", ""), "client_id", id), "client_secret", secret)
	}

	tests := []struct {
		name       string
		form       func() url.Values
		basic      [2]string
		wantStatus int
		wantError  string
	}{
		{name: "assertion", form: func() url.Values { return w.form(user, "google-oauth2") }, wantStatus: 200},
		{name: "assertion without client_id", form: func() url.Values { return set(w.form(user, "google-oauth2"), "client_id", "") }, wantStatus: 200},
		{name: "client secret", form: func() url.Values { return secretForm("worker", "worker-secret") }, wantStatus: 200},
		{name: "client secret by HTTP Basic", form: func() url.Values { return secretForm("", "") }, basic: [2]string{"worker", "worker-secret"}, wantStatus: 200},
		{name: "wrong secret", form: func() url.Values { return secretForm("worker", "nope") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "secret for a client without one", form: func() url.Values { return secretForm("nosecret", "guess") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "no authentication", form: func() url.Values { return secretForm("worker", "") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "assertion and secret", form: func() url.Values { return set(w.form(user, "google-oauth2"), "client_secret", "worker-secret") }, wantStatus: 400, wantError: "invalid_request"},
		{name: "wrong assertion type", form: func() url.Values { return set(w.form(user, "google-oauth2"), "client_assertion_type", "jwt") }, wantStatus: 400, wantError: "invalid_request"},
		{name: "replayed assertion", form: func() url.Values { return set(w.form(user, "google-oauth2"), "client_assertion", replayed) }, wantStatus: 401, wantError: "invalid_client"},
		{name: "assertion by another key", form: func() url.Values {
			return set(w.form(user, "google-oauth2"), "client_assertion", assertion(func(s *jwtSpec) { s.key = testKeys()[1] }))
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "assertion aud the token endpoint", form: func() url.Values {
			return set(w.form(user, "google-oauth2"), "client_assertion", assertion(func(sp *jwtSpec) { sp.claims.Audience = jwt.Audience{s.URL() + "/oauth/token"} }))
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "assertion sub differs", form: func() url.Values {
			return set(w.form(user, "google-oauth2"), "client_assertion", assertion(func(sp *jwtSpec) { sp.claims.Subject = "x" }))
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "assertion lifetime 6m", form: func() url.Values {
			return set(w.form(user, "google-oauth2"), "client_assertion", assertion(func(sp *jwtSpec) {
				sp.claims.Expiry = jwt.NewNumericDate(sp.claims.IssuedAt.Time().Add(6 * time.Minute))
			}))
		}, wantStatus: 401, wantError: "invalid_client"},
		{name: "client_id differs from the assertion", form: func() url.Values { return set(w.form(user, "google-oauth2"), "client_id", "nosecret") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "unknown client", form: func() url.Values { return secretForm("ghost", "x") }, wantStatus: 401, wantError: "invalid_client"},
		{name: "M2M client without the grant", form: func() url.Values { return secretForm("m2m", "m2m-secret") }, wantStatus: 403, wantError: "unauthorized_client"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk.Step(time.Second)
			if tc.basic[0] != "" {
				req := newRequest(t, http.MethodPost, s.URL()+"/oauth/token", strings.NewReader(tc.form().Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				req.SetBasicAuth(tc.basic[0], tc.basic[1])
				r := do(t, c, req)
				if r.status != tc.wantStatus {
					t.Fatalf("got %d %s, want %d", r.status, r.body, tc.wantStatus)
				}
				return
			}
			r := postForm(t, c, s.URL()+"/oauth/token", tc.form())
			var a vaultAnswer
			assertDecode(t, r.body, &a)
			if r.status != tc.wantStatus || a.Error != tc.wantError {
				t.Fatalf("got %d %s, want %d %q", r.status, r.body, tc.wantStatus, tc.wantError)
			}
			if tc.wantStatus != 200 && a.AccessToken != "" {
				t.Error("an error response carries a token")
			}
		})
	}
	if got := s.Stats().TokenVaultReplays; got != 1 {
		t.Errorf("replays = %d, want 1", got)
	}
}

func set(f url.Values, k, v string) url.Values {
	if v == "" {
		f.Del(k)
	} else {
		f.Set(k, v)
	}
	return f
}

func TestTokenVaultRequestValidation(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "")
	s.AddUser("auth0|db") // no linked identity
	tests := map[string]struct {
		form       func() url.Values
		wantStatus int
		wantError  string
	}{
		"no connection": {func() url.Values { return set(w.form("google-oauth2|1", "x"), "connection", "") }, 400, "invalid_request"},
		"refresh token requested": {func() url.Values {
			return set(w.form("google-oauth2|1", "google-oauth2"), "requested_token_type", "http://auth0.com/oauth/token-type/token-vault-refresh-token")
		}, 400, "invalid_request"},
		"refresh token subject": {func() url.Values {
			return set(w.form("google-oauth2|1", "google-oauth2"), "subject_token_type", "urn:ietf:params:oauth:token-type:refresh_token")
		}, 400, "invalid_request"},
		"no subject token":               {func() url.Values { return set(w.form("google-oauth2|1", "google-oauth2"), "subject_token", "") }, 400, "invalid_request"},
		"connection without Token Vault": {func() url.Values { return w.form("google-oauth2|1", "github") }, 401, "access_denied"},
		"unknown connection":             {func() url.Values { return w.form("google-oauth2|1", "slack") }, 401, "access_denied"},
		"unknown user":                   {func() url.Values { return w.form("google-oauth2|404", "google-oauth2") }, 401, "access_denied"},
		"user without the identity":      {func() url.Values { return w.form("auth0|db", "google-oauth2") }, 401, "access_denied"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, a := exchange(t, c, s, tc.form())
			if r.status != tc.wantStatus || a.Error != tc.wantError || a.AccessToken != "" {
				t.Fatalf("got %d %s, want %d %q", r.status, r.body, tc.wantStatus, tc.wantError)
			}
		})
	}
}

func TestTokenVaultRateLimitAndFaults(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{TokenVaultRateLimitPerSecond: 2}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "")
	for i := range 2 {
		if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
	}
	r, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
	if r.status != http.StatusTooManyRequests || a.Error != "too_many_requests" || r.header.Get("Retry-After") != "1" {
		t.Fatalf("third in one second: %d %s Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
	clk.Step(time.Second)
	if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
		t.Fatalf("next second: %d %s", r.status, r.body)
	}

	s.SetFault("/oauth/token", auth0sim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 3 * time.Second, Times: 1})
	r, a = exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
	if r.status != http.StatusTooManyRequests || a.Error != "too_many_requests" || r.header.Get("Retry-After") != "3" {
		t.Fatalf("injected 429: %d %s Retry-After %q", r.status, r.body, r.header.Get("Retry-After"))
	}
	s.SetFault("/oauth/token", auth0sim.Fault{Status: http.StatusInternalServerError, Times: 1})
	if r, a = exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusInternalServerError || a.Error != "server_error" {
		t.Fatalf("injected 500: %d %s", r.status, r.body)
	}
	clk.Step(time.Second)
	if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
		t.Fatalf("after the faults: %d %s", r.status, r.body)
	}
	if s.Stats().TokenVaultExchanges != 4 {
		t.Errorf("exchanges = %d, want 4", s.Stats().TokenVaultExchanges)
	}
}

func TestTokenVaultIPAllowlist(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "")
	s.SetTokenVaultIPAllowlist("worker", "10.0.0.0/8", "2001:db8::1")
	r, a := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2"))
	if r.status != http.StatusForbidden || a.Error != "access_denied" || a.AccessToken != "" {
		t.Fatalf("from outside the allow-list: %d %s", r.status, r.body)
	}
	s.SetTokenVaultIPAllowlist("worker", "10.0.0.0/8", "127.0.0.1")
	if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
		t.Fatalf("from an allowed address: %d %s", r.status, r.body)
	}
	s.SetTokenVaultIPAllowlist("worker")
	if r, _ := exchange(t, c, s, w.form("google-oauth2|1", "google-oauth2")); r.status != http.StatusOK {
		t.Fatalf("with the list cleared: %d %s", r.status, r.body)
	}
}

func TestAddTokenVaultClientPanicsOnBadKey(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	for name, pemBytes := range map[string][]byte{
		"not PEM":     []byte("nope"),
		"private key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKeys()[0])}),
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			s.AddTokenVaultClient("w", pemBytes, "")
		})
	}
}
