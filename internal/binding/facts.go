package binding

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// Facts is everything a pass decides from, gathered by the controller before the first step.
// Only the StepReread step changes it (Held, State, Fresh).
type Facts struct {
	Binding *authv1alpha1.IdPTokenBinding
	Now     time.Time
	// Lineage is the hash of the identity (Identity.Hash) the binding's token must come from; a
	// token held for another lineage (the spec now names another user, connection or tenant) is
	// not the binding's.
	Lineage string
	Tenant  Tenant
	// Held is the identity's token, parsed from its refresh-state Secret (or from a per-binding
	// state of an earlier version, to migrate); nil when there is none.
	Held *Token
	// State is the refresh-state Secret's data as read; nil when the Secret does not exist.
	State map[string][]byte
	// Legacy: a per-binding refresh-state Secret of an earlier version exists, to delete once
	// the identity's state holds the lineage.
	Legacy bool
	// Fresh: Held and State were re-read from the API server under the identity's lock.
	Fresh bool
	// Target is the binding's Secret when it exists and is the binding's; nil otherwise.
	Target *corev1.Secret
	// Conflict names a Secret of the binding's target name that the binding does not manage.
	Conflict string
	// ConflictLabelled: that Secret carries the binding's labels but not its UID (retained by an
	// earlier version, or written by someone else).
	ConflictLabelled bool
	// Unresolved: a user binding that names no connection, whose primary identity's connection
	// no read has resolved yet; its first pass only reads Auth0 to learn it (see Resolving).
	Unresolved bool
	// ForceHandled: this manager already acted on the binding's force-refresh value, which the
	// cached status may not show yet.
	ForceHandled bool
	// ForceSeenAt is when this manager first saw the binding's pending force-refresh value
	// (whole seconds); zero when unknown.
	ForceSeenAt time.Time
	Policy      Policy
	// Notice is the latest Auth0 event about the binding's user or connection (spec.events of
	// its tenant); zero when none was received.
	Notice Notice
	// Jitter in [0, 1) moves renewals earlier by up to 10% of a lifetime; drawn once per pass.
	Jitter float64
}

// Notice is an Auth0 event the manager received about the binding's user or connection, paced
// (at most one per user or connection per 30 s) by the subscriber that received it.
type Notice struct {
	// At is when the manager received it, by its own clock: a token read from Auth0 before At may
	// be older than what Auth0 holds now.
	At time.Time
	// Deleted: the event was user.deleted.
	Deleted bool
}

// Tenant is what a pass knows of the binding's tenant.
type Tenant struct {
	Kind      authv1alpha1.TenantKind
	Name      string
	Namespace string
	Found     bool
	// Denied is why a ClusterAuth0Tenant's policy refuses the binding; empty when permitted.
	Denied string
	// HomeKnown: the namespace of the identity's refresh state is known.
	HomeKnown bool
	// OverrideAllowed: spec.refreshOverride is Allowed.
	OverrideAllowed bool
	// OverrideRefused says why spec.refresh.clientCredentialsSecretRef cannot be used.
	OverrideRefused *Failure
	// ClientPending: the tenant is Ready but this manager has not built its client yet (just
	// after a restart); the pass looks again shortly without reporting anything.
	ClientPending bool
}

// Policy is the renewal policy of an identity's lineage: the earliest renewal and the most
// frequent re-read any of its bindings asks for.
type Policy struct {
	RenewBefore time.Duration // 0: one third of the lifetime
	Fallback    time.Duration
}

// PolicyOf combines the refresh policies of the bindings of one identity.
func PolicyOf(bindings []authv1alpha1.IdPTokenBinding) Policy {
	var p Policy
	for i := range bindings {
		b := &bindings[i]
		if rb := b.Spec.Refresh.RenewBefore; rb != nil && rb.Duration > p.RenewBefore {
			p.RenewBefore = rb.Duration
		}
		if fi := FallbackInterval(b); p.Fallback == 0 || fi < p.Fallback {
			p.Fallback = fi
		}
	}
	return p
}

// FallbackInterval is how often a binding's token is re-read when its expiry is unknown.
func FallbackInterval(b *authv1alpha1.IdPTokenBinding) time.Duration {
	if fi := b.Spec.Refresh.FallbackInterval; fi != nil && fi.Duration > 0 {
		return max(fi.Duration, expiry.MinFallbackInterval)
	}
	return time.Hour
}

// RenewAt schedules the lineage's next renewal of t with the policy of all its bindings.
func (f *Facts) RenewAt(t *Token, lastRenewal time.Time) time.Time {
	return expiry.RenewAt(expiry.Schedule{
		Token: t.Expiry, RenewBefore: f.Policy.RenewBefore, FallbackInterval: f.Policy.Fallback,
		LastRenewal: lastRenewal, Jitter: func() float64 { return f.Jitter }, Now: f.Now,
	})
}

// UsesTokenVault tells whether the binding's token comes from Auth0 Token Vault.
func UsesTokenVault(b *authv1alpha1.IdPTokenBinding) bool {
	return b.Spec.User != nil && b.Spec.User.Source == authv1alpha1.TokenSourceTokenVault
}

// Precheck refuses, before any request to Auth0 or an IdP, what the binding may not do or
// cannot do until someone changes something.
func Precheck(f *Facts) *Failure {
	b, t := f.Binding, f.Tenant
	switch {
	case !t.Found && t.Kind == authv1alpha1.TenantKindCluster:
		return Terminal(authv1alpha1.ReasonTenantNotFound, 0, "ClusterAuth0Tenant %q not found", t.Name)
	case !t.Found:
		return Terminal(authv1alpha1.ReasonTenantNotFound, 0, "Auth0Tenant %q not found in namespace %s", t.Name, b.Namespace)
	case t.Denied != "":
		return Terminal(authv1alpha1.ReasonNotPermitted, 0, "%s", t.Denied)
	case !t.HomeKnown:
		return Terminal(authv1alpha1.ReasonTenantNotReady, time.Minute,
			"ClusterAuth0Tenant %s cannot be used: the operator's namespace is not known; start the manager with --cluster-resource-namespace", t.Name)
	case f.Conflict != "" && f.ConflictLabelled:
		return Terminal(authv1alpha1.ReasonSecretConflict, time.Minute,
			"Secret %q carries this binding's labels but not its UID (a Secret retained by an earlier version, or made by someone else), so it is not the binding's; delete it so that the operator writes it again, or choose another spec.secret.name", f.Conflict)
	case f.Conflict != "":
		return TargetConflict(f.Conflict)
	}
	// The override client is judged by the refresh step, which reads it only when allowed.
	if _, fail := ChooseEndpoint(b, t, true); fail != nil {
		return fail
	}
	return checkTemplate(b)
}
