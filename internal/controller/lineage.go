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

// identityOf is the lineage binding b's token belongs to (see binding.IdentityOf).
func identityOf(tenant TenantKey, b *authv1alpha1.IdPTokenBinding) binding.Identity {
	return binding.IdentityOf(tenant.String(), b)
}

// identityIndexValues are the identity-index entries of a binding: its lineage only. (The name
// versions before length-prefixed identity keys gave it is not indexed: the state collector
// computes those names when it finds a state Secret no lineage refers to; see previousHashes.)
func identityIndexValues(b *authv1alpha1.IdPTokenBinding) []string {
	return []string{identityOf(tenantKeyOf(b), b).Hash()}
}

// previousHashOf is the name versions before length-prefixed identity keys gave the lineage of
// b: an unmigrated state Secret of that name is kept while b may still migrate it.
func previousHashOf(b *authv1alpha1.IdPTokenBinding) string {
	return binding.SpecIdentityOf(tenantKeyOf(b).String(), b).PreviousHash()
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
func (l *lineageLocks) lock(id binding.Identity) func() {
	k := id.Key()
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
func parseLegacyState(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding, id binding.Identity) *binding.Token {
	h := binding.ParseState(s.Data)
	if h == nil || h.Lineage != legacySourceOf(b) {
		return nil
	}
	h.Lineage = id.Hash()
	return h
}
