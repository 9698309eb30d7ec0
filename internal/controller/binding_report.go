package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// reportToken records the token the binding holds after the pass, and a write of its Secret.
func (r *BindingReconciler) reportToken(in *bindingInput, out outcome) {
	b, now := in.binding, in.now
	st := &b.Status
	if f := out.failure; out.held == nil && f != nil && f.reason == authv1alpha1.ReasonNotPermitted {
		// The binding lost its Secret with its permission: nothing it held is current any more.
		st.Identity, st.ExpiresAt, st.ExpirySource, st.NextRefreshTime = nil, nil, "", nil
	}
	if h := out.held; h != nil {
		st.Identity = h.Identity.DeepCopy()
		st.ExpiresAt = metaTime(h.Expiry.ExpiresAt)
		st.ExpirySource = h.Expiry.Source
		st.NextRefreshTime = metaTime(h.RenewAt)
		st.LastRefreshTime = metaTime(h.LastRefresh)
	}
	if out.wrote {
		st.LastSyncTime = metaTime(now)
		reason, how := "Synced", "read from Auth0"
		switch {
		case out.refreshed:
			reason, how = "Refreshed", "refreshed at the identity provider"
		case out.decision.action == actionWrite:
			how = "restored: " + out.decision.why
		}
		r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, reason, "WriteSecret",
			"Wrote the token (%s) to Secret %s; it expires %s", how, b.Spec.Secret.Name, describeExpiry(out.held))
	}
}

// report records the outcome of a pass in the binding's status and in Events.
func (r *BindingReconciler) report(in *bindingInput, out outcome) {
	if out.err != nil {
		return // an API-server error says nothing about the token; the pass is retried
	}
	b, now := in.binding, in.now
	st := &b.Status
	r.reportToken(in, out)

	f := out.failure
	if f == nil {
		attempted := out.decision.action == actionRefresh || out.decision.action == actionRead
		if forceRefreshPending(b) && (attempted || in.forceHandled) {
			st.LastForceRefresh = b.Annotations[authv1alpha1.AnnotationForceRefresh]
			r.forced.Store(b.UID, st.LastForceRefresh)
		}
		st.ObservedGeneration = b.Generation
		// A pass that only (re)wrote the Secret says nothing of whether renewing works: the last
		// failure stands until an attempt at Auth0 or the IdP succeeds.
		if attempted || meta.FindStatusCondition(st.Conditions, authv1alpha1.ConditionSyncFailing) == nil {
			st.FailedAttempts, st.LastFailureTime = 0, nil
			meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionSyncFailing)
		}
		if h := out.held; h != nil && !h.validAt(now) {
			// Only when a token lives less than the minimum spacing of renewals.
			setCondition(b, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonTokenExpired,
				fmt.Sprintf("The token in Secret %s expired %s; it is renewed at %s, as renewals are at least %s apart",
					b.Spec.Secret.Name, describeExpiry(h), h.RenewAt.Format(time.RFC3339), expiry.MinRenewalSpacing))
			return
		}
		setCondition(b, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonSynced,
			fmt.Sprintf("Secret %s holds the current token; it expires %s", b.Spec.Secret.Name, describeExpiry(out.held)))
		return
	}

	// A terminal failure seen again on a recheck is no news: no new attempt counted, no Event.
	if !f.terminal || !sameFailure(b, f) {
		st.FailedAttempts++
		st.LastFailureTime = metaTime(now)
		r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, f.reason, "Sync", "%s", f.message)
	}
	h := out.held
	// The Secret counts only if it holds a token of the binding's current source whose expiry is
	// known: with an unknown expiry, Ready needs the last read to have succeeded.
	secretHoldsIt := h != nil && h.Source == sourceOf(b) && !h.Expiry.ExpiresAt.IsZero() &&
		(out.wrote || (in.target != nil && targetUpToDate(b, h, in.target)))
	switch {
	case secretHoldsIt && h.validAt(now):
		setCondition(b, authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonSynced,
			fmt.Sprintf("Secret %s holds a valid token until %s; the last attempt to renew it failed (see SyncFailing)", b.Spec.Secret.Name, describeExpiry(h)))
		setCondition(b, authv1alpha1.ConditionSyncFailing, metav1.ConditionTrue, f.reason, f.message)
	case h != nil && !h.validAt(now) && f.reason != authv1alpha1.ReasonSecretConflict:
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionSyncFailing)
		msg := f.message
		if f.reason != authv1alpha1.ReasonTokenExpired {
			msg = fmt.Sprintf("The token in Secret %s expired at %s: %s", b.Spec.Secret.Name, h.Expiry.ExpiresAt.Format(time.RFC3339), f.message)
		}
		setCondition(b, authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonTokenExpired, msg)
	default:
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionSyncFailing)
		setCondition(b, authv1alpha1.ConditionReady, metav1.ConditionFalse, f.reason, f.message)
	}
}

