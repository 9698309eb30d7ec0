// Package controller holds the operator's reconcilers: Auth0Tenant keeps a Management API
// client per tenant authenticated; IdPTokenBinding keeps one token fresh in one Secret.
package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// Options configure the controllers.
type Options struct {
	Clock                   clock.Clock
	MaxConcurrentReconciles int
	// NewManagementAPI builds tenant clients; nil means the real Auth0 client.
	NewManagementAPI NewManagementAPI
	// Jitter overrides the renewal jitter source (tests); nil means math/rand.
	Jitter func() float64
}

// EventSource is the reporting controller of the operator's Events.
const EventSource = "idptoken-operator"

// ReconcileTimeout bounds one reconcile pass.
const ReconcileTimeout = 2 * time.Minute

// tenantRefIndex indexes bindings by the name of the Auth0Tenant they use.
const tenantRefIndex = "spec.tenantRef.name"

// SetupWithManager registers both controllers, sharing one tenant client registry.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		return fmt.Errorf("controller options: Clock is nil")
	}
	tenants := NewTenantClients(opts.NewManagementAPI)
	recorder := mgr.GetEventRecorder(EventSource)
	if err := (&TenantReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Tenants: tenants,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	return (&BindingReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Clock: opts.Clock,
		Tenants: tenants, Jitter: opts.Jitter,
	}).SetupWithManager(mgr, max(opts.MaxConcurrentReconciles, 1))
}

// SetupWithManager registers the binding controller.
func (r *BindingReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if r.Client == nil || r.APIReader == nil || r.Recorder == nil || r.Clock == nil || r.Tenants == nil {
		return fmt.Errorf("binding controller: a dependency is nil")
	}
	r.writes = newOwnWrites()
	err := mgr.GetFieldIndexer().IndexField(context.Background(), &authv1alpha1.IdPTokenBinding{}, tenantRefIndex,
		func(o client.Object) []string {
			b := o.(*authv1alpha1.IdPTokenBinding)
			if b.Spec.TenantRef.Kind == authv1alpha1.TenantKindCluster {
				return nil
			}
			return []string{b.Spec.TenantRef.Name}
		})
	if err != nil {
		return fmt.Errorf("indexing bindings by tenant: %w", err)
	}
	return ctrl.NewControllerManagedBy(mgr).
		For(&authv1alpha1.IdPTokenBinding{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, deletionStarted()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(secretToBinding),
			builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
				return o.GetLabels()[authv1alpha1.LabelBinding] != ""
			}), r.writes.predicate())).
		Watches(&authv1alpha1.Auth0Tenant{}, handler.EnqueueRequestsFromMapFunc(r.tenantToBindings)).
		// A deadline on every pass: client-side rate-limit waits end only with the context.
		WithOptions(controller.Options{MaxConcurrentReconciles: workers, ReconciliationTimeout: ReconcileTimeout}).
		Named("idptokenbinding").
		Complete(r)
}

// deletionStarted lets through the update that sets a binding's deletionTimestamp.
func deletionStarted() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetDeletionTimestamp().IsZero() && !e.ObjectNew.GetDeletionTimestamp().IsZero()
	}}
}

// secretToBinding maps a managed Secret to its binding, so that deleted or edited Secrets are restored.
func secretToBinding(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[authv1alpha1.LabelBinding]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// tenantToBindings requeues every binding of a tenant when the tenant changes.
func (r *BindingReconciler) tenantToBindings(ctx context.Context, o client.Object) []reconcile.Request {
	list := &authv1alpha1.IdPTokenBindingList{}
	if err := r.Client.List(ctx, list, client.InNamespace(o.GetNamespace()), client.MatchingFields{tenantRefIndex: o.GetName()}); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}
