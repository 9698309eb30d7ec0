// Package demo runs the idptoken-operator end to end on one machine: a local control plane
// (kube-apiserver and etcd through envtest), a simulated Auth0 tenant with its identity
// providers (test/auth0sim), the manager binary, and the objects of config/samples/demo.
// It is the engine of `make demo` (hack/demo) and of the simulator command (cmd/auth0-sim).
package demo

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// Fixture names. config/samples/demo refers to these users and connections by name, so they
// are constants rather than options.
const (
	// M2MClientID is the client ID of the tenant's machine-to-machine application.
	M2MClientID = "idptoken-demo-operator"
	// TokenVaultClientID is the client ID of the tenant's Token Vault Privileged Worker,
	// which authenticates with a key pair made at start (private_key_jwt).
	TokenVaultClientID = "idptoken-demo-token-vault"

	IdPGoogle    = "google"    // Google-like: refresh tokens never rotate
	IdPMicrosoft = "microsoft" // Microsoft-like: every refresh returns a new refresh token; JWT access tokens
	IdPGitHub    = "github"    // GitHub-like: a refresh token works exactly once
	IdPWorkspace = "workspace" // the IdP behind the enterprise connection's admin tokens

	ConnGoogle    = "sim-google"
	ConnMicrosoft = "sim-microsoft"
	ConnGitHub    = "sim-github"
	ConnWorkspace = "acme-workspace"
	// ConnVault is a Google-like connection with Token Vault enabled: Auth0 keeps its tokens
	// in Token Vault, not in identities[].
	ConnVault = "sim-vault"

	ConnGoogleID    = "con_simgoogle00001"
	ConnMicrosoftID = "con_simmicrosoft001"
	ConnGitHubID    = "con_simgithub00001"
	ConnWorkspaceID = "con_acmeworkspace01"
	ConnVaultID     = "con_simvault000001"

	// UserAlice's primary identity is on sim-google; a sim-microsoft identity is linked to it.
	UserAlice = "oauth2|sim-google|1001"
	// UserCarol's only identity is on sim-github.
	UserCarol = "oauth2|sim-github|3003"

	// Users of the ClusterAuth0Tenant part of the demo, each bound by one team only, so that
	// the simulator's per-user read counts show which team's binding asked for whom.

	// UserBob (sim-google) is a team-a user: team-a binds him.
	UserBob = "oauth2|sim-google|2002"
	// UserDave (sim-microsoft) is a team-b user: team-b binds him.
	UserDave = "oauth2|sim-microsoft|4004"
	// UserErin (sim-google) is a team-a user that team-b tries, and is not allowed, to bind.
	UserErin = "oauth2|sim-google|5005"

	// UserFrank's only identity is on sim-vault: his token is read through Token Vault.
	UserFrank = "oauth2|sim-vault|6006"
)

// m2mScopes are the scopes of the tenant's machine-to-machine application: the four the
// operator needs, and read:events for a tenant with spec.events (the demo's re-login step).
var m2mScopes = []string{auth0sim.ScopeReadUsers, auth0sim.ScopeReadUserIdPTokens,
	auth0sim.ScopeReadConnections, auth0sim.ScopeReadConnectionOptions, auth0sim.ScopeReadEvents}

// UserInfo describes one user of the fixture, for humans.
type UserInfo struct {
	ID          string
	Connections []string
}

// Users lists the fixture's users and the connections of their identities (primary first).
func Users() []UserInfo {
	return []UserInfo{
		{UserAlice, []string{ConnGoogle, ConnMicrosoft}},
		{UserBob, []string{ConnGoogle}},
		{UserCarol, []string{ConnGitHub}},
		{UserDave, []string{ConnMicrosoft}},
		{UserErin, []string{ConnGoogle}},
		{UserFrank, []string{ConnVault}},
	}
}

// TenantOptions configure StartTenant.
type TenantOptions struct {
	// Addr is the listen address; loopback only. Default 127.0.0.1:0 (a free port).
	Addr string
	// TokenLifetime is the lifetime of every IdP access token (users' and admin tokens).
	TokenLifetime time.Duration
	// RateLimitPerSecond is the Management API limit; 0 means unlimited.
	RateLimitPerSecond int
	// Logf receives one line per request (never token values); nil discards them.
	Logf func(format string, args ...any)
}

// Tenant is a running simulated Auth0 tenant populated with the demo fixture.
type Tenant struct {
	Sim          *auth0sim.Server
	ClientID     string
	ClientSecret string
	// Lifetime is the IdP access-token lifetime.
	Lifetime time.Duration
	// vaultKeyPEM is the Token Vault worker's private key (PKCS#1 PEM); the simulator knows
	// only its public half.
	vaultKeyPEM []byte
}

// IdPInfo describes one simulated identity provider, for humans.
type IdPInfo struct {
	Name, Rotation, Kind, Connection, ConnectionID, TokenURL string
}

