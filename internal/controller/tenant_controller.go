package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/kstatus"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

// RequiredScopes are the Management API scopes the operator needs of a tenant's M2M app.
var RequiredScopes = []string{"read:users", "read:user_idp_tokens", "read:connections", "read:connections_options"}

// CredentialsResync is how often a tenant's credentials Secret is re-read. The operator does not
// cache unlabelled Secrets, so it polls the one Secret per tenant instead of watching them all.
const CredentialsResync = time.Minute

// tenantObject is either kind of tenant.
type tenantObject interface {
	client.Object
	TenantSpec() *authv1alpha1.Auth0TenantSpec
	TenantStatus() *authv1alpha1.Auth0TenantStatus
}

// TenantReconciler keeps a tenant's Management API client built and authenticated. One
// instance serves Auth0Tenants, another ClusterAuth0Tenants.
type TenantReconciler struct {
	Client    client.Client
	APIReader client.Reader // uncached reads of credentials Secrets
	Recorder  events.EventRecorder
	Tenants   *TenantClients
	// Kind is the kind this instance reconciles.
	Kind authv1alpha1.TenantKind
	// ClusterResourceNamespace holds the credentials of ClusterAuth0Tenants; empty when unknown.
	ClusterResourceNamespace string
	// Clock drives the tenant's Auth0 client (token expiry, pacing) and condition times.
	Clock clock.Clock
	// Events, when set, holds the tenants' Auth0 Events API subscriptions (spec.events).
	Events *Events
}

// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=auth0tenants;clusterauth0tenants,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=auth0tenants/status;clusterauth0tenants/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups=authentication.k8s.io,resources=tokenreviews,verbs=create
// +kubebuilder:rbac:groups=authorization.k8s.io,resources=subjectaccessreviews,verbs=create

func (r *TenantReconciler) newObject() tenantObject {
	if r.Kind == authv1alpha1.TenantKindCluster {
		return &authv1alpha1.ClusterAuth0Tenant{}
	}
	return &authv1alpha1.Auth0Tenant{}
}

// credentialsNamespace is where a tenant's credentials Secrets live: the tenant's own namespace,
// or the operator's for a ClusterAuth0Tenant (empty when that is not known).
func (r *TenantReconciler) credentialsNamespace(t tenantObject) string {
	if r.Kind == authv1alpha1.TenantKindCluster {
		return r.ClusterResourceNamespace
	}
	return t.GetNamespace()
}

// Reconcile builds the tenant's client from its spec and credentials and authenticates it.
func (r *TenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)
	key := TenantKey{Kind: r.Kind, NamespacedName: req.NamespacedName}
	tenant := r.newObject()
	if err := r.Client.Get(ctx, req.NamespacedName, tenant); err != nil {
		if apierrors.IsNotFound(err) {
			r.syncEvents(key, nil, nil, nil)
			r.Tenants.Forget(key)
			metrics.ForgetTenant(key.String())
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}

	base := tenant.DeepCopyObject().(tenantObject)
	defer func() {
		if !equalTenantStatus(base.TenantStatus(), tenant.TenantStatus()) {
			if err := r.Client.Status().Patch(ctx, tenant, client.MergeFrom(base)); err != nil && !apierrors.IsNotFound(err) {
				log.Error(err, "Failed to update the status", "tenant", key.String())
			}
		}
	}()
	status := tenant.TenantStatus()
	// The subscription follows the client: only a Ready tenant's client opens the stream.
	var eventsAPI ManagementAPI
	defer func() { r.syncEvents(key, tenant, eventsAPI, status.GrantedScopes) }()

	cfg, err := r.config(ctx, tenant)
	if errors.Is(err, errCredentialsNotFound) {
		// Keep the client: its HTTP client and IdP endpoints keep refreshes at the IdPs going.
		r.Tenants.SetReady(key, false)
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonCredentialsNotFound, err.Error())
		return ctrl.Result{RequeueAfter: CredentialsResync}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	api, err := r.Tenants.Ensure(key, cfg)
	if err != nil {
		r.Tenants.Forget(key)
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonAuthenticationFailed, err.Error())
		return ctrl.Result{RequeueAfter: CredentialsResync}, nil
	}

	scopes, err := api.Authenticate(ctx)
	quota := api.M2MQuota()
	r.setQuota(tenant, quota)
	// While Auth0 holds the client's token requests, the tenant is looked at again when the hold
	// ends, not every 10 s: nothing would be sent before.
	held := quotaHeld(quota, r.Clock.Now())
	if err != nil {
		r.Tenants.SetReady(key, false)
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonAuthenticationFailed,
			fmt.Sprintf("Getting a Management API token failed: %v", err))
		if auth0.IsTransient(err) {
			return ctrl.Result{RequeueAfter: max(10*time.Second, held)}, nil
		}
		return ctrl.Result{RequeueAfter: CredentialsResync}, nil
	}
	slices.Sort(scopes)
	status.GrantedScopes = scopes
	if missing := missingScopes(scopes); len(missing) > 0 {
		r.Tenants.SetReady(key, false)
		r.setReady(tenant, metav1.ConditionFalse, authv1alpha1.ReasonMissingScopes,
			fmt.Sprintf("The M2M application lacks the Management API scopes %s; grant them in Auth0 under Applications > APIs > Auth0 Management API", strings.Join(missing, ", ")))
		return ctrl.Result{RequeueAfter: CredentialsResync}, nil
	}
	r.Tenants.SetReady(key, true)
	eventsAPI = api
	r.reconcileTokenVault(ctx, key, tenant, cfg)
	status.ObservedGeneration = tenant.GetGeneration()
	r.setReady(tenant, metav1.ConditionTrue, authv1alpha1.ReasonAuthenticated,
		fmt.Sprintf("Authenticated to the Management API of %s", tenant.TenantSpec().Domain))
	if held > 0 {
		return ctrl.Result{RequeueAfter: min(CredentialsResync, held+time.Second)}, nil
	}
	return ctrl.Result{RequeueAfter: CredentialsResync}, nil
}

