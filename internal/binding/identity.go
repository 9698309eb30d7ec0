package binding

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// Identity is one lineage of tokens: (tenant, Auth0 user id, connection) for user bindings,
// (tenant, enterprise connection) for connection bindings. Every binding of an identity shares
// one refresh-state Secret, one refresh per token lifetime and the same access token.
type Identity struct {
	// Tenant is the tenant as TenantKey renders it: Kind/name or Kind/namespace/name.
	Tenant string
	UserID string // empty for a connection identity
	// Connection is the identity's connection name (for a user binding that names none, the
	// primary identity's, once a read has resolved it) or spec.connection.id.
	Connection string
	// Override is spec.refresh's own endpoint and client: a binding that refreshes elsewhere
	// keeps a lineage of its own, so what its endpoint answers never reaches the Secrets of
	// other bindings of the same user.
	Override Override
	// Vault: the token comes from Auth0 Token Vault, a lineage apart from identities[]'s.
	Vault bool
}

// Override fingerprints spec.refresh.tokenURL and clientCredentialsSecretRef.
type Override struct {
	TokenURL, Namespace, SecretName string
}

// IdentityOf is the identity of binding b of tenant (as TenantKey renders it). A user binding
// that names no connection joins its primary identity's lineage as soon as the binding's status
// shows which connection that is (ResolvedConnection): two spellings of one identity never make
// two lineages.
func IdentityOf(tenant string, b *authv1alpha1.IdPTokenBinding) Identity {
	id := SpecIdentityOf(tenant, b)
	if b.Spec.User != nil && id.Connection == "" {
		id.Connection = ResolvedConnection(b)
	}
	return id
}

// SpecIdentityOf is the identity as the spec spells it, without resolving an empty connection.
func SpecIdentityOf(tenant string, b *authv1alpha1.IdPTokenBinding) Identity {
	id := Identity{Tenant: tenant}
	switch {
	case b.Spec.User != nil:
		id.UserID, id.Connection = b.Spec.User.ID, b.Spec.User.Connection
		id.Vault = b.Spec.User.Source == authv1alpha1.TokenSourceTokenVault
	case b.Spec.Connection != nil:
		id.Connection = b.Spec.Connection.ID
	}
	if r := b.Spec.Refresh; r.TokenURL != "" || r.ClientCredentialsSecretRef != nil {
		id.Override = Override{TokenURL: r.TokenURL, Namespace: b.Namespace}
		if r.ClientCredentialsSecretRef != nil {
			id.Override.SecretName = r.ClientCredentialsSecretRef.Name
		}
	}
	return id
}

// ResolvedConnection is the connection of the primary identity of a user binding that names
// none, as its status records it; "" while unresolved. The status counts only when it proves
// to be about spec.user.id (provider|user_id of the primary identity is the Auth0 user_id), so
// a status left from an earlier spec.user.id resolves nothing.
func ResolvedConnection(b *authv1alpha1.IdPTokenBinding) string {
	st := b.Status.Identity
	if b.Spec.User == nil || st == nil || st.Connection == "" || !IsPrimaryOf(b.Spec.User.ID, *st) {
		return ""
	}
	return st.Connection
}

// IsPrimaryOf tells whether identity is the primary identity of the Auth0 user userID.
func IsPrimaryOf(userID string, identity authv1alpha1.IdentityStatus) bool {
	return identity.Provider != "" && identity.Provider+"|"+identity.UserID == userID
}

// Key is the identity's canonical text. Each field is length-prefixed, so that no two distinct
// identities share a key whatever bytes their fields hold.
func (id Identity) Key() string {
	var b strings.Builder
	field := func(s string) {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	kind := "user"
	if id.UserID == "" {
		kind = "connection"
	}
	field("v2")
	field(kind)
	field(id.Tenant)
	field(id.UserID)
	field(id.Connection)
	field(id.Override.TokenURL)
	field(id.Override.Namespace)
	field(id.Override.SecretName)
	field(strconv.FormatBool(id.Vault))
	return b.String()
}

// Hash is the first 16 hex digits of the SHA-256 of the key: it names the state Secret and is
// its auth.idptoken.dev/identity label.
func (id Identity) Hash() string { return hash16(id.Key()) }

// StateName is the name of the identity's refresh-state Secret in the tenant's home namespace.
func (id Identity) StateName() string { return StateNamePrefix + id.Hash() }

// StateNamePrefix starts the name of every identity's refresh-state Secret.
const StateNamePrefix = "idptoken-state-"

// PreviousHash is the hash the versions before length-prefixed keys gave this identity (as the
// spec spells it): its state Secret is migrated once, then deleted.
func (id Identity) PreviousHash() string {
	k := fmt.Sprintf("%s\x00user\x00%s\x00%s", id.Tenant, id.UserID, id.Connection)
	if id.UserID == "" {
		k = fmt.Sprintf("%s\x00connection\x00%s", id.Tenant, id.Connection)
	}
	if o := id.Override; o != (Override{}) {
		k += "\x00override\x00" + fmt.Sprintf("%s\x00%s\x00%s", o.TokenURL, o.Namespace, o.SecretName)
	}
	if id.Vault {
		k += "\x00tokenvault"
	}
	return hash16(k)
}

func hash16(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// StateOwner is what a refresh-state Secret must show to be an identity's: the identity label
// (Hash), the annotations naming the identity, and a controller ownerReference to the tenant.
type StateOwner struct {
	Hash      string
	Identity  Identity
	TenantUID types.UID
}

// AcceptState tells whether s may be used as the state of o's identity, and if not, why. Only
// the operator writes a Secret that passes: the annotations must name the identity exactly (not
// only its 16-hex name) and its controller must be the tenant object, which no namespace
// editor can make a Secret of another namespace point to. The reason names fields, never data.
func AcceptState(s *corev1.Secret, o StateOwner) (bool, string) {
	l, a := s.Labels, s.Annotations
	switch {
	case l[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue || l[authv1alpha1.LabelRole] != authv1alpha1.RoleRefreshState:
		return false, "it is not labelled as the operator's refresh state"
	case l[authv1alpha1.LabelIdentity] != o.Hash:
		return false, "its identity label names another identity"
	case a[authv1alpha1.AnnotationTenant] != o.Identity.Tenant ||
		a[authv1alpha1.AnnotationUserID] != o.Identity.UserID ||
		a[authv1alpha1.AnnotationConnection] != o.Identity.Connection:
		return false, "its annotations name another tenant, user or connection"
	case o.TenantUID == "" || !controlledBy(s.OwnerReferences, o.TenantUID):
		return false, "its controller is not the tenant object"
	}
	return true, ""
}

// AcceptLegacyState tells whether s, a per-binding state Secret of an earlier version, may be
// migrated into the lineage of binding b: only for an Auth0Tenant (whose lineage lives in the
// binding's own namespace anyway) and only from a Secret whose controller is the binding itself.
// A ClusterAuth0Tenant's lineage, shared with other namespaces, never takes one.
func AcceptLegacyState(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding, kind authv1alpha1.TenantKind) bool {
	return kind != authv1alpha1.TenantKindCluster &&
		s.Labels[authv1alpha1.LabelManagedBy] == authv1alpha1.ManagedByValue &&
		s.Labels[authv1alpha1.LabelBinding] == b.Name &&
		s.Labels[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState &&
		b.UID != "" && controlledBy(s.OwnerReferences, b.UID)
}

func controlledBy(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, ref := range refs {
		if ref.UID == uid && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}
