// Package controller holds the operator's reconcilers: Auth0Tenant keeps a Management API
// client per tenant authenticated; IdPTokenBinding keeps one token fresh in one Secret.
package controller

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
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
	"github.com/idptoken/idptoken-operator/internal/eventrec"
)

// Options configure the controllers.
type Options struct {
	Clock                   clock.Clock
	MaxConcurrentReconciles int
	// ClusterResourceNamespace holds ClusterAuth0Tenants' credentials and the refresh state of
	// their identities: the operator's own namespace. Empty when unknown.
	ClusterResourceNamespace string
	// NewManagementAPI builds tenant clients; nil means the real Auth0 client.
	NewManagementAPI NewManagementAPI
	// Jitter overrides the renewal jitter source (tests); nil means math/rand.
	Jitter func() float64
	// OnVaultGap observes the gaps between a Token Vault token's expiry and its successor.
	OnVaultGap func(expired, replaced time.Time)
	// StateGCInterval is how often unreferenced refresh-state Secrets are collected; 0 means
	// every minute, negative never (a sharded manager sees only its share of the bindings).
	StateGCInterval time.Duration
	// ClaimHolder names this manager in the refresh claims on identities' state Secrets (see
	// ClaimHolderName). A manager restarted under the same name takes its own claims back at
	// once instead of waiting for them to expire. Empty: a random name per process.
	ClaimHolder string
}

// ClaimHolderName is the claim holder of a manager process: its host name (a pod's name) and a
// hash of the flags that decide which bindings it serves. A manager restarted in the same pod
// (or on the same host with the same shard) is the same holder, and does not wait 60 s for the
// claim its previous process left; two shards, or two replicas, are never the same holder.
func ClaimHolderName(host, watchNamespaces, watchLabelSelector string) string {
	sum := sha256.Sum256([]byte(watchNamespaces + "\x00" + watchLabelSelector))
	return cmp.Or(host, "manager") + "-" + hex.EncodeToString(sum[:4])
}

// EventSource is the reporting controller of the operator's Events.
const EventSource = "idptoken-operator"

// ReconcileTimeout bounds one reconcile pass.
const ReconcileTimeout = 2 * time.Minute

// The Event recorder's writers and queue (eventrec.Options).
const (
	eventWriters = 8
	eventQueue   = 4096
)

// Field indexes of the cache.
const (
	// identityIndex: the hash of the identity whose token a binding holds.
	identityIndex = "identity"
	// auth0SubjectIndex: the tenant and the user or connection a binding's token comes from, as
	// Auth0 events name them (subjectIndexValue).
	auth0SubjectIndex = "auth0Subject"
	// secretRoleIndex: the role of a managed Secret that is not a target (its
	// auth.idptoken.dev/role label: refresh-state, idp-client).
	secretRoleIndex = "role"
)

// byLabel indexes an object by the value of its label key; an object without it is not indexed.
func byLabel(key string) client.IndexerFunc {
	return func(o client.Object) []string {
		if v := o.GetLabels()[key]; v != "" {
			return []string{v}
		}
		return nil
	}
}

