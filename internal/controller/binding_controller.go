package controller

import (
	"context"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
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
	// ClusterResourceNamespace is the operator's namespace: home of ClusterAuth0Tenants' refresh
	// state and of the IdP clients kept for Auth0 outages; empty when unknown.
	ClusterResourceNamespace string
	// Jitter returns a value in [0, 1) that moves renewals earlier by up to 10% of a lifetime.
	Jitter func() float64
	// Holder names this manager in the refresh claims it makes on identities' state Secrets;
	// unique per process (SetupWithManager draws one when empty).
	Holder string
	// OnVaultGap, when set, is told how long a Secret held an expired Token Vault token before
	// the renewed one replaced it (the idptoken_tokenvault_expiry_gap_seconds metric).
	OnVaultGap func(expired, replaced time.Time)
	// Restarts, when set, restarts a binding's rolloutRestartTargets after its Secret's data
	// changed (binding.RestartDue).
	Restarts RestartRequester
	// Events, when set, holds the notices of Auth0 events (spec.events of the binding's tenant).
	Events *Events

	writes  *ownWrites    // set up by SetupWithManager
	status  *statusWrites // set up by SetupWithManager
	states  *ownStates    // set up by SetupWithManager
	lineage *lineageLocks // one refresh at a time per identity
	shares  *tenantShares // a quarter of the workers per tenant
	forced  sync.Map      // binding UID → the force-refresh value acted on
	mac     macKey        // the key of status.secretMAC
	// forceSeenAt: binding UID → the pending force-refresh value and when it was first seen.
	forceSeenAt sync.Map
	// rejectedStates: binding UID → the resourceVersion of the state Secret last reported as
	// rejected, so that each forged or foreign version is reported once.
	rejectedStates sync.Map
}

// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings/status,verbs=patch
// +kubebuilder:rbac:groups=auth.idptoken.dev,resources=idptokenbindings/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces,verbs=get;list;watch

// bindingInput is what a pass works on: the facts it decides from (internal/binding), and the
// objects and clients its steps use.
type bindingInput struct {
	binding.Facts
	tenantKey    TenantKey
	tenantObject tenantObject     // nil when not found
	api          ManagementAPI    // nil when the tenant cannot be used
	identity     binding.Identity // the lineage the binding's token belongs to
	// stateSecret is the identity's refresh-state Secret (Facts.State is its data).
	stateSecret *corev1.Secret
	// rejected is a Secret of the state's name that binding.AcceptState refused, and why.
	rejected    *corev1.Secret
	rejectedWhy string
	// legacySecret is a state Secret of an earlier version to migrate (per binding, or under
	// the previous identity key); Facts.Legacy says there is one.
	legacySecret *corev1.Secret
	// override is the OAuth client of spec.refresh.clientCredentialsSecretRef, read only when the
	// tenant allows overrides and the Secret is labelled for it.
	override *oauthClient
	unlock   func() // releases the identity's lock, once taken
	// releaseShare gives back the tenant's share of the workers, once taken.
	releaseShare func()
}

// oauthClient is an OAuth client ID and secret.
type oauthClient struct{ id, secret string }

// Reconcile runs one pass: gather the facts, perform the steps the planner names one at a time,
// report the outcome, and schedule the next pass.
func (r *BindingReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	b := &authv1alpha1.IdPTokenBinding{}
	if err := r.Client.Get(ctx, req.NamespacedName, b); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !b.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, r.finalize(ctx, b)
	}
	if r.status != nil && r.status.behind(b) {
		// The cache has not seen this binding's last status write: start from it, shortly.
		return ctrl.Result{RequeueAfter: statusLagWait}, nil
	}
	if err := r.reconcileFinalizer(ctx, b); err != nil {
		return ctrl.Result{}, err
	}
	in, err := r.gather(ctx, b)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.reportRejectedState(in)
	p, steps, err := r.run(ctx, in)
	if err != nil {
		return ctrl.Result{}, err
	}
	res, err := r.report(ctx, in, p)
	d := binding.Decide(&in.Facts)
	reason := authv1alpha1.ReasonSynced
	if p.Failure != nil {
		reason = p.Failure.Reason
	}
	logf.FromContext(ctx).V(1).Info("Reconciled the binding", "trigger", string(d.Trigger), "action", d.Action.String(), "why", d.Why,
		"steps", strings.Join(steps, ","), "reason", reason, "requeueAfter", res.RequeueAfter)
	return res, err
}

