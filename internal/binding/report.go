package binding

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/internal/kstatus"
)

// Event is an Event to record on the binding.
type Event struct {
	Type, Reason, Action, Message string
}

// Report is the binding's status after the pass, and the Events that tell what changed. It is
// the one place that decides Ready, SyncFailing and the kstatus conditions. A pass that ended on
// an API-server error reports nothing: call it only for passes that completed.
func Report(f *Facts, p *Pass) (authv1alpha1.IdPTokenBindingStatus, []Event) {
	b := f.Binding
	r := reporter{f: f, st: *b.Status.DeepCopy()}
	if Resolving(f, p) {
		// Only which connection the primary identity is: the next pass takes it from here.
		r.st.Identity = p.Held.Identity.DeepCopy()
		return r.st, nil
	}
	r.token(p)

	fail := p.Failure
	if fail == nil {
		r.succeeded(p)
		return r.st, r.events
	}
	st := &r.st
	// A terminal failure seen again on a recheck is no news: no new attempt counted, no Event.
	if !fail.Terminal || !sameFailure(st, fail) {
		st.FailedAttempts++
		st.LastFailureTime = metaTime(f.Now)
		r.event(corev1.EventTypeWarning, fail.Reason, "Sync", fail.Message)
	}
	h := p.Held
	// The Secret counts only if it holds a token of the binding's current source whose expiry is
	// known: with an unknown expiry, Ready needs the last read to have succeeded.
	secretHoldsIt := h != nil && h.Lineage == f.Lineage && !h.Expiry.ExpiresAt.IsZero() &&
		(p.TargetWritten || (f.Target != nil && TargetUpToDate(b, h, f.Target)))
	switch {
	case secretHoldsIt && h.ValidAt(f.Now) && h.RefreshUnsupported != "":
		r.set(authv1alpha1.ConditionSyncFailing, metav1.ConditionTrue, fail.Reason, fail.Message)
		r.refreshUnsupported(h)
	case secretHoldsIt && h.ValidAt(f.Now):
		r.set(authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonSynced,
			fmt.Sprintf("Secret %s holds a valid token until %s; the last attempt to renew it failed (see SyncFailing)", b.Spec.Secret.Name, h.ExpiryText()))
		r.set(authv1alpha1.ConditionSyncFailing, metav1.ConditionTrue, fail.Reason, fail.Message)
	case h != nil && !h.ValidAt(f.Now) && fail.Reason != authv1alpha1.ReasonSecretConflict:
		msg := fail.Message
		if fail.Reason == authv1alpha1.ReasonTokenExpired {
			meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionSyncFailing)
		} else {
			// SyncFailing keeps the cause, so that seeing it again on a recheck is no news.
			msg = fmt.Sprintf("The token in Secret %s expired at %s: %s", b.Spec.Secret.Name, h.Expiry.ExpiresAt.Format(time.RFC3339), fail.Message)
			r.set(authv1alpha1.ConditionSyncFailing, metav1.ConditionTrue, fail.Reason, fail.Message)
		}
		r.set(authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonTokenExpired, msg)
	default:
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionSyncFailing)
		r.set(authv1alpha1.ConditionReady, metav1.ConditionFalse, fail.Reason, fail.Message)
	}
	return r.st, r.events
}

type reporter struct {
	f      *Facts
	st     authv1alpha1.IdPTokenBindingStatus
	events []Event
}

func (r *reporter) event(typ, reason, action, msg string) {
	r.events = append(r.events, Event{Type: typ, Reason: reason, Action: action, Message: msg})
}

func (r *reporter) set(typ string, status metav1.ConditionStatus, reason, msg string) {
	gen := r.f.Binding.Generation
	meta.SetStatusCondition(&r.st.Conditions, metav1.Condition{
		Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: gen,
		LastTransitionTime: metav1.NewTime(r.f.Now.Truncate(time.Second)),
	})
	if typ == authv1alpha1.ConditionReady {
		kstatus.Set(&r.st.Conditions, gen, status == metav1.ConditionTrue, reason, msg, r.f.Now)
	}
}

// nextLook is when the operator next renews or re-reads the token held: its renewal time, or,
// once a terminal failure has given up on a renewal already past (TokenExpired), when the
// failure is looked at again; zero when nothing is planned.
func nextLook(f *Facts, p *Pass, h *Token) time.Time {
	if !h.RenewAt.Before(f.Now) || p.Failure == nil || !p.Failure.Terminal {
		return h.RenewAt
	}
	if p.Failure.NotBefore > 0 {
		return f.Now.Add(p.Failure.NotBefore).Truncate(time.Second)
	}
	return time.Time{}
}