// StartTenant starts the simulator and registers the demo fixture: a machine-to-machine
// application with the four scopes the operator needs and read:events, four IdPs, four connections of strategy
// oauth2 (so that the operator refreshes at the simulated IdPs' token endpoints, whose URLs
// these connections carry in options.tokenURL), the users of Users with offline access, and
// one enterprise connection holding admin tokens. A fifth connection, sim-vault, keeps its
// tokens in Token Vault; its worker client's key pair is made here, and only the public key is
// registered with the simulator.
func StartTenant(o TenantOptions) (*Tenant, error) {
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if err := checkLoopback(o.Addr); err != nil {
		return nil, err
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = 2 * time.Minute
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("token vault key pair: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("token vault public key: %w", err)
	}
	sim, err := auth0sim.New(auth0sim.Options{
		Addr:               o.Addr,
		RateLimitPerSecond: o.RateLimitPerSecond,
		Logf:               o.Logf,
	})
	if err != nil {
		return nil, err
	}
	t := &Tenant{
		Sim: sim, ClientID: M2MClientID, ClientSecret: "demo_" + randomHex(24), Lifetime: o.TokenLifetime,
		vaultKeyPEM: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
	}
	sim.AddM2MClient(t.ClientID, t.ClientSecret, m2mScopes...)

	for _, p := range []auth0sim.IdPOptions{
		{Name: IdPGoogle, Rotation: auth0sim.RotationNone},
		{Name: IdPMicrosoft, Rotation: auth0sim.RotationRotate, JWT: true},
		// GitHub's shapes: errors with HTTP 200, JSON answers labelled text/plain.
		{Name: IdPGitHub, Rotation: auth0sim.RotationStrict, GitHubErrors: true, ContentType: "text/plain; charset=utf-8"},
		{Name: IdPWorkspace, Rotation: auth0sim.RotationNone, JWT: true},
	} {
		p.ClientID = "client-" + p.Name
		p.ClientSecret = "idp_" + randomHex(16)
		p.AccessTokenLifetime = o.TokenLifetime
		sim.AddIdP(p)
	}
	sim.AddConnection(auth0sim.ConnectionSpec{ID: ConnGoogleID, Name: ConnGoogle, Strategy: "oauth2", IdP: IdPGoogle})
	// An enterprise OIDC connection: the token endpoint comes from its issuer's discovery
	// document, and its client authenticates with HTTP Basic.
	sim.AddConnection(auth0sim.ConnectionSpec{ID: ConnMicrosoftID, Name: ConnMicrosoft, Strategy: "oidc", IdP: IdPMicrosoft,
		OIDC: auth0sim.OIDCByIssuer, TokenEndpointAuthMethod: auth0sim.ClientSecretBasic})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: ConnGitHubID, Name: ConnGitHub, Strategy: "oauth2", IdP: IdPGitHub})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: ConnWorkspaceID, Name: ConnWorkspace, Strategy: "oauth2", IdP: IdPWorkspace, AdminTokens: true})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: ConnVaultID, Name: ConnVault, Strategy: "oauth2", IdP: IdPGoogle, TokenVault: true})
	sim.AddTokenVaultClient(TokenVaultClientID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "")

	sim.AddUser(UserAlice,
		auth0sim.IdentitySpec{Connection: ConnGoogle, Provider: "oauth2", UserID: "sim-google|1001", IsSocial: true, IdP: IdPGoogle, OfflineAccess: true},
		auth0sim.IdentitySpec{Connection: ConnMicrosoft, Provider: "oauth2", UserID: "sim-microsoft|00000000-aaaa-4bbb-8ccc-000000001001", IsSocial: true, IdP: IdPMicrosoft, OfflineAccess: true},
	)
	sim.AddUser(UserCarol,
		auth0sim.IdentitySpec{Connection: ConnGitHub, Provider: "oauth2", UserID: "sim-github|3003", IsSocial: true, IdP: IdPGitHub, OfflineAccess: true},
	)
	sim.AddUser(UserBob,
		auth0sim.IdentitySpec{Connection: ConnGoogle, Provider: "oauth2", UserID: "sim-google|2002", IsSocial: true, IdP: IdPGoogle, OfflineAccess: true},
	)
	sim.AddUser(UserDave,
		auth0sim.IdentitySpec{Connection: ConnMicrosoft, Provider: "oauth2", UserID: "sim-microsoft|4004", IsSocial: true, IdP: IdPMicrosoft, OfflineAccess: true},
	)
	sim.AddUser(UserErin,
		auth0sim.IdentitySpec{Connection: ConnGoogle, Provider: "oauth2", UserID: "sim-google|5005", IsSocial: true, IdP: IdPGoogle, OfflineAccess: true},
	)
	sim.AddUser(UserFrank,
		auth0sim.IdentitySpec{Connection: ConnVault, Provider: "oauth2", UserID: "sim-vault|6006", IsSocial: true, IdP: IdPGoogle, OfflineAccess: true},
	)
	return t, nil
}

