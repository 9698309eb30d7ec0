package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// identity is one lineage of tokens: (tenant, Auth0 user id, connection) for user bindings,
// (tenant, enterprise connection) for connection bindings. Every binding of an identity shares
// one refresh-state Secret, one refresh per token lifetime and the same access token.
type identity struct {
	tenant     TenantKey
	userID     string // empty for a connection identity
	connection string // spec.user.connection (empty: the primary identity) or spec.connection.id
	// override fingerprints spec.refresh's tokenURL and client: a binding that refreshes
	// elsewhere keeps a lineage of its own, so what its endpoint answers never reaches the
	// Secrets of other bindings of the same user.
	override string
	// vault: the token comes from Auth0 Token Vault, a lineage apart from identities[]'s.
	vault bool
}

func identityOf(tenant TenantKey, b *authv1alpha1.IdPTokenBinding) identity {
	id := identity{tenant: tenant}
	switch {
	case b.Spec.User != nil:
		id.userID, id.connection = b.Spec.User.ID, b.Spec.User.Connection
		id.vault = b.Spec.User.Source == authv1alpha1.TokenSourceTokenVault
	case b.Spec.Connection != nil:
		id.connection = b.Spec.Connection.ID
	}
	if r := b.Spec.Refresh; r.TokenURL != "" || r.ClientCredentialsSecretRef != nil {
		ref := ""
		if r.ClientCredentialsSecretRef != nil {
			ref = r.ClientCredentialsSecretRef.Name
		}
		id.override = fmt.Sprintf("%s\x00%s\x00%s", r.TokenURL, b.Namespace, ref)
	}
	return id
}

// key is the identity's canonical text; NUL cannot occur in any of its parts.
func (id identity) key() string {
	k := fmt.Sprintf("%s\x00user\x00%s\x00%s", id.tenant, id.userID, id.connection)
	if id.userID == "" {
		k = fmt.Sprintf("%s\x00connection\x00%s", id.tenant, id.connection)
	}
	if id.override != "" {
		k += "\x00override\x00" + id.override
	}
	if id.vault {
		k += "\x00tokenvault"
	}
	return k
}

// hash is the first 16 hex digits of the SHA-256 of the key: it names the state Secret and is
// its auth.idptoken.dev/identity label.
func (id identity) hash() string {
	sum := sha256.Sum256([]byte(id.key()))
	return hex.EncodeToString(sum[:8])
}

// stateName is the name of the identity's refresh-state Secret in the tenant's home namespace.
func (id identity) stateName() string { return "idptoken-state-" + id.hash() }

// sourceOf names the lineage a binding's token must come from; a token held for another source
// (the spec now names another user, connection or tenant) is not the binding's.
func sourceOf(b *authv1alpha1.IdPTokenBinding) string {
	return identityOf(tenantKeyOf(b), b).hash()
}

// isStateOf tells whether a Secret is the operator's refresh state of that identity.
func isStateOf(s *corev1.Secret, id identity) bool {
	l := s.Labels
	return l[authv1alpha1.LabelManagedBy] == authv1alpha1.ManagedByValue &&
		l[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState &&
		l[authv1alpha1.LabelIdentity] == id.hash()
}

// lineageLocks serialises the refreshes of one identity within the manager, so that two
// bindings of a user never spend the same single-use refresh token.
type lineageLocks struct {
	mu    sync.Mutex
	locks map[string]*lineageLock
}

type lineageLock struct {
	sync.Mutex
	users int
}

func newLineageLocks() *lineageLocks { return &lineageLocks{locks: map[string]*lineageLock{}} }

// lock takes the identity's lock and returns its release.
func (l *lineageLocks) lock(id identity) func() {
	k := id.key()
	l.mu.Lock()
	lk := l.locks[k]
	if lk == nil {
		lk = &lineageLock{}
		l.locks[k] = lk
	}
	lk.users++
	l.mu.Unlock()
	lk.Lock()
	return func() {
		lk.Unlock()
		l.mu.Lock()
		if lk.users--; lk.users == 0 {
			delete(l.locks, k)
		}
		l.mu.Unlock()
	}
}

// ---- per-binding refresh state of earlier versions ----

// legacyStateName is the per-binding refresh-state Secret of versions before per-identity
// lineages; it is migrated into the identity's state and then deleted.
func legacyStateName(b *authv1alpha1.IdPTokenBinding) string {
	const suffix = ".idptoken-state"
	name := b.Name
	if len(name)+len(suffix) > 253 {
		name = name[:253-len(suffix)-13] + "-" + binding.HashToken(b.Name)[:12]
	}
	return name + suffix
}

// legacySourceOf is how earlier versions fingerprinted a binding's source.
func legacySourceOf(b *authv1alpha1.IdPTokenBinding) string {
	s := b.Spec
	kind := s.TenantRef.Kind
	if kind == "" {
		kind = authv1alpha1.TenantKindNamespaced
	}
	key := fmt.Sprintf("tenant=%s/%s", kind, s.TenantRef.Name)
	switch {
	case s.User != nil:
		key += fmt.Sprintf(";user=%q;connection=%q", s.User.ID, s.User.Connection)
	case s.Connection != nil:
		key += fmt.Sprintf(";connection-id=%q", s.Connection.ID)
	}
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:12])
}

// parseLegacyState reads a per-binding state Secret as the identity's held token when it was
// written for the binding's current source; its refresh token is the newest of the lineage.
func parseLegacyState(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding, id identity) *binding.Token {
	h := binding.ParseState(s.Data)
	if h == nil || h.Source != legacySourceOf(b) {
		return nil
	}
	h.Source = id.hash()
	return h
}