// token records the token the binding holds after the pass, and a write of its Secret.
func (r *reporter) token(p *Pass) {
	b, st := r.f.Binding, &r.st
	if (p.Blocked != nil && p.Blocked.Reason == authv1alpha1.ReasonNotPermitted) || p.Revoked {
		// The binding lost its Secret with its permission, or its user was deleted: nothing it
		// held is current any more.
		st.Identity, st.ExpiresAt, st.ExpirySource, st.NextRefreshTime, st.SecretMAC = nil, nil, "", nil, ""
		return
	}
	if p.TargetMAC != "" {
		st.SecretMAC = p.TargetMAC
	}
	if h := p.Held; h != nil {
		st.Identity = h.Identity.DeepCopy()
		st.ExpiresAt = metaTime(h.Expiry.ExpiresAt)
		st.ExpirySource = h.Expiry.Source
		st.NextRefreshTime = metaTime(nextLook(r.f, p, h))
		st.LastRefreshTime = metaTime(h.LastRefresh)
	}
	if p.TargetWritten {
		st.LastSyncTime = metaTime(r.f.Now)
		if RenewedThroughAnotherBinding(b, p) {
			return // routine: the binding that refreshed has its Refreshed Event
		}
		reason, how := "Synced", "read from Auth0"
		switch d := Decide(r.f); {
		case p.Refreshed:
			reason, how = "Refreshed", "refreshed at the identity provider"
		case d.Trigger == TriggerSecretDiffers:
			how = "the Secret did not hold the identity's current token: renewed through another binding of the identity, or edited"
		case d.Action == ActionWrite:
			how = "restored: " + d.Why
		}
		r.event(corev1.EventTypeNormal, reason, "WriteSecret",
			fmt.Sprintf("Wrote the token (%s) to Secret %s; it expires %s", how, b.Spec.Secret.Name, p.Held.ExpiryText()))
	}
}

// RenewedThroughAnotherBinding tells whether a pass that wrote the binding's Secret only carried
// a renewal another binding of the identity made: the binding was Ready, did not refresh or read
// Auth0 itself, and the token written is a later refresh of the one its status reports. Such a
// pass records no Event: one Refreshed Event per refresh (on the binding that made it) says
// what happened, and an Event on each of the identity's bindings at every renewal was the
// largest write a renewal made that nothing needs (status.lastSyncTime and lastRefreshTime
// still record it on each binding). A restored, first or re-read Secret is reported as before.
func RenewedThroughAnotherBinding(b *authv1alpha1.IdPTokenBinding, p *Pass) bool {
	h, prev := p.Held, b.Status.LastRefreshTime
	return h != nil && !p.Refreshed && !p.ReadAuth0 && prev != nil && !h.LastRefresh.IsZero() &&
		h.LastRefresh.After(prev.Time) && meta.IsStatusConditionTrue(b.Status.Conditions, authv1alpha1.ConditionReady)
}

// succeeded reports a pass without failure.
func (r *reporter) succeeded(p *Pass) {
	b, st := r.f.Binding, &r.st
	attempted := p.Refreshes > 0 || p.ReadAuth0
	if ForceRefreshPending(b) && (attempted || r.f.ForceHandled || ForceSatisfied(r.f)) {
		st.LastForceRefresh = b.Annotations[authv1alpha1.AnnotationForceRefresh]
	}
	st.ObservedGeneration = b.Generation
	// A pass that only (re)wrote the Secret says nothing of whether renewing works: the last
	// failure stands until an attempt at Auth0 or the IdP succeeds.
	if attempted || meta.FindStatusCondition(st.Conditions, authv1alpha1.ConditionSyncFailing) == nil {
		st.FailedAttempts, st.LastFailureTime = 0, nil
		meta.RemoveStatusCondition(&st.Conditions, authv1alpha1.ConditionSyncFailing)
	}
	if h := p.Held; h != nil && !h.ValidAt(r.f.Now) {
		// Only when a token lives less than the minimum spacing of renewals.
		r.set(authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonTokenExpired,
			fmt.Sprintf("The token in Secret %s expired %s; it is renewed at %s, as renewals are at least %s apart",
				b.Spec.Secret.Name, h.ExpiryText(), h.RenewAt.Format(time.RFC3339), expiry.MinRenewalSpacing))
		return
	}
	if h := p.Held; h != nil && h.RefreshUnsupported != "" {
		r.refreshUnsupported(h)
		return
	}
	r.set(authv1alpha1.ConditionReady, metav1.ConditionTrue, authv1alpha1.ReasonSynced,
		fmt.Sprintf("Secret %s holds the current token; it expires %s", b.Spec.Secret.Name, p.Held.ExpiryText()))
}

