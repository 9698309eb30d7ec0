package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/idp"
	"github.com/idptoken/idptoken-operator/internal/tokenvault"
	"github.com/idptoken/idptoken-operator/internal/usercache"
)

// ManagementAPI is what the controllers need from a tenant's Auth0 Management API.
type ManagementAPI interface {
	Authenticate(ctx context.Context) ([]string, error)
	GetUser(ctx context.Context, id string) (*auth0.User, error)
	GetConnection(ctx context.Context, id string) (*auth0.Connection, error)
	GetConnectionByName(ctx context.Context, name string) (*auth0.Connection, error)
	// HTTPClient carries the tenant's CA bundle and timeouts, for the IdP calls made for it.
	HTTPClient() *http.Client
	// M2MQuota is what the client knows of its machine-to-machine token quota.
	M2MQuota() auth0.QuotaState
}

// TenantKey names a tenant of either kind: Namespace is empty for a ClusterAuth0Tenant.
type TenantKey struct {
	Kind authv1alpha1.TenantKind
	types.NamespacedName
}

// String renders the key as Kind/namespace/name or Kind/name; it is also the tenant's label in
// metrics and the auth.idptoken.dev/tenant annotation of refresh-state Secrets.
func (k TenantKey) String() string {
	if k.Namespace == "" {
		return string(k.Kind) + "/" + k.Name
	}
	return string(k.Kind) + "/" + k.Namespace + "/" + k.Name
}

// tenantKeyOf returns the key of the tenant a binding refers to.
func tenantKeyOf(b *authv1alpha1.IdPTokenBinding) TenantKey {
	if b.Spec.TenantRef.Kind == authv1alpha1.TenantKindCluster {
		return TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: b.Spec.TenantRef.Name}}
	}
	return TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.TenantRef.Name}}
}

// tenantBindings lists the bindings that use the tenant key: the cache's own objects, to be read
// only. Bindings are not indexed by tenant: an index keeps two entries per binding (its
// namespace's and the cluster's) in sets of every binding of the tenant: 1.9 MB of the heap
// profile at 10,000 bindings. The lists are rare (a tenant changed, a re-read after lost events)
// and go through every binding of the tenant anyway.
func tenantBindings(ctx context.Context, c client.Reader, key TenantKey) ([]*authv1alpha1.IdPTokenBinding, error) {
	list := &authv1alpha1.IdPTokenBindingList{}
	opts := []client.ListOption{client.UnsafeDisableDeepCopy}
	if key.Kind != authv1alpha1.TenantKindCluster {
		opts = append(opts, client.InNamespace(key.Namespace))
	}
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	var bound []*authv1alpha1.IdPTokenBinding
	for i := range list.Items {
		if tenantKeyOf(&list.Items[i]) == key {
			bound = append(bound, &list.Items[i])
		}
	}
	return bound, nil
}

// TokenVaultAPI is what bindings need of Auth0 Token Vault.
type TokenVaultAPI interface {
	Exchange(ctx context.Context, userID, connection, auditContext string) (*tokenvault.Token, error)
}

// NewManagementAPI builds a client from a tenant's configuration.
type NewManagementAPI func(cfg auth0.Config) (ManagementAPI, error)

// TenantClients holds one Management API client per tenant, shared by the tenant controller
// (which builds and authenticates it) and the binding controller (which uses it). Sharing one
// client shares its cached M2M token, its rate limiter and its request coalescing.
type TenantClients struct {
	newAPI NewManagementAPI

	mu      sync.RWMutex
	tenants map[TenantKey]*tenantClient
}

type tenantClient struct {
	fingerprint string
	api         ManagementAPI
	ready       bool

	// Token Vault's Privileged Worker client, when the tenant has spec.tokenVault.
	vault        TokenVaultAPI
	vaultFP      string
	vaultRefusal string // why Auth0 last refused the client (403), for the tenant's condition

	mu        sync.Mutex
	endpoints map[string]idp.Endpoint // last good IdP endpoint per Auth0 connection name
	// unsupported are the connections the operator cannot refresh through, and why, as last
	// found (tenant_endpoints.go); under mu.
	unsupported map[string]unsupportedVerdict
	// resolver reads OIDC discovery documents through the tenant's HTTP client.
	resolver *idp.Resolver

	// users are recent user reads, shared by bindings of the same user; bounded, as a tenant's
	// users must not be able to grow the manager without limit. It has its own lock.
	users *usercache.Cache
}