// sameFailure tells whether the binding's conditions already report this failure.
func sameFailure(b *authv1alpha1.IdPTokenBinding, f *failure) bool {
	for _, t := range []string{authv1alpha1.ConditionReady, authv1alpha1.ConditionSyncFailing} {
		if c := meta.FindStatusCondition(b.Status.Conditions, t); c != nil && c.Reason == f.reason && c.Message == f.message {
			return true
		}
	}
	return false
}

// result is when the binding is looked at next.
func (out outcome) result(in *bindingInput) ctrl.Result {
	if out.err != nil {
		return ctrl.Result{}
	}
	var next time.Duration
	switch f := out.failure; {
	case f == nil && out.held != nil:
		next = out.held.RenewAt.Sub(in.now)
	case f != nil && f.terminal:
		next = f.recheck
	case f != nil:
		next = max(backoff(in.binding.Status.FailedAttempts), f.retryAfter)
	}
	// Ready must turn False when a held token expires, even if nothing else happens.
	if h := out.held; h != nil && !h.Expiry.ExpiresAt.IsZero() && h.validAt(in.now) {
		if untilExpiry := h.Expiry.ExpiresAt.Sub(in.now) + time.Second; next == 0 || untilExpiry < next {
			next = untilExpiry
		}
	}
	if next == 0 && (out.failure == nil || !out.failure.terminal) {
		next = minRequeue
	}
	if next == 0 {
		return ctrl.Result{} // terminal: wait for a change of the binding, its tenant or its Secret
	}
	return ctrl.Result{RequeueAfter: boundRequeue(next), Priority: ptr.To(scheduledPriority)}
}

// Bounds of every requeue: never a hot loop, never so far ahead that a lost event is not
// made good within a day.
const (
	minRequeue = time.Second
	maxRequeue = 24 * time.Hour
)

// boundRequeue clamps a wait into [minRequeue, maxRequeue].
func boundRequeue(d time.Duration) time.Duration {
	return min(max(d, minRequeue), maxRequeue)
}

// reason is the outcome's condition reason, for the pass's log line.
func (out outcome) reason() string {
	if out.failure != nil {
		return out.failure.reason
	}
	return authv1alpha1.ReasonSynced
}

// scheduledPriority ranks scheduled work (renewals, backoffs) below events such as a new binding
// or a deleted Secret, so that those are never queued behind a backlog of renewals.
const scheduledPriority = -1

// patchStatus writes the status only when it changed.
func (r *BindingReconciler) patchStatus(ctx context.Context, base, b *authv1alpha1.IdPTokenBinding) error {
	if equality.Semantic.DeepEqual(base.Status, b.Status) {
		return nil
	}
	// Optimistic: a pass that started from a cache older than the last status write must not
	// put back conditions that write removed (conditions are one list in a merge patch).
	if err := r.Client.Status().Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("updating status: %w", err)
	}
	return nil
}

func setCondition(b *authv1alpha1.IdPTokenBinding, typ string, status metav1.ConditionStatus, reason, msg string) {
	meta.SetStatusCondition(&b.Status.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: b.Generation,
	})
	if typ == authv1alpha1.ConditionReady {
		setKstatus(&b.Status.Conditions, b.Generation, status == metav1.ConditionTrue, reason, msg)
	}
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}

func describeExpiry(h *heldToken) string {
	if h == nil || h.Expiry.ExpiresAt.IsZero() {
		return "at an unknown time"
	}
	return "at " + h.Expiry.ExpiresAt.Format(time.RFC3339)
}
