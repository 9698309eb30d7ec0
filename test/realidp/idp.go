package realidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/storage"
	"github.com/ory/fosite/token/jwt"
)

// Paths of the IdP's endpoints.
const (
	AuthPath       = "/oauth2/auth"
	TokenPath      = "/oauth2/token"
	RevocationPath = "/oauth2/revoke"
)

// DefaultAccessTokenLifespan is the lifetime of access tokens unless IdPOptions says otherwise:
// longer than the operator's 30 s between renewals, short enough to see several in a test.
const DefaultAccessTokenLifespan = 45 * time.Second

// OfflineScope is the scope that makes the IdP issue a refresh token.
const OfflineScope = "offline_access"

// IdPOptions configure an IdP. The zero value is usable.
type IdPOptions struct {
	// AccessTokenLifespan of every access token. Default DefaultAccessTokenLifespan.
	AccessTokenLifespan time.Duration
}

// IdP is Ory fosite as an OAuth2 authorization server over HTTPS. Create it with NewIdP and stop
// it with Close. It is safe for concurrent use.
type IdP struct {
	srv      *httptest.Server
	provider fosite.OAuth2Provider
	hasher   fosite.Hasher
	// redirectURL is the one redirect URI of every client; the test reads the code from the
	// redirect and never follows it.
	redirectURL string

	// mu serialises every use of fosite: its MemoryStore is not made for concurrent requests.
	mu        sync.Mutex
	clients   map[string]*client
	users     map[string]bool
	exchanges []Exchange
	issued    []string // every token fosite issued, for the leak check
}

// client is a fosite client whose secret the test can change while the server runs.
type client struct {
	*fosite.DefaultOpenIDConnectClient
	hash   []byte
	secret string // so that the test can act as the client
}

// GetHashedSecret implements fosite.Client with the current secret.
func (c *client) GetHashedSecret() []byte { return c.hash }

// store is fosite's MemoryStore with the clients of the IdP. Only called with IdP.mu held.
type store struct {
	*storage.MemoryStore
	idp *IdP
}

// GetClient implements fosite.ClientManager.
func (s store) GetClient(_ context.Context, id string) (fosite.Client, error) {
	if c, ok := s.idp.clients[id]; ok {
		return c, nil
	}
	return nil, fosite.ErrNotFound
}

// NewIdP starts an IdP on a loopback port.
func NewIdP(o IdPOptions) (*IdP, error) {
	if o.AccessTokenLifespan <= 0 {
		o.AccessTokenLifespan = DefaultAccessTokenLifespan
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("realidp: signing key: %w", err)
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("realidp: global secret: %w", err)
	}
	p := &IdP{clients: map[string]*client{}, users: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc(AuthPath, p.authorize)
	mux.HandleFunc(TokenPath, p.token)
	mux.HandleFunc(RevocationPath, p.revoke)
	p.srv = httptest.NewUnstartedServer(mux)
	p.srv.StartTLS()
	p.redirectURL = p.srv.URL + "/login/callback"

	cfg := &fosite.Config{
		AccessTokenLifespan:   o.AccessTokenLifespan,
		RefreshTokenLifespan:  time.Hour,
		AuthorizeCodeLifespan: time.Minute,
		GlobalSecret:          secret,
		AccessTokenIssuer:     p.srv.URL,
		TokenURL:              p.srv.URL + TokenPath,
		ScopeStrategy:         fosite.ExactScopeStrategy,
		HashCost:              4, // bcrypt's least: client secrets are checked on every request
	}
	p.hasher = &fosite.BCrypt{Config: cfg}
	keyGetter := func(context.Context) (any, error) { return key, nil }
	// JWT access tokens (the operator reads their exp at the first sync), opaque refresh tokens.
	strategy := compose.NewOAuth2JWTStrategy(keyGetter, compose.NewOAuth2HMACStrategy(cfg), cfg)
	p.provider = compose.Compose(cfg, store{MemoryStore: storage.NewMemoryStore(), idp: p}, strategy,
		compose.OAuth2AuthorizeExplicitFactory,
		compose.OAuth2PKCEFactory,
		compose.OAuth2RefreshTokenGrantFactory,
		compose.OAuth2TokenIntrospectionFactory,
		compose.OAuth2TokenRevocationFactory,
	)
	return p, nil
}

// Close stops the server.
func (p *IdP) Close() { p.srv.Close() }

// URL is the server's base URL, https://127.0.0.1:<port>.
func (p *IdP) URL() string { return p.srv.URL }

// TokenURL is the token endpoint.
func (p *IdP) TokenURL() string { return p.srv.URL + TokenPath }

// CAPEM is the PEM of the server's self-signed certificate, for a tenant's caBundle.
func (p *IdP) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw})
}