// SetupWithManager registers the controllers, sharing one tenant client registry.
func SetupWithManager(mgr ctrl.Manager, opts Options) error {
	if opts.Clock == nil {
		return fmt.Errorf("controller options: Clock is nil")
	}
	tenants := NewTenantClients(opts.NewManagementAPI)
	// Events are written by eventrec, not controller-runtime's recorder: client-go's broadcaster
	// holds a copy of every Event for six minutes (about 1 KiB each; 10 MB at 10,000 bindings).
	// Its queue holds a sync's burst (an Event per binding, at the pace bindings become Ready:
	// 10,000 in a minute) and 8 writers keep up with it; a full queue drops Events and logs it.
	recorder := eventrec.New(mgr.GetClient(), mgr.GetScheme(), EventSource,
		eventrec.Options{Clock: opts.Clock, Workers: eventWriters, QueueSize: eventQueue})
	if err := mgr.Add(recorder); err != nil {
		return err
	}
	events := NewEvents(mgr.GetClient(), mgr.GetAPIReader(), tenants, opts.Clock)
	if err := mgr.Add(events); err != nil {
		return err
	}
	for _, kind := range []authv1alpha1.TenantKind{authv1alpha1.TenantKindNamespaced, authv1alpha1.TenantKindCluster} {
		if err := (&TenantReconciler{
			Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Tenants: tenants,
			Kind: kind, ClusterResourceNamespace: opts.ClusterResourceNamespace, Clock: opts.Clock, Events: events,
		}).SetupWithManager(mgr); err != nil {
			return err
		}
	}
	// One record of status writes: the reconciler's own and the Restarter's lastRolloutRestart.
	status := newStatusWrites(opts.Clock)
	restarts := &Restarter{Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Clock: opts.Clock, status: status}
	if err := mgr.Add(restarts); err != nil {
		return err
	}
	if err := (&BindingReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: recorder, Clock: opts.Clock,
		Tenants: tenants, Jitter: opts.Jitter, ClusterResourceNamespace: opts.ClusterResourceNamespace, OnVaultGap: opts.OnVaultGap,
		Holder: opts.ClaimHolder, Restarts: restarts, Events: events, status: status,
	}).SetupWithManager(mgr, max(opts.MaxConcurrentReconciles, 1)); err != nil {
		return err
	}
	if opts.StateGCInterval >= 0 {
		return mgr.Add(&stateCollector{client: mgr.GetClient(), clock: opts.Clock, every: cmp.Or(opts.StateGCInterval, time.Minute)})
	}
	return nil
}

// SetupWithManager registers the binding controller.
func (r *BindingReconciler) SetupWithManager(mgr ctrl.Manager, workers int) error {
	if r.Client == nil || r.APIReader == nil || r.Recorder == nil || r.Clock == nil || r.Tenants == nil {
		return fmt.Errorf("binding controller: a dependency is nil")
	}
	r.writes = newOwnWrites(r.Clock)
	if r.status == nil {
		r.status = newStatusWrites(r.Clock)
	}
	r.states = newOwnStates(r.Clock)
	if err := mgr.Add(&recordSweeper{clock: r.Clock, every: sweepRecordsEvery,
		sweeps: []func(time.Time){r.writes.sweep, r.status.sweep, r.states.sweep}}); err != nil {
		return err
	}
	r.lineage = newLineageLocks()
	r.shares = newTenantShares(workers)
	if r.Holder == "" {
		r.Holder = newHolder()
	}
	indexer := mgr.GetFieldIndexer()
	// Bindings are not indexed by tenant: see tenantBindings.
	if err := indexer.IndexField(context.Background(), &authv1alpha1.IdPTokenBinding{}, identityIndex,
		func(o client.Object) []string { return identityIndexValues(o.(*authv1alpha1.IdPTokenBinding)) }); err != nil {
		return fmt.Errorf("indexing bindings by identity: %w", err)
	}
	if err := indexer.IndexField(context.Background(), &authv1alpha1.IdPTokenBinding{}, auth0SubjectIndex,
		func(o client.Object) []string { return eventsIndexValues(o.(*authv1alpha1.IdPTokenBinding)) }); err != nil {
		return fmt.Errorf("indexing bindings by Auth0 subject: %w", err)
	}
	// A binding's Secrets are not indexed: they are listed only when its spec.secret.name changed
	// or it lost its token (dropTargets), and an index would keep two entries per target Secret.
	if err := indexer.IndexField(context.Background(), &corev1.Secret{}, secretRoleIndex, byLabel(authv1alpha1.LabelRole)); err != nil {
		return fmt.Errorf("indexing secrets by role: %w", err)
	}
	isTarget := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[authv1alpha1.LabelBinding] != "" && o.GetLabels()[authv1alpha1.LabelRole] == ""
	})
	isState := predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState && o.GetLabels()[authv1alpha1.LabelIdentity] != ""
	})
	b := ctrl.NewControllerManagedBy(mgr)
	if r.Events != nil {
		// Auth0 events enqueue the bindings of the user or connection they are about.
		b = b.WatchesRawSource(r.Events.bindingSource())
	}
	return b.
		// The observer comes first: it sees every event (and lets none through by itself).
		For(&authv1alpha1.IdPTokenBinding{}, builder.WithPredicates(predicate.Or(
			r.status.observer(), predicate.GenerationChangedPredicate{}, deletionStarted(), forceRefreshChanged()))).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(secretToBinding),
			builder.WithPredicates(isTarget, r.writes.predicate())).
		// A lineage renewed by one binding is fanned out to the identity's other bindings.
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.stateToBindings), builder.WithPredicates(isState)).
		Watches(&authv1alpha1.Auth0Tenant{}, handler.EnqueueRequestsFromMapFunc(r.tenantToBindings(authv1alpha1.TenantKindNamespaced))).
		Watches(&authv1alpha1.ClusterAuth0Tenant{}, handler.EnqueueRequestsFromMapFunc(r.tenantToBindings(authv1alpha1.TenantKindCluster))).
		// A namespace's labels can grant or withdraw a ClusterAuth0Tenant; metadata only.
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.namespaceToBindings),
			builder.WithPredicates(predicate.LabelChangedPredicate{})).
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

