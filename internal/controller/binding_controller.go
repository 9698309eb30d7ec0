package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// FieldManager is the server-side apply field manager of everything the operator writes.
const FieldManager = "idptoken-operator"

// BindingReconciler keeps each IdPTokenBinding's Secret holding a fresh token.
type BindingReconciler struct {
	Client    client.Client
	APIReader client.Reader // uncached reads: Secrets the operator does not manage
	Recorder  events.EventRecorder
	Clock     clock.Clock
	Tenants   *TenantClients
	// Jitter returns a value in [0, 1) that moves renewals earlier by up to 10% of a lifetime.
	Jitter func() float64

	writes *ownWrites // set up by SetupWithManager
}

// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings/finalizers,verbs=update

// bindingInput is everything a pass decides from, gathered once.
type bindingInput struct {
	binding   *authv1alpha1.IdPTokenBinding
	now       time.Time
	tenantKey types.NamespacedName
	tenant    *authv1alpha1.Auth0Tenant // nil when not found
	api       ManagementAPI             // nil when the tenant cannot be used
	target    *corev1.Secret            // nil when absent
	state     *corev1.Secret            // nil when absent
	held      *heldToken                // parsed from state
	conflict  string                    // name of a Secret this binding must not touch
}

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
	if err := r.patchStatus(ctx, base, b); err != nil {
		return ctrl.Result{}, err
	}
	return out.result(in), out.err
}

// gather reads every input of the pass. Errors here are API-server errors, returned as is.
func (r *BindingReconciler) gather(ctx context.Context, b *authv1alpha1.IdPTokenBinding) (*bindingInput, error) {
	in := &bindingInput{
		binding:   b,
		now:       r.Clock.Now().UTC(),
		tenantKey: types.NamespacedName{Namespace: b.Namespace, Name: b.Spec.TenantRef.Name},
	}
	if b.Spec.TenantRef.Kind == "" || b.Spec.TenantRef.Kind == authv1alpha1.TenantKindNamespaced {
		tenant := &authv1alpha1.Auth0Tenant{}
		switch err := r.Client.Get(ctx, in.tenantKey, tenant); {
		case err == nil:
			in.tenant = tenant
			in.api = r.Tenants.API(in.tenantKey)
		case !apierrors.IsNotFound(err):
			return nil, err
		}
	}

	var err error
	if in.target, err = r.managedSecret(ctx, b, b.Spec.Secret.Name); errors.Is(err, errConflict) {
		in.conflict = b.Spec.Secret.Name
	} else if err != nil {
		return nil, err
	}
	if in.state, err = r.managedSecret(ctx, b, stateSecretName(b)); errors.Is(err, errConflict) {
		in.conflict = stateSecretName(b)
	} else if err != nil {
		return nil, err
	}
	in.held = parseState(in.state)
	return in, nil
}

var errConflict = errors.New("secret exists and is not managed by this binding")

// managedSecret returns the binding's Secret of that name from the cache, nil when it does not
// exist, or errConflict when a Secret of that name exists that the binding does not manage.
func (r *BindingReconciler) managedSecret(ctx context.Context, b *authv1alpha1.IdPTokenBinding, name string) (*corev1.Secret, error) {
	key := types.NamespacedName{Namespace: b.Namespace, Name: name}
	s := &corev1.Secret{}
	err := r.Client.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		// The cache holds only managed Secrets, and may lag behind a write of this binding's:
		// ask the API server.
		if err := r.APIReader.Get(ctx, key, s); apierrors.IsNotFound(err) {
			return nil, nil
		} else if err != nil {
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	if !managedBy(s, b) {
		return nil, errConflict
	}
	return s, nil
}

// freshState re-reads the refresh-state Secret from the API server before a refresh: a cached
// copy that lags behind the last write would send a spent refresh token. It reports whether the
// held token changed.
func (r *BindingReconciler) freshState(ctx context.Context, in *bindingInput) (bool, error) {
	if in.state == nil {
		return false, nil
	}
	s := &corev1.Secret{}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(in.state), s); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if s.ResourceVersion == in.state.ResourceVersion {
		return false, nil
	}
	in.state, in.held = s, parseState(s)
	return true, nil
}

// stateSecretName is the name of the binding's refresh-state Secret; the dot keeps it apart
// from names users pick for their Secrets.
func stateSecretName(b *authv1alpha1.IdPTokenBinding) string {
	const suffix = ".idptoken-state"
	name := b.Name
	if len(name)+len(suffix) > 253 {
		name = name[:253-len(suffix)-13] + "-" + hashToken(b.Name)[:12]
	}
	return name + suffix
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
	target, err := r.managedSecret(ctx, b, b.Spec.Secret.Name)
	if err != nil && !errors.Is(err, errConflict) {
		return err
	}
	if target != nil {
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