// AddClient registers a confidential client that may use the authorization-code and refresh
// grants, authenticating at the token endpoint only with authMethod (AuthClientSecretPost or
// AuthClientSecretBasic).
func (p *IdP) AddClient(id, secret, authMethod string) error {
	hash, err := p.hasher.Hash(context.Background(), []byte(secret))
	if err != nil {
		return fmt.Errorf("realidp: hashing the secret of client %q: %w", id, err)
	}
	c := &client{
		DefaultOpenIDConnectClient: &fosite.DefaultOpenIDConnectClient{
			DefaultClient: &fosite.DefaultClient{
				ID:            id,
				RedirectURIs:  []string{p.redirectURL},
				ResponseTypes: []string{"code"},
				GrantTypes:    []string{"authorization_code", "refresh_token"},
				Scopes:        []string{OfflineScope, "profile"},
			},
			TokenEndpointAuthMethod: authMethod,
		},
		hash:   hash,
		secret: secret,
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clients[id] = c
	return nil
}

// SetClientSecret replaces a client's secret, as an IdP admin rotating it would: requests with
// the old one get invalid_client from then on.
func (p *IdP) SetClientSecret(id, secret string) error {
	hash, err := p.hasher.Hash(context.Background(), []byte(secret))
	if err != nil {
		return fmt.Errorf("realidp: hashing the secret of client %q: %w", id, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[id]
	if !ok {
		return fmt.Errorf("realidp: no client %q", id)
	}
	c.hash, c.secret = hash, secret
	return nil
}

// AddUser registers a user who can log in.
func (p *IdP) AddUser(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[name] = true
}

// Exchanges returns every token-endpoint request so far, oldest first.
func (p *IdP) Exchanges() []Exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Exchange(nil), p.exchanges...)
}

// IssuedTokens returns every access and refresh token issued so far. It is meant for leak checks
// only: never print them.
func (p *IdP) IssuedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.issued...)
}

// ClientSecrets returns the current secret of every client, for leak checks.
func (p *IdP) ClientSecrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.clients))
	for _, c := range p.clients {
		out = append(out, c.secret)
	}
	return out
}

// authorize is the authorization endpoint. The login page is a stand-in: the user named by
// login_hint is logged in and consents to every scope the client asked for and may have.
func (p *IdP) authorize(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := r.Context()
	ar, err := p.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	user := r.URL.Query().Get("login_hint")
	if !p.users[user] {
		p.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("No such user."))
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	resp, err := p.provider.NewAuthorizeResponse(ctx, ar, newSession(user))
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	p.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// token is the token endpoint; it records every request as an Exchange.
func (p *IdP) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := r.Context()
	ar, err := p.provider.NewAccessRequest(ctx, r, newSession(""))
	var resp fosite.AccessResponder
	if err == nil {
		resp, err = p.provider.NewAccessResponse(ctx, ar)
	}
	ex := Exchange{
		Caller: callerOf(r), ClientID: clientIDOf(r), Grant: r.PostForm.Get("grant_type"),
		AuthMethod: authMethodOf(r), Presented: Fingerprint(r.PostForm.Get("refresh_token")),
	}
	if err != nil {
		ex.Error = fosite.ErrorToRFC6749Error(err).ErrorField
		p.exchanges = append(p.exchanges, ex)
		p.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	refresh, _ := resp.GetExtra("refresh_token").(string)
	ex.Subject = ar.GetSession().GetSubject()
	ex.Access, ex.Refresh = Fingerprint(resp.GetAccessToken()), Fingerprint(refresh)
	p.exchanges = append(p.exchanges, ex)
	p.issued = append(p.issued, resp.GetAccessToken())
	if refresh != "" {
		p.issued = append(p.issued, refresh)
	}
	p.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// revoke is the RFC 7009 revocation endpoint: revoking a refresh token revokes its family.
func (p *IdP) revoke(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := r.Context()
	p.provider.WriteRevocationResponse(ctx, w, p.provider.NewRevocationRequest(ctx, r))
}

// Active reports whether fosite would accept token now, as an access token (refresh false) or
// as a refresh token (refresh true): introspection, which changes nothing.
func (p *IdP) Active(token string, refresh bool) bool {
	use := fosite.AccessToken
	if refresh {
		use = fosite.RefreshToken
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	got, _, err := p.provider.IntrospectToken(context.Background(), token, use, newSession(""))
	return err == nil && got == use
}

// session is the JWT session of a user's grant.
type session struct {
	oauth2.JWTSession
}

func newSession(subject string) *session {
	return &session{JWTSession: oauth2.JWTSession{
		JWTClaims: &jwt.JWTClaims{Subject: subject},
		JWTHeader: &jwt.Headers{},
		Subject:   subject,
	}}
}

// Clone gives a refreshed token fresh claims: fosite's JWTSession would keep the first token's
// iat.
func (s *session) Clone() fosite.Session {
	c := newSession(s.Subject)
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	c.Username = s.Username
	return c
}
