package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// FieldManager is the server-side apply field manager of everything the operator writes.
const FieldManager = "idptoken-operator"

// BindingReconciler keeps each IdPTokenBinding's Secret holding a fresh token.
type BindingReconciler struct {
	Client    client.Client
	APIReader client.Reader // uncached reads: fresh refresh state, Secrets the operator does not manage
	Recorder  events.EventRecorder
	Clock     clock.Clock
	Tenants   *TenantClients
	// ClusterResourceNamespace is the home of ClusterAuth0Tenants' refresh state; empty when unknown.
	ClusterResourceNamespace string
	// Jitter returns a value in [0, 1) that moves renewals earlier by up to 10% of a lifetime.
	Jitter func() float64
	// OnVaultGap, when set, is told how long a Secret held an expired Token Vault token before
	// the renewed one replaced it (the idptoken_tokenvault_expiry_gap_seconds metric).
	OnVaultGap func(expired, replaced time.Time)

	writes  *ownWrites    // set up by SetupWithManager
	lineage *lineageLocks // one refresh at a time per identity
	forced  sync.Map      // binding UID → the force-refresh value acted on
}

// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings/status,verbs=patch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// bindingInput is everything a pass decides from, gathered once.
type bindingInput struct {
	binding   *authv1alpha1.IdPTokenBinding
	now       time.Time
	tenantKey TenantKey
	tenant    tenantObject   // nil when not found
	api       ManagementAPI  // nil when the tenant cannot be used
	denied    string         // why a ClusterAuth0Tenant's policy refuses the binding; empty when permitted
	identity  identity       // the lineage the binding's token belongs to
	target    *corev1.Secret // nil when absent
	state     *corev1.Secret // the identity's refresh-state Secret; nil when absent
	legacy    *corev1.Secret // a per-binding refresh-state Secret of an earlier version, to migrate
	held      *heldToken     // parsed from state (or legacy)
	// forceHandled: this manager already acted on the binding's force-refresh value, which the
	// cached status may not show yet.
	forceHandled bool
	policy       lineagePolicy // the renewal policy of all the identity's bindings
	conflict     string        // name of a Secret this binding must not touch
	// override is the OAuth client of spec.refresh.clientCredentialsSecretRef, read only when the
	// tenant allows overrides and the Secret is labelled for it; overrideRefused says why not.
	override        *oauthClient
	overrideRefused *failure
}

// oauthClient is an OAuth client ID and secret.
type oauthClient struct{ id, secret string }

// Reconcile runs one pass: gather, decide, act, report.
func (r *BindingReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &authv1alpha1.IdPTokenBinding{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, b)
	}
	if err := r.reconcileFinalizer(ctx, b); err != nil {
		return ctrl.Result{}, err
	}

	base := b.DeepCopy()
	in, err := r.gather(ctx, b)
	if err != nil {
		return ctrl.Result{}, err
	}
	out := r.sync(ctx, in)
	if out.wait > 0 {
		return ctrl.Result{RequeueAfter: out.wait}, nil
	}
	r.report(in, out)
	if err := r.patchStatus(ctx, base, b); apierrors.IsConflict(err) {
		// The cache was behind: look again once it has caught up.
		return ctrl.Result{RequeueAfter: minRequeue}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	res := out.result(in)
	logf.FromContext(ctx).V(1).Info("Reconciled the binding", "action", out.decision.action.String(),
		"why", out.decision.why, "reason", out.reason(), "requeueAfter", res.RequeueAfter)
	return res, out.err
}