// forceRefreshChanged lets through a new value of the force-refresh annotation.
func forceRefreshChanged() predicate.Predicate {
	return predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
		return e.ObjectOld.GetAnnotations()[authv1alpha1.AnnotationForceRefresh] != e.ObjectNew.GetAnnotations()[authv1alpha1.AnnotationForceRefresh]
	}}
}

// secretToBinding maps a managed target Secret to its binding, so that deleted or edited Secrets are restored.
func secretToBinding(_ context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[authv1alpha1.LabelBinding]
	if name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// stateToBindings maps an identity's refresh-state Secret to every binding of the identity.
func (r *BindingReconciler) stateToBindings(ctx context.Context, o client.Object) []reconcile.Request {
	r.states.seen(o)
	return r.bindingsMatching(ctx, client.MatchingFields{identityIndex: o.GetLabels()[authv1alpha1.LabelIdentity]})
}

// tenantToBindings requeues every binding of a tenant when the tenant changes.
func (r *BindingReconciler) tenantToBindings(kind authv1alpha1.TenantKind) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		bound, err := tenantBindings(ctx, r.Client, TenantKey{Kind: kind, NamespacedName: client.ObjectKeyFromObject(o)})
		if err != nil {
			return nil
		}
		reqs := make([]reconcile.Request, 0, len(bound))
		for _, b := range bound {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(b)})
		}
		return reqs
	}
}

// namespaceToBindings requeues the bindings of a namespace that use a ClusterAuth0Tenant.
func (r *BindingReconciler) namespaceToBindings(ctx context.Context, o client.Object) []reconcile.Request {
	reqs := r.bindingsMatching(ctx, client.InNamespace(o.GetName()))
	return slices.DeleteFunc(reqs, func(req reconcile.Request) bool {
		b := &authv1alpha1.IdPTokenBinding{}
		return r.Client.Get(ctx, req.NamespacedName, b) != nil || b.Spec.TenantRef.Kind != authv1alpha1.TenantKindCluster
	})
}

func (r *BindingReconciler) bindingsMatching(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	list := &authv1alpha1.IdPTokenBindingList{}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		return nil
	}
	reqs := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return reqs
}

// newHolder names a manager process that was given no ClaimHolder: its host name and a random
// suffix, so that two such processes never share a name.
func newHolder() string {
	host, _ := os.Hostname()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return cmp.Or(host, "manager") + "-" + hex.EncodeToString(b[:])
}
