package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// gather reads every input of the pass from the cache. Errors here are API-server errors,
// returned as is.
func (r *BindingReconciler) gather(ctx context.Context, b *authv1alpha1.IdPTokenBinding) (*bindingInput, error) {
	in := &bindingInput{tenantKey: tenantKeyOf(b)}
	in.identity = identityOf(in.tenantKey, b)
	// The notice before the time: a pass that began after a notice never reads as if before it.
	notice := r.Events.Notice(in.tenantKey, b)
	in.Facts = binding.Facts{Binding: b, Now: r.Clock.Now().UTC(), Lineage: in.identity.Hash(), Jitter: r.jitter(), Notice: notice}
	in.Unresolved = b.Spec.User != nil && in.identity.Connection == ""
	in.ForceSeenAt = r.forceSeen(b, in.Now)
	if v, ok := r.forced.Load(b.UID); ok {
		in.ForceHandled = v == b.Annotations[authv1alpha1.AnnotationForceRefresh]
		if v == b.Status.LastForceRefresh {
			r.forced.Delete(b.UID) // the cache has caught up
		}
	}
	if err := r.gatherTenant(ctx, in); err != nil {
		return nil, err
	}
	peers := &authv1alpha1.IdPTokenBindingList{}
	// Read only: the cache's own objects, not copies.
	if err := r.Client.List(ctx, peers, client.MatchingFields{identityIndex: in.Lineage}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	in.Policy = binding.PolicyOf(append(peers.Items, *b))

	if b.Spec.Refresh.ClientCredentialsSecretRef != nil && in.Tenant.Found && in.Tenant.Denied == "" && in.Tenant.OverrideAllowed {
		in.override, in.Tenant.OverrideRefused = r.overrideClient(ctx, in)
	}

	var err error
	if in.Target, err = r.cachedSecret(ctx, b.Namespace, b.Spec.Secret.Name); err != nil {
		return nil, err
	}
	if in.Target != nil && !binding.ManagedBy(in.Target, b) {
		in.ConflictLabelled = binding.LabelledFor(in.Target, b)
		in.Target, in.Conflict = nil, b.Spec.Secret.Name
	}
	if home := r.homeNamespace(in); home != "" {
		if in.stateSecret, err = r.cachedSecret(ctx, home, in.identity.StateName()); err != nil {
			return nil, err
		}
		in.setState(in.stateSecret)
		if in.stateSecret == nil {
			if err := r.gatherPrevious(ctx, in, home); err != nil {
				return nil, err
			}
		}
	}
	if in.stateSecret == nil && in.legacySecret == nil {
		// An earlier version kept refresh state per binding: migrate it, newest refresh token
		// first, but only from a Secret the binding itself controls, and never into a lineage
		// other namespaces share.
		legacy, err := r.cachedSecret(ctx, b.Namespace, legacyStateName(b))
		if err != nil {
			return nil, err
		}
		if legacy != nil && binding.AcceptLegacyState(legacy, b, in.tenantKey.Kind) {
			in.legacySecret = legacy
			in.Held, in.Legacy = parseLegacyState(legacy, b, in.identity), true
		}
	}
	return in, nil
}

// gatherPrevious looks for the identity's state under the name versions before length-prefixed
// identity keys gave it, to migrate: the same acceptance rule applies.
func (r *BindingReconciler) gatherPrevious(ctx context.Context, in *bindingInput, home string) error {
	spec := binding.SpecIdentityOf(in.tenantKey.String(), in.Binding)
	owner := binding.StateOwner{Hash: spec.PreviousHash(), Identity: spec, TenantUID: in.tenantUID()}
	prev, err := r.cachedSecret(ctx, home, binding.StateNamePrefix+owner.Hash)
	if err != nil || prev == nil {
		return err
	}
	if ok, _ := binding.AcceptState(prev, owner); !ok {
		return nil
	}
	if h := binding.ParseState(prev.Data); h != nil {
		h.Lineage = in.Lineage
		in.legacySecret, in.Held, in.Legacy = prev, h, true
	}
	return nil
}

// stateOwner is what the identity's refresh-state Secret must show to be used.
func (in *bindingInput) stateOwner() binding.StateOwner {
	return binding.StateOwner{Hash: in.identity.Hash(), Identity: in.identity, TenantUID: in.tenantUID()}
}

func (in *bindingInput) tenantUID() types.UID {
	if in.tenantObject == nil {
		return ""
	}
	return in.tenantObject.GetUID()
}

// forceSeen is when this manager first saw the binding's pending force-refresh value.
func (r *BindingReconciler) forceSeen(b *authv1alpha1.IdPTokenBinding, now time.Time) time.Time {
	if !binding.ForceRefreshPending(b) {
		r.forceSeenAt.Delete(b.UID)
		return time.Time{}
	}
	v := b.Annotations[authv1alpha1.AnnotationForceRefresh]
	if seen, ok := r.forceSeenAt.Load(b.UID); ok && seen.(forceSighting).value == v {
		return seen.(forceSighting).at
	}
	at := now.Truncate(time.Second)
	r.forceSeenAt.Store(b.UID, forceSighting{value: v, at: at})
	return at
}

// forceSighting is a force-refresh value and when this manager first saw it.
type forceSighting struct {
	value string
	at    time.Time
}

// setState takes s as the identity's refresh-state Secret, unless it fails binding.AcceptState:
// a Secret that is not the operator's state of exactly this identity is never used nor
// overwritten, and is reported once.
func (in *bindingInput) setState(s *corev1.Secret) {
	if s != nil {
		if ok, why := binding.AcceptState(s, in.stateOwner()); !ok {
			in.rejected, in.rejectedWhy = s, why
			s = nil
		}
	}
	in.stateSecret, in.State, in.Held = s, nil, nil
	if s != nil {
		in.State = s.Data
		if in.State == nil {
			in.State = map[string][]byte{}
		}
		in.Held = binding.ParseState(s.Data)
	}
}

// gatherTenant finds the binding's tenant and, for a ClusterAuth0Tenant, applies its policy.
func (r *BindingReconciler) gatherTenant(ctx context.Context, in *bindingInput) error {
	in.Tenant = binding.Tenant{Kind: in.tenantKey.Kind, Name: in.tenantKey.Name, Namespace: in.tenantKey.Namespace}
	var t tenantObject = &authv1alpha1.Auth0Tenant{}
	if in.tenantKey.Kind == authv1alpha1.TenantKindCluster {
		t = &authv1alpha1.ClusterAuth0Tenant{}
	}
	switch err := r.Client.Get(ctx, in.tenantKey.NamespacedName, t); {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return err
	}
	in.tenantObject, in.Tenant.Found = t, true
	in.Tenant.HomeKnown = r.homeNamespace(in) != ""
	in.Tenant.OverrideAllowed = t.TenantSpec().RefreshOverride == authv1alpha1.RefreshOverrideAllowed
	if ct, ok := t.(*authv1alpha1.ClusterAuth0Tenant); ok {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := r.Client.Get(ctx, types.NamespacedName{Name: in.Binding.Namespace}, ns); err != nil {
			return fmt.Errorf("reading namespace %s: %w", in.Binding.Namespace, err)
		}
		if ok, why := permitted(ct.Name, ct.Spec.Conditions, ns.Name, ns.Labels, subjectOf(in.Binding)); !ok {
			in.Tenant.Denied = why
			return nil
		}
	}
	in.api = r.Tenants.API(in.tenantKey)
	in.Tenant.ClientPending = in.api == nil && tenantReady(t)
	return nil
}

func tenantReady(t tenantObject) bool {
	c := meta.FindStatusCondition(t.TenantStatus().Conditions, authv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == t.GetGeneration()
}

// homeNamespace is where the refresh state of the binding's identities lives: the Auth0Tenant's
// namespace, or the operator's for a ClusterAuth0Tenant, so teams never see its refresh tokens.
func (r *BindingReconciler) homeNamespace(in *bindingInput) string {
	if in.tenantKey.Kind == authv1alpha1.TenantKindCluster {
		return r.ClusterResourceNamespace
	}
	return in.tenantKey.Namespace
}

// cachedSecret returns a Secret the operator manages from the cache, nil when the cache has none.
// The cache holds only managed Secrets: a miss is confirmed by the create that follows failing.
func (r *BindingReconciler) cachedSecret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s); err != nil {
		return nil, client.IgnoreNotFound(err)
	}
	return s, nil
}

// reread takes the identity's lock and re-reads its refresh-state Secret from the API server: a
// cached copy that lags behind the last write would send a spent refresh token. The pass starts
// over from the fresh facts.
func (r *BindingReconciler) reread(ctx context.Context, in *bindingInput) (*binding.Pass, error) {
	in.unlock = r.lineage.lock(in.identity)
	in.Fresh = true
	if home := r.homeNamespace(in); home != "" {
		key := types.NamespacedName{Namespace: home, Name: in.identity.StateName()}
		if mine := r.states.ahead(key, in.stateSecret); mine != nil {
			in.setState(mine) // this manager's own write, which the cache has not caught up with
			return binding.Start(&in.Facts), nil
		}
		s := &corev1.Secret{}
		err := r.APIReader.Get(ctx, key, s)
		switch {
		case apierrors.IsNotFound(err):
			if in.stateSecret != nil {
				in.setState(nil)
			}
		case err != nil:
			return nil, err
		case in.stateSecret == nil || s.ResourceVersion != in.stateSecret.ResourceVersion:
			in.setState(s)
		}
	}
	return binding.Start(&in.Facts), nil
}