// refreshUnsupported reports a valid token the operator cannot renew at the IdP: Ready=False
// RefreshUnsupported (a person must change the connection, or log in again before it expires),
// with a Warning Event when the binding first comes to it.
func (r *reporter) refreshUnsupported(h *Token) {
	if c := meta.FindStatusCondition(r.st.Conditions, authv1alpha1.ConditionReady); c == nil || c.Reason != authv1alpha1.ReasonRefreshUnsupported {
		r.event(corev1.EventTypeWarning, authv1alpha1.ReasonRefreshUnsupported, "Sync",
			fmt.Sprintf("The operator cannot refresh this token at the identity provider (%s)", h.RefreshUnsupported))
	}
	r.set(authv1alpha1.ConditionReady, metav1.ConditionFalse, authv1alpha1.ReasonRefreshUnsupported, RefreshUnsupportedMessage(r.f.Binding, h))
}

// sameFailure tells whether the conditions already report this failure.
func sameFailure(st *authv1alpha1.IdPTokenBindingStatus, f *Failure) bool {
	for _, t := range []string{authv1alpha1.ConditionReady, authv1alpha1.ConditionSyncFailing} {
		if c := meta.FindStatusCondition(st.Conditions, t); c != nil && c.Reason == f.Reason && c.Message == f.Message {
			return true
		}
	}
	return false
}

// Bounds of every requeue: never a hot loop, never so far ahead that a lost event is not made
// good within a day.
const (
	MinRequeue = time.Second
	MaxRequeue = 24 * time.Hour
)

// ClientPendingWait is how soon a pass looks again when the tenant's client is not built yet.
const ClientPendingWait = 2 * time.Second

// Requeue is the one "when next" of a completed pass: how long until the binding is looked at
// again, in [MinRequeue, MaxRequeue]; 0 only for a terminal failure that waits for a change.
// failedAttempts is the status's count after Report.
func Requeue(f *Facts, p *Pass, failedAttempts int32) time.Duration {
	if p.Blocked == nil && f.Tenant.ClientPending {
		return ClientPendingWait
	}
	if p.Failure == nil && p.Busy {
		return BusyRetry + time.Duration(float64(BusyRetry)*BackoffJitter*f.Jitter).Truncate(time.Millisecond)
	}
	if p.Failure == nil && p.BackingOff {
		return min(max(RetryNotBefore(f).Sub(f.Now), MinRequeue), MaxRequeue)
	}
	if Resolving(f, p) {
		return MinRequeue // the next pass joins the resolved identity's lineage
	}
	var next time.Duration
	switch fail := p.Failure; {
	case fail == nil && p.Held != nil:
		next = p.Held.RenewAt.Sub(f.Now)
	case fail != nil && fail.Terminal:
		next = fail.NotBefore
	case fail != nil:
		next = max(JitteredBackoff(failedAttempts, f.Jitter), fail.NotBefore)
	}
	// A force-refresh that waits for the renewal spacing is queued, never dropped.
	if ForceWaiting(f) && p.Blocked == nil {
		if wait := ForceNotBefore(f.Held).Sub(f.Now); next == 0 || wait < next {
			next = wait
		}
	}
	// Ready must turn False when a held token expires, even if nothing else happens.
	if h := p.Held; h != nil && !h.Expiry.ExpiresAt.IsZero() && h.ValidAt(f.Now) {
		if untilExpiry := h.Expiry.ExpiresAt.Sub(f.Now) + time.Second; next == 0 || untilExpiry < next {
			next = untilExpiry
		}
	}
	if next == 0 && p.Failure != nil && p.Failure.Terminal {
		return 0 // terminal: wait for a change of the binding, its tenant or its Secret
	}
	return min(max(next, MinRequeue), MaxRequeue)
}

func metaTime(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	mt := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &mt
}