// RecentUserTTL is how long a user read from Auth0 serves other bindings of the same user, so
// that N bindings over U users cost about U reads per sync, not N, in whatever order they come:
// a sync of U users at the free tier's 2 req/s takes U/2 seconds, 5 minutes for 600 users. A
// binding that wants something newer than the token it holds never takes a read older than it.
const RecentUserTTL = 5 * time.Minute

// sweepEvery spaces the sweeps of expired reads, so that a large sync does not scan the cache on
// every read.
const sweepEvery = 30 * time.Second

// newUserCache returns a tenant's empty cache of recent user reads, within the design doc's
// per-tenant bounds: 1,000 users or 16 MiB of estimated size, least recently used out.
func newUserCache() *usercache.Cache {
	return usercache.New(usercache.Options{
		TTL:        RecentUserTTL,
		SweepEvery: sweepEvery,
		MaxUsers:   usercache.DefaultMaxUsers,
		MaxBytes:   usercache.DefaultMaxBytes,
	})
}

// NewTenantClients returns an empty registry; newAPI nil means the real Auth0 client.
func NewTenantClients(newAPI NewManagementAPI) *TenantClients {
	if newAPI == nil {
		newAPI = func(cfg auth0.Config) (ManagementAPI, error) { return auth0.NewClient(cfg) }
	}
	return &TenantClients{newAPI: newAPI, tenants: map[TenantKey]*tenantClient{}}
}

// fingerprint identifies a configuration without keeping its secret in a readable form.
func fingerprint(cfg auth0.Config) string {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%q %q %q %q %q %v %d", cfg.Domain, cfg.Audience, cfg.ClientID, cfg.ClientSecret,
		cfg.CABundle, cfg.RequestsPerSecond, cfg.Burst)
	return hex.EncodeToString(h.Sum(nil))
}

// Ensure returns the tenant's client for cfg, building a new one only when the configuration
// changed, so that the cached M2M token survives ordinary reconciles.
func (t *TenantClients) Ensure(key TenantKey, cfg auth0.Config) (ManagementAPI, error) {
	fp := fingerprint(cfg)
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.tenants[key]; ok && c.fingerprint == fp {
		return c.api, nil
	}
	api, err := t.newAPI(cfg)
	if err != nil {
		return nil, err
	}
	t.tenants[key] = &tenantClient{fingerprint: fp, api: api, endpoints: map[string]idp.Endpoint{}, users: newUserCache(),
		unsupported: map[string]unsupportedVerdict{}, resolver: &idp.Resolver{HTTPClient: api.HTTPClient()}}
	return api, nil
}

// SetReady records whether the tenant's client authenticated with the scopes it needs.
func (t *TenantClients) SetReady(key TenantKey, ready bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c, ok := t.tenants[key]; ok {
		c.ready = ready
	}
}

// Forget drops a tenant's client, when the tenant or its credentials are gone.
func (t *TenantClients) Forget(key TenantKey) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.tenants, key)
}

// API returns the tenant's client, also while it cannot authenticate: its HTTP client still
// serves refreshes at the IdP through the last good endpoints. Nil when there is none.
func (t *TenantClients) API(key TenantKey) ManagementAPI {
	if c := t.get(key); c != nil {
		return c.api
	}
	return nil
}

// Ready tells whether the tenant's client authenticated with the scopes the operator needs.
func (t *TenantClients) Ready(key TenantKey) bool {
	c := t.get(key)
	return c != nil && c.ready
}

func (t *TenantClients) get(key TenantKey) *tenantClient {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.tenants[key]
}

// GetUser reads a user through the tenant's client. It answers from a read younger than
// RecentUserTTL made after notBefore: a binding that wants something newer than what it holds
// passes the time it got that, so a recent read never hides a new login from it. Concurrent
// reads of one user that miss the cache are coalesced by the client into one request.
func (t *TenantClients) GetUser(ctx context.Context, key TenantKey, id string, now, notBefore time.Time) (*auth0.User, error) {
	c := t.get(key)
	if c == nil {
		return nil, fmt.Errorf("no client for tenant %s", key)
	}
	if u, ok := c.users.Get(id, now, notBefore); ok {
		return u, nil
	}
	u, err := c.api.GetUser(ctx, id)
	if err != nil {
		if auth0.IsNotFound(err) {
			c.users.Remove(id) // no other binding of the user is served a read from before it went
		}
		return nil, err
	}
	c.users.Add(id, u, now)
	return u, nil
}

// ForgetUser drops the tenant's recent read of a user: Auth0 reported it changed or deleted.
func (t *TenantClients) ForgetUser(key TenantKey, id string) {
	if c := t.get(key); c != nil {
		c.users.Remove(id)
	}
}
