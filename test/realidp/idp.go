package realidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	"github.com/ory/fosite/storage"
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
	clients   map[string]*fositeClient
	users     map[string]bool
	exchanges []Exchange
	issued    []string // every token fosite issued, for the leak check
	secrets   []string // every client secret ever registered, for the leak check
}

// fositeClient is a fosite client whose secret the test can change while the server runs.
type fositeClient struct {
	*fosite.DefaultOpenIDConnectClient
	hash   []byte
	secret string // so that the test can act as the client
}

// GetHashedSecret implements fosite.Client with the current secret.
func (c *fositeClient) GetHashedSecret() []byte { return c.hash }

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
	p := &IdP{clients: map[string]*fositeClient{}, users: map[string]bool{}}
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
	c := &fositeClient{
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
	p.secrets = append(p.secrets, secret)
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
	p.secrets = append(p.secrets, secret)
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

// ClientSecrets returns every secret any client ever had, for leak checks.
func (p *IdP) ClientSecrets() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.secrets...)
}