// Close stops the simulator.
func (t *Tenant) Close() { t.Sim.Close() }

// IdPs describes the simulated identity providers.
func (t *Tenant) IdPs() []IdPInfo {
	return []IdPInfo{
		{IdPGoogle, "none", "Google-like (refresh token never rotates)", ConnGoogle, ConnGoogleID, t.Sim.TokenURL(IdPGoogle)},
		{IdPMicrosoft, "rotate", "Microsoft-like (new refresh token each time, JWT access tokens), an oidc connection found by OIDC discovery, client_secret_basic", ConnMicrosoft, ConnMicrosoftID, t.Sim.ConnectionTokenURL(ConnMicrosoft)},
		{IdPGitHub, "strict", "GitHub-like (refresh token single-use, errors with HTTP 200, JSON labelled text/plain)", ConnGitHub, ConnGitHubID, t.Sim.TokenURL(IdPGitHub)},
		{IdPWorkspace, "none", "enterprise connection with admin tokens", ConnWorkspace, ConnWorkspaceID, t.Sim.TokenURL(IdPWorkspace)},
	}
}

// Vars are the values config/samples/demo templates refer to as ${NAME}.
func (t *Tenant) Vars() map[string]string {
	return map[string]string{
		"AUTH0_DOMAIN":        t.Sim.Domain(),
		"AUTH0_AUDIENCE":      t.Sim.Audience(),
		"AUTH0_CLIENT_ID":     t.ClientID,
		"AUTH0_CLIENT_SECRET": t.ClientSecret,
		"AUTH0_CA_BUNDLE_B64": base64.StdEncoding.EncodeToString(t.Sim.CAPEM()),
		// The Token Vault worker's credentials, for a Secret's data (base64).
		"TOKEN_VAULT_CLIENT_ID":       TokenVaultClientID,
		"TOKEN_VAULT_PRIVATE_KEY_B64": base64.StdEncoding.EncodeToString(t.vaultKeyPEM),
	}
}

// Files are the paths WriteFiles wrote.
type Files struct {
	CA, Env, JSON string
}

// WriteFiles writes ca.crt, credentials.env and credentials.json into dir. The credentials
// files hold the M2M application's client secret and are readable by the owner only. No
// token is written.
func (t *Tenant) WriteFiles(dir string) (Files, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return Files{}, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Files{}, err
	}
	f := Files{CA: filepath.Join(abs, "ca.crt"), Env: filepath.Join(abs, "credentials.env"), JSON: filepath.Join(abs, "credentials.json")}
	if err := os.WriteFile(f.CA, t.Sim.CAPEM(), 0o644); err != nil {
		return Files{}, err
	}
	vars := t.Vars()
	vars["AUTH0_CA_FILE"] = f.CA
	vars["AUTH0_TOKEN_URL"] = t.Sim.URL() + "/oauth/token"
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var env strings.Builder
	env.WriteString("# Simulated Auth0 tenant (cmd/auth0-sim). Load with: set -a; . ./credentials.env; set +a\n")
	for _, k := range keys {
		_, _ = fmt.Fprintf(&env, "%s=%s\n", k, shellQuote(vars[k]))
	}
	if err := writePrivate(f.Env, []byte(env.String())); err != nil {
		return Files{}, err
	}

	type idpJSON struct {
		Name         string `json:"name"`
		Rotation     string `json:"rotation"`
		Description  string `json:"description"`
		Connection   string `json:"connection"`
		ConnectionID string `json:"connection_id"`
		TokenURL     string `json:"token_url"`
	}
	doc := struct {
		Domain       string    `json:"domain"`
		Audience     string    `json:"audience"`
		TokenURL     string    `json:"token_url"`
		ClientID     string    `json:"client_id"`
		ClientSecret string    `json:"client_secret"`
		Scopes       []string  `json:"scopes"`
		CAFile       string    `json:"ca_file"`
		TokenLife    string    `json:"idp_access_token_lifetime"`
		Users        []string  `json:"users"`
		IdPs         []idpJSON `json:"idps"`
	}{
		Domain: t.Sim.Domain(), Audience: t.Sim.Audience(), TokenURL: vars["AUTH0_TOKEN_URL"],
		ClientID: t.ClientID, ClientSecret: t.ClientSecret,
		Scopes: m2mScopes,
		CAFile: f.CA, TokenLife: t.Lifetime.String(),
	}
	for _, u := range Users() {
		doc.Users = append(doc.Users, u.ID)
	}
	for _, p := range t.IdPs() {
		doc.IdPs = append(doc.IdPs, idpJSON{p.Name, p.Rotation, p.Kind, p.Connection, p.ConnectionID, p.TokenURL})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return Files{}, err
	}
	if err := writePrivate(f.JSON, append(b, '\n')); err != nil {
		return Files{}, err
	}
	return f, nil
}

func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