// config reads the credentials Secret and turns the tenant's spec into a client configuration.
func (r *TenantReconciler) config(ctx context.Context, tenant tenantObject) (auth0.Config, error) {
	spec := tenant.TenantSpec()
	ns := r.credentialsNamespace(tenant)
	if ns == "" {
		return auth0.Config{}, fmt.Errorf("%w: the operator's namespace, which holds the credentials of ClusterAuth0Tenants, is not known: start the manager with --cluster-resource-namespace", errCredentialsNotFound)
	}
	ref := spec.CredentialsSecretRef
	id, secret, err := readClientCredentials(ctx, r.APIReader, ns, &ref)
	if err != nil {
		return auth0.Config{}, err
	}
	rl := spec.RateLimit
	rps, burst := float64(rl.RequestsPerSecond), int(rl.Burst)
	if rps < 1 {
		rps = 2
	}
	if burst < 1 {
		burst = 2
	}
	return auth0.Config{
		Domain:            spec.Domain,
		Audience:          spec.Audience,
		ClientID:          id,
		ClientSecret:      secret,
		CABundle:          spec.CABundle,
		RequestsPerSecond: rps,
		MetricsTenant:     TenantKey{Kind: r.Kind, NamespacedName: client.ObjectKeyFromObject(tenant)}.String(),
		Burst:             burst,
		Clock:             r.Clock,
	}, nil
}

// errCredentialsNotFound: the credentials Secret or one of its keys is missing.
var errCredentialsNotFound = errors.New("credentials not found")

// readClientCredentials reads an OAuth client ID and secret from a Secret without caching it.
func readClientCredentials(ctx context.Context, reader client.Reader, namespace string, ref *authv1alpha1.SecretKeysRef) (string, string, error) {
	s := &corev1.Secret{}
	if err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: ref.Name}, s); err != nil {
		if apierrors.IsNotFound(err) {
			return "", "", fmt.Errorf("%w: secret %q not found in namespace %q", errCredentialsNotFound, ref.Name, namespace)
		}
		return "", "", fmt.Errorf("reading secret %q: %w", ref.Name, err)
	}
	id, secret := s.Data[ref.ClientIDKeyOrDefault()], s.Data[ref.ClientSecretKeyOrDefault()]
	switch {
	case len(id) == 0:
		return "", "", fmt.Errorf("%w: secret %q has no key %q", errCredentialsNotFound, ref.Name, ref.ClientIDKeyOrDefault())
	case len(secret) == 0:
		return "", "", fmt.Errorf("%w: secret %q has no key %q", errCredentialsNotFound, ref.Name, ref.ClientSecretKeyOrDefault())
	}
	return strings.TrimSpace(string(id)), strings.TrimSpace(string(secret)), nil
}

func missingScopes(granted []string) []string {
	var missing []string
	for _, s := range RequiredScopes {
		if !slices.Contains(granted, s) {
			missing = append(missing, s)
		}
	}
	return missing
}

func (r *TenantReconciler) setReady(t tenantObject, status metav1.ConditionStatus, reason, msg string) {
	conds := &t.TenantStatus().Conditions
	prev := meta.FindStatusCondition(*conds, authv1alpha1.ConditionReady)
	changed := prev == nil || prev.Status != status || prev.Reason != reason
	meta.SetStatusCondition(conds, metav1.Condition{
		Type: authv1alpha1.ConditionReady, Status: status, Reason: reason, Message: msg, ObservedGeneration: t.GetGeneration(),
	})
	kstatus.Set(conds, t.GetGeneration(), status == metav1.ConditionTrue, reason, msg, r.Clock.Now())
	if changed {
		kind := corev1.EventTypeNormal
		if status != metav1.ConditionTrue {
			kind = corev1.EventTypeWarning
		}
		r.Recorder.Eventf(t, nil, kind, reason, "Authenticate", "%s", msg)
	}
}

func equalTenantStatus(a, b *authv1alpha1.Auth0TenantStatus) bool {
	return a.ObservedGeneration == b.ObservedGeneration && slices.Equal(a.GrantedScopes, b.GrantedScopes) &&
		equality.Semantic.DeepEqual(a.Conditions, b.Conditions)
}

// SetupWithManager registers the tenant controller.
func (r *TenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Client == nil || r.APIReader == nil || r.Recorder == nil || r.Tenants == nil {
		return fmt.Errorf("tenant controller: a dependency is nil")
	}
	name := "auth0tenant"
	if r.Kind == authv1alpha1.TenantKindCluster {
		name = "clusterauth0tenant"
	}
	b := ctrl.NewControllerManagedBy(mgr).
		For(r.newObject(), builder.WithPredicates(predicate.GenerationChangedPredicate{}))
	if r.Events != nil {
		// A subscription's state reaches the tenant's EventsReady condition.
		b = b.WatchesRawSource(r.Events.tenantSource(r.Kind))
	}
	return b.
		WithOptions(controller.Options{ReconciliationTimeout: ReconcileTimeout}).
		Named(name).
		Complete(r)
}