// run performs the pass's steps, each the one Next names, until it names none. API-server
// errors end the pass: they are returned to controller-runtime, which retries.
func (r *BindingReconciler) run(ctx context.Context, in *bindingInput) (*binding.Pass, []string, error) {
	defer func() {
		if in.unlock != nil {
			in.unlock()
		}
		if in.releaseShare != nil {
			in.releaseShare()
		}
	}()
	p := binding.Start(&in.Facts)
	var steps []string
	for range binding.MaxSteps {
		step := binding.Next(&in.Facts, p)
		if step == binding.StepDone {
			return p, steps, nil
		}
		steps = append(steps, step.String())
		if !step.Lineage() && in.unlock != nil {
			// The lineage is settled (its state persisted): other bindings of the identity may go on.
			in.unlock()
			in.unlock = nil
		}
		if step.AfterExternal() && in.releaseShare != nil {
			// Auth0 and the IdP have answered: the API-server writes that follow do not hold
			// the tenant's share, so that its other passes may ask while these write.
			in.releaseShare()
			in.releaseShare = nil
		}
		if step.External() {
			if in.releaseShare == nil && r.shares != nil {
				release, ok := r.shares.try(in.tenantKey)
				if !ok {
					p.RecordTenantBusy()
					return p, append(steps, "tenant-busy"), nil
				}
				in.releaseShare = release
			}
		}
		var err error
		switch step {
		case binding.StepDropAllTargets, binding.StepDropOldTargets:
			if err = r.dropTargets(ctx, in, step == binding.StepDropAllTargets, p.Revoked); err == nil {
				p.RecordTargetsDropped()
			}
		case binding.StepDropState:
			if err = r.dropState(ctx, in); err == nil {
				p.RecordStateDropped()
			}
		case binding.StepReread:
			p, err = r.reread(ctx, in)
		case binding.StepClaim:
			err = r.claim(ctx, in, p)
		case binding.StepRefresh:
			r.refresh(ctx, in, p)
		case binding.StepReadAuth0:
			r.readAuth0(ctx, in, p)
		case binding.StepPersist:
			err = r.persist(ctx, in, p)
		case binding.StepDropLegacy:
			if err = r.dropLegacyState(ctx, in); err == nil {
				p.RecordLegacyDropped()
			}
		case binding.StepWriteTarget:
			err = r.writeTarget(ctx, in, p)
		}
		if err != nil {
			return nil, steps, err
		}
	}
	return p, steps, nil
}

// report records the pass in the binding's status and in Events, and returns when to look next.
func (r *BindingReconciler) report(ctx context.Context, in *bindingInput, p *binding.Pass) (ctrl.Result, error) {
	b := in.Binding
	if p.Blocked == nil && (in.Tenant.ClientPending || (p.Busy && p.Failure == nil) || (p.BackingOff && p.Failure == nil && !p.TargetWritten)) {
		// Just after a restart the tenant controller has not rebuilt the tenant's client yet;
		// or another manager is refreshing the identity; or the binding's backoff after a failed
		// attempt has not ended. Nothing to report: look again shortly (or at the backoff's end).
		return ctrl.Result{RequeueAfter: binding.Requeue(&in.Facts, p, b.Status.FailedAttempts)}, nil
	}
	p.TargetMAC = r.secretMAC(ctx, in, p)
	restart := binding.RestartDue(b, p.TargetWritten, p.TargetMAC)
	st, evs := binding.Report(&in.Facts, p)
	for _, e := range evs {
		r.Recorder.Eventf(b, nil, e.Type, e.Reason, e.Action, "%s", e.Message)
	}
	if st.LastForceRefresh != b.Status.LastForceRefresh {
		r.forced.Store(b.UID, st.LastForceRefresh)
	}
	base := b.DeepCopy()
	b.Status = st
	if err := r.patchStatus(ctx, base, b); apierrors.IsConflict(err) {
		// The cache was behind: look again once it has caught up.
		return ctrl.Result{RequeueAfter: binding.MinRequeue}, nil
	} else if err != nil {
		return ctrl.Result{}, err
	}
	if restart && r.Restarts != nil {
		r.Restarts.Request(b)
	}
	after := binding.Requeue(&in.Facts, p, st.FailedAttempts)
	if after == 0 {
		return ctrl.Result{}, nil // terminal: wait for a change of the binding, its tenant or its Secret
	}
	return ctrl.Result{RequeueAfter: after, Priority: ptr.To(scheduledPriority)}, nil
}

// RestartRequester restarts the workloads a binding names (Restarter).
type RestartRequester interface {
	Request(b *authv1alpha1.IdPTokenBinding)
}

// statusLagWait is how long a pass waits for the cache to see the binding's last status write.
const statusLagWait = 200 * time.Millisecond

// scheduledPriority ranks scheduled work (renewals, backoffs) below events such as a new binding
// or a deleted Secret, so that those are never queued behind a backlog of renewals.
const scheduledPriority = -1

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