// gather reads every input of the pass. Errors here are API-server errors, returned as is.
func (r *BindingReconciler) gather(ctx context.Context, b *authv1alpha1.IdPTokenBinding) (*bindingInput, error) {
	in := &bindingInput{
		binding:   b,
		now:       r.Clock.Now().UTC(),
		tenantKey: tenantKeyOf(b),
	}
	in.identity = identityOf(in.tenantKey, b)
	if v, ok := r.forced.Load(b.UID); ok {
		in.forceHandled = v == b.Annotations[authv1alpha1.AnnotationForceRefresh]
		if v == b.Status.LastForceRefresh {
			r.forced.Delete(b.UID) // the cache has caught up
		}
	}
	if err := r.gatherTenant(ctx, in); err != nil {
		return nil, err
	}
	peers := &authv1alpha1.IdPTokenBindingList{}
	if err := r.Client.List(ctx, peers, client.MatchingFields{identityIndex: in.identity.hash()}); err != nil {
		return nil, err
	}
	in.policy = policyOf(append(peers.Items, *b))

	if ref := b.Spec.Refresh.ClientCredentialsSecretRef; ref != nil && in.tenant != nil && in.denied == "" &&
		in.tenant.TenantSpec().RefreshOverride == authv1alpha1.RefreshOverrideAllowed {
		in.override, in.overrideRefused = r.overrideClient(ctx, in)
	}

	var err error
	if in.target, err = r.cachedSecret(ctx, b.Namespace, b.Spec.Secret.Name); err != nil {
		return nil, err
	}
	if in.target != nil && !managedBy(in.target, b) {
		in.target, in.conflict = nil, b.Spec.Secret.Name
	}
	if home := r.homeNamespace(in); home != "" {
		if in.state, err = r.cachedSecret(ctx, home, in.identity.stateName()); err != nil {
			return nil, err
		}
	}
	if in.state != nil && !isStateOf(in.state, in.identity) {
		in.state = nil // not ours: a hand-made Secret of that name is never used nor overwritten
	}
	in.held = parseState(in.state)
	if in.state == nil {
		// An earlier version kept refresh state per binding: migrate it, newest refresh token first.
		if in.legacy, err = r.cachedSecret(ctx, b.Namespace, legacyStateName(b)); err != nil {
			return nil, err
		}
		if in.legacy != nil && managedBy(in.legacy, b) && in.legacy.Labels[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState {
			in.held = parseLegacyState(in.legacy, b, in.identity)
		} else {
			in.legacy = nil
		}
	}
	return in, nil
}

// gatherTenant finds the binding's tenant and, for a ClusterAuth0Tenant, applies its policy.
func (r *BindingReconciler) gatherTenant(ctx context.Context, in *bindingInput) error {
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
	in.tenant = t
	if ct, ok := t.(*authv1alpha1.ClusterAuth0Tenant); ok {
		ns := &metav1.PartialObjectMetadata{}
		ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
		if err := r.Client.Get(ctx, types.NamespacedName{Name: in.binding.Namespace}, ns); err != nil {
			return fmt.Errorf("reading namespace %s: %w", in.binding.Namespace, err)
		}
		if ok, why := permitted(ct.Name, ct.Spec.Conditions, ns.Name, ns.Labels, subjectOf(in.binding)); !ok {
			in.denied = why
			return nil
		}
	}
	in.api = r.Tenants.API(in.tenantKey)
	return nil
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

// freshState re-reads the identity's refresh-state Secret from the API server, under the
// identity's lock, before a refresh: a cached copy that lags behind the last write would send a
// spent refresh token. It reports whether the held token changed.
func (r *BindingReconciler) freshState(ctx context.Context, in *bindingInput) (bool, error) {
	home := r.homeNamespace(in)
	if home == "" {
		return false, nil
	}
	s := &corev1.Secret{}
	err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: home, Name: in.identity.stateName()}, s)
	switch {
	case apierrors.IsNotFound(err):
		if in.state == nil {
			return false, nil
		}
		in.state, in.held = nil, nil
		return true, nil
	case err != nil:
		return false, err
	case !isStateOf(s, in.identity):
		return false, nil
	case in.state != nil && s.ResourceVersion == in.state.ResourceVersion:
		return false, nil
	}
	in.state, in.held, in.legacy = s, parseState(s), nil
	return true, nil
}

// reconcileFinalizer keeps the Retain finalizer exactly on bindings with deletionPolicy Retain.
func (r *BindingReconciler) reconcileFinalizer(ctx context.Context, b *authv1alpha1.IdPTokenBinding) error {
	want := b.Spec.DeletionPolicy == authv1alpha1.DeletionPolicyRetain
	if want == controllerutil.ContainsFinalizer(b, authv1alpha1.FinalizerRetain) {
		return nil
	}
	base := b.DeepCopy()
	if want {
		controllerutil.AddFinalizer(b, authv1alpha1.FinalizerRetain)
	} else {
		controllerutil.RemoveFinalizer(b, authv1alpha1.FinalizerRetain)
	}
	return r.Client.Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// finalize releases a retained Secret: the operator's labels and annotations are removed so
// that it becomes an ordinary Secret, with its data, that nothing refreshes any more.
func (r *BindingReconciler) finalize(ctx context.Context, b *authv1alpha1.IdPTokenBinding) error {
	if !controllerutil.ContainsFinalizer(b, authv1alpha1.FinalizerRetain) {
		return nil
	}
	target, err := r.cachedSecret(ctx, b.Namespace, b.Spec.Secret.Name)
	if err != nil {
		return err
	}
	if target != nil && managedBy(target, b) {
		if err := r.release(ctx, target); err != nil {
			return err
		}
		r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "Retained", "Delete",
			"Released Secret %s: it keeps its last token and is no longer refreshed", target.Name)
	}
	base := b.DeepCopy()
	controllerutil.RemoveFinalizer(b, authv1alpha1.FinalizerRetain)
	return client.IgnoreNotFound(r.Client.Patch(ctx, b, client.MergeFrom(base)))
}

// release removes the operator's labels and annotations from a Secret it keeps, so that it
// becomes an ordinary Secret that nothing manages.
func (r *BindingReconciler) release(ctx context.Context, s *corev1.Secret) error {
	base := s.DeepCopy()
	for _, k := range []string{authv1alpha1.LabelManagedBy, authv1alpha1.LabelBinding} {
		delete(s.Labels, k)
	}
	for _, k := range []string{authv1alpha1.AnnotationExpiresAt, authv1alpha1.AnnotationProvider, authv1alpha1.AnnotationConnection} {
		delete(s.Annotations, k)
	}
	if err := r.Client.Patch(ctx, s, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("releasing secret %q: %w", s.Name, err)
	}
	return nil
}

func (r *BindingReconciler) jitter() float64 {
	if r.Jitter != nil {
		return r.Jitter()
	}
	return rand.Float64()
}

// String keeps the client secret out of any formatted output.
func (c oauthClient) String() string { return "oauthClient{id:" + c.id + " secret:<redacted>}" }

// GoString keeps %#v from bypassing redaction.
func (c oauthClient) GoString() string { return c.String() }
