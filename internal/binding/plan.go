package binding

import (
	"maps"
	"slices"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// Action is what a pass must do to the binding's token.
type Action int

const (
	ActionNone    Action = iota // the Secret holds the current token and it is not due
	ActionWrite                 // the held token is fine but the target Secret must be (re)written
	ActionRefresh               // renew at the IdP with the held refresh token
	ActionRead                  // (re)read the token from Auth0
)

func (a Action) String() string {
	return [...]string{"none", "write", "refresh", "read"}[a]
}

// Trigger names the trigger of the chain that decided a pass; it is logged with every pass.
type Trigger string

// The triggers, in the order the chain tries them.
const (
	// TriggerNoToken: no token is held for the identity yet.
	TriggerNoToken Trigger = "NoTokenHeld"
	// TriggerLineageChanged: the token held is another identity's (the spec names another one).
	TriggerLineageChanged Trigger = "LineageChanged"
	// TriggerForceRefresh: the force-refresh annotation has a value not yet acted on.
	TriggerForceRefresh Trigger = "ForceRefresh"
	// TriggerAuth0Event: Auth0 reported a change of the binding's user or connection (spec.events)
	// after the lineage last read Auth0: a new login, a deleted user, a changed connection.
	TriggerAuth0Event Trigger = "Auth0Event"
	// TriggerEstimatedExpiry: the token held has only an Estimated expiry and its lineage was
	// never refreshed: it is refreshed before any Secret gets it.
	TriggerEstimatedExpiry Trigger = "EstimatedExpiry"
	// TriggerRenewalDue: the renewal time of the token held has come.
	TriggerRenewalDue Trigger = "RenewalDue"
	// TriggerSpecChanged: the spec changed since the last successful pass.
	TriggerSpecChanged Trigger = "SpecChanged"
	// TriggerSecretMissing: the binding's Secret does not exist.
	TriggerSecretMissing Trigger = "SecretMissing"
	// TriggerSecretDiffers: the binding's Secret does not hold what the operator would write.
	TriggerSecretDiffers Trigger = "SecretDiffers"
	// TriggerNone: no trigger fired; the Secret is current.
	TriggerNone Trigger = "Current"
)

// Decision is what the first trigger of the chain that fired decided.
type Decision struct {
	Action  Action
	Trigger Trigger
	Why     string
}

// TriggerFunc is one trigger of the chain: it returns a decision when it fires.
type TriggerFunc func(f *Facts) (Decision, bool)

// Triggers are tried in order; the first that fires decides. Reading Auth0 is the last resort:
// a held token with a refresh token is renewed at the IdP, never re-read.
var Triggers = []TriggerFunc{noTokenHeld, lineageChanged, forceRefresh, auth0Event, estimatedExpiry, renewalDue, specChangedPolicy, secretNotCurrent}

func noTokenHeld(f *Facts) (Decision, bool) {
	return Decision{ActionRead, TriggerNoToken, "no token held yet"}, f.Held == nil
}

func lineageChanged(f *Facts) (Decision, bool) {
	return Decision{ActionRead, TriggerLineageChanged, "the binding now names another identity"}, f.Held.Lineage != f.Lineage
}

func forceRefresh(f *Facts) (Decision, bool) {
	if !ForceRefreshPending(f.Binding) || f.ForceHandled || ForceSatisfied(f) || f.Now.Before(ForceNotBefore(f.Held)) {
		return Decision{}, false // a force within the renewal spacing waits for it (Requeue)
	}
	if f.Held.CanRefresh() {
		return Decision{ActionRefresh, TriggerForceRefresh, "the force-refresh annotation has a new value"}, true
	}
	return Decision{ActionRead, TriggerForceRefresh, "the force-refresh annotation has a new value"}, true
}

// auth0Event: an Auth0 event received after the lineage's last read of Auth0 means Auth0 may hold
// something newer (the user logged in again) or nothing (the user was deleted): Auth0 is read,
// not the IdP, even when the token held could be refreshed. Events only move work earlier: the
// read is paced by the subscriber (one notice per user per 30 s) and shared by the user's bindings
// (ReadNotBefore), and what it finds is adopted by the same rules as any read.
func auth0Event(f *Facts) (Decision, bool) {
	if f.Notice.At.IsZero() || !f.Notice.At.After(f.Held.Auth0ReadAt) {
		return Decision{}, false
	}
	if f.Notice.Deleted {
		return Decision{ActionRead, TriggerAuth0Event, "Auth0 reported that the user was deleted"}, true
	}
	return Decision{ActionRead, TriggerAuth0Event, "Auth0 reported a change since the token was read"}, true
}

// estimatedExpiry: a binding that finds its lineage's state holding Auth0's token with an
// Estimated expiry (another binding is refreshing it, or that refresh failed) refreshes it rather
// than writing it, so that no Secret gets a token that is replaced seconds later (which would
// also restart its workloads for nothing).
func estimatedExpiry(f *Facts) (Decision, bool) {
	return Decision{ActionRefresh, TriggerEstimatedExpiry, "the token held has only an estimated expiry"}, f.Held.NeedsFirstRefresh()
}

func renewalDue(f *Facts) (Decision, bool) {
	if f.Now.Before(f.Held.RenewAt) {
		return Decision{}, false
	}
	if f.Held.CanRefresh() {
		return Decision{ActionRefresh, TriggerRenewalDue, "the token is due for renewal"}, true
	}
	return Decision{ActionRead, TriggerRenewalDue, "the token is due for renewal and there is no usable refresh token"}, true
}

// specChangedPolicy: applying again drops what the spec no longer asks for, such as a removed
// label. Only after a first successful pass: a cache lagging behind that pass is not a spec change.
func specChangedPolicy(f *Facts) (Decision, bool) {
	return Decision{ActionWrite, TriggerSpecChanged, "the binding's spec changed"}, specChanged(f)
}

func secretNotCurrent(f *Facts) (Decision, bool) {
	if f.Target == nil {
		return Decision{ActionWrite, TriggerSecretMissing, "the Secret does not exist"}, true
	}
	return Decision{ActionWrite, TriggerSecretDiffers, "the Secret's content differs"}, !TargetUpToDate(f.Binding, f.Held, f.Target)
}

// Decide runs the trigger chain.
func Decide(f *Facts) Decision {
	for _, t := range Triggers {
		if d, ok := t(f); ok {
			return d
		}
	}
	return Decision{ActionNone, TriggerNone, "the Secret is current"}
}

func specChanged(f *Facts) bool {
	st := f.Binding.Status
	return st.ObservedGeneration != 0 && f.Binding.Generation != st.ObservedGeneration
}

// ForceNotBefore is the earliest time a force-refresh may renew the held token at the IdP: the
// renewal spacing after the identity's last refresh there. Bindings of other namespaces share
// the lineage, so annotating bindings again and again never makes more than one refresh per
// spacing. A force that re-reads Auth0 (no usable refresh token) is not held: the tenant's rate
// limit and the shared user reads pace those.
func ForceNotBefore(h *Token) time.Time {
	if !h.CanRefresh() || h.LastRefresh.IsZero() {
		return time.Time{}
	}
	return h.LastRefresh.Add(expiry.MinRenewalSpacing)
}

// ForceWaiting tells whether a new force-refresh value waits for the renewal spacing.
func ForceWaiting(f *Facts) bool {
	return f.Held != nil && ForceRefreshPending(f.Binding) && !f.ForceHandled && !ForceSatisfied(f) && f.Now.Before(ForceNotBefore(f.Held))
}

// ForceSatisfied tells whether the identity was refreshed at the IdP since this manager first saw
// the binding's new force-refresh value: that refresh serves it, so that a force waiting out the
// spacing is never starved by the renewals of the identity's other bindings.
func ForceSatisfied(f *Facts) bool {
	// Both are whole seconds: a refresh in the second the value was seen may have come before it.
	return f.Held != nil && !f.ForceSeenAt.IsZero() && f.Held.LastRefresh.After(f.ForceSeenAt) && ForceRefreshPending(f.Binding)
}

// ForceRefreshPending tells whether the force-refresh annotation has a value not yet acted on.
func ForceRefreshPending(b *authv1alpha1.IdPTokenBinding) bool {
	v := b.Annotations[authv1alpha1.AnnotationForceRefresh]
	return v != "" && v != b.Status.LastForceRefresh
}

// Step is the one I/O step a pass performs next.
type Step int

const (
	StepDone           Step = iota // nothing more to do: report
	StepDropAllTargets             // the binding lost its permission, or its user was deleted: delete its Secrets, whatever its deletionPolicy
	StepDropState                  // the user was deleted in Auth0: delete the identity's refresh state
	StepReread                     // take the identity's lock and re-read its state from the API server
	StepClaim                      // claim the identity's refresh on its state Secret, across managers
	StepRefresh                    // refresh Pass.Held at the IdP
	StepReadAuth0                  // read the token from Auth0 (identities[], the connection, or Token Vault)
	StepPersist                    // write Pass.Held to the identity's refresh-state Secret
	StepDropLegacy                 // delete the migrated per-binding state of an earlier version
	StepDropOldTargets             // delete the Secrets of an earlier spec.secret.name
	StepWriteTarget                // write Pass.Held to the binding's Secret
)

func (s Step) String() string {
	return [...]string{"done", "drop-all-targets", "drop-state", "reread", "claim", "refresh", "read-auth0", "persist", "drop-legacy", "drop-old-targets", "write-target"}[s]
}

// Lineage tells whether the step reads or writes the identity's lineage (its refresh state, the
// IdP, Auth0), and so runs under the identity's lock. Next names a pass's lineage steps before
// any other, so the lock is released at the first other step: the writes of the target Secrets
// of one identity's bindings do not wait for each other.
func (s Step) Lineage() bool {
	switch s {
	case StepReread, StepClaim, StepRefresh, StepReadAuth0, StepPersist, StepDropLegacy, StepDropState:
		return true
	}
	return false
}

// External tells whether the step asks Auth0 or the IdP (and so holds one of its tenant's share
// of the workers; see the controller's tenantShares).
func (s Step) External() bool { return s == StepRefresh || s == StepReadAuth0 }

// AfterExternal tells whether the step only writes to the API server what the pass's external
// requests brought (the refresh state, the binding's Secrets): no external request follows it
// in a pass, so the tenant's share of the workers is given back before it.
func (s Step) AfterExternal() bool {
	switch s {
	case StepPersist, StepWriteTarget, StepDropLegacy, StepDropOldTargets, StepDropAllTargets, StepDropState:
		return true
	}
	return false
}

// Pass is what a pass has done so far; each step records its result here.
type Pass struct {
	// Blocked is the precheck's refusal: nothing is requested from Auth0 or an IdP.
	Blocked *Failure
	// Held is the lineage's token as the pass goes; it starts as Facts.Held.
	Held    *Token
	Failure *Failure

	// Claimed: this manager holds the identity's refresh claim (StepClaim succeeded).
	Claimed bool
	// Busy: another manager holds the identity's claim, the claim lost a race, or the tenant's
	// share of the workers is taken: the pass ends without a report and looks again after
	// BusyRetry.
	Busy bool
	// BackingOff: the binding's last attempt failed and its backoff has not ended (RetryNotBefore):
	// the pass asks neither Auth0 nor an IdP, ends without a report, and looks again then.
	BackingOff bool

	Refreshes    int  // refresh attempts
	InvalidGrant bool // the IdP refused the refresh token
	ReadAuth0    bool // Auth0 was read
	// NeedRefresh: Auth0's copy of the access token has expired, but its refresh token can renew it.
	NeedRefresh bool
	// Kept is the token held before a read whose expired copy must be refreshed: it stays the
	// lineage's token when that refresh fails for any reason but invalid_grant.
	Kept           *Token
	Refreshed      bool // a refresh at the IdP succeeded
	Persisted      bool // the refresh-state Secret holds Held
	LegacyDropped  bool
	TargetsDropped bool // the old (or, when not permitted, all) target Secrets are gone
	// Revoked: Auth0 reported the user deleted (Facts.Notice) and a read confirmed it: the
	// identity's refresh state and the binding's Secrets are deleted.
	Revoked         bool
	StateDropped    bool
	TargetAttempted bool
	TargetWritten   bool
	// TargetMAC is SecretMAC of the Secret's data after the pass, when the Secret holds the
	// token held (written, or already up to date); empty when unknown.
	TargetMAC string
}

// Start begins a pass over f.
func Start(f *Facts) *Pass {
	p := &Pass{Blocked: Precheck(f), Held: f.Held}
	p.Failure = p.Blocked
	if p.Blocked == nil {
		d := Decide(f)
		if d.Action == ActionNone || d.Action == ActionWrite {
			p.Held = Reschedule(f)
		}
		p.BackingOff = backoffHolds(f, d)
	}
	return p
}

// RetryNotBefore is when a pass may ask Auth0 or an IdP again after the binding's last failed
// attempt: its backoff (status.failedAttempts) counted from status.lastFailureTime; zero when the
// last attempt did not fail.
func RetryNotBefore(f *Facts) time.Time {
	st := f.Binding.Status
	if st.FailedAttempts == 0 || st.LastFailureTime == nil {
		return time.Time{}
	}
	return st.LastFailureTime.Add(JitteredBackoff(st.FailedAttempts, f.Jitter))
}

// backoffHolds tells whether the decision waits for the end of the backoff. Renewals and reads
// that only come round again wait, and so does a force-refresh already tried and failed (it is
// retried until it succeeds, on the backoff); a person's change (a new force-refresh value,
// another identity, the spec) is acted on at once. Without it, every event about the binding
// (its state Secret written by the failed attempt, the Secret of another binding of the
// identity) would retry at once.
func backoffHolds(f *Facts, d Decision) bool {
	if d.Action != ActionRefresh && d.Action != ActionRead {
		return false
	}
	last := f.Binding.Status.LastFailureTime
	if last != nil && f.Notice.At.After(last.Time) {
		return false // Auth0 reported a change since the last attempt: it may be what was missing
	}
	switch d.Trigger {
	case TriggerRenewalDue, TriggerNoToken, TriggerEstimatedExpiry, TriggerAuth0Event:
	case TriggerForceRefresh:
		if f.ForceSeenAt.IsZero() || last == nil || last.Time.Before(f.ForceSeenAt) {
			return false // not tried yet
		}
	default:
		return false
	}
	return f.Now.Before(RetryNotBefore(f))
}

// Next is the step the pass performs next. Every step it names records its completion in the
// Pass, so a pass ends after a bounded number of steps (MaxSteps).
func Next(f *Facts, p *Pass) Step {
	if p.Blocked != nil {
		if p.Blocked.Reason == authv1alpha1.ReasonNotPermitted && !p.TargetsDropped {
			return StepDropAllTargets
		}
		return StepDone
	}
	if f.Tenant.ClientPending || p.Busy || Resolving(f, p) {
		return StepDone
	}
	if p.Revoked {
		return revokeStep(f, p)
	}
	d := Decide(f)
	if p.BackingOff {
		// Nothing is asked of Auth0 or the IdP; a Secret deleted or edited meanwhile is still
		// restored from the token held.
		if !p.TargetAttempted && p.Held.ValidAt(f.Now) && (f.Target == nil || !TargetUpToDate(f.Binding, p.Held, f.Target)) {
			return StepWriteTarget
		}
		return StepDone
	}
	if step := nextLineageStep(f, p, d); step != StepDone {
		return step
	}
	switch {
	case p.Held != nil && !p.Persisted && (p.Claimed || !SameData(f.State, p.Held.StateData())):
		// A claim is always given back by the write, even when the refresh changed nothing.
		return StepPersist
	case f.Legacy && !p.LegacyDropped && (f.State != nil || p.Persisted):
		return StepDropLegacy
	case specEdited(f.Binding) && !p.TargetsDropped:
		return StepDropOldTargets
	case !p.TargetAttempted && p.Held.ValidAt(f.Now) &&
		(d.Action == ActionWrite || f.Target == nil || !TargetUpToDate(f.Binding, p.Held, f.Target)):
		return StepWriteTarget
	}
	return StepDone
}

// revokeStep is the next step of a pass that found its user deleted: the identity's state goes
// first (no later renewal can bring the token back), then the binding's Secrets.
func revokeStep(f *Facts, p *Pass) Step {
	switch {
	case !p.StateDropped && f.State != nil:
		return StepDropState
	case !p.TargetsDropped:
		return StepDropAllTargets
	}
	return StepDone
}

// nextLineageStep is the next step that gets a token: re-read the state, claim, refresh, read
// Auth0; StepDone when the pass has the token it can get.
func nextLineageStep(f *Facts, p *Pass, d Decision) Step {
	refreshStep := StepRefresh
	if !p.Claimed {
		refreshStep = StepClaim // no refresh without the identity's claim
	}
	switch {
	case (d.Action == ActionRefresh || d.Action == ActionRead) && !f.Fresh:
		return StepReread
	case d.Action == ActionRefresh && p.Refreshes == 0:
		return refreshStep
	case d.Action == ActionRead && !p.ReadAuth0:
		return StepReadAuth0
	case p.InvalidGrant && !p.ReadAuth0:
		// Auth0 may hold a newer refresh token (the user logged in again): it is tried at once.
		return StepReadAuth0
	case p.NeedRefresh && p.Refreshes < 2:
		return refreshStep
	}
	return StepDone
}

// specEdited tells whether the spec changed since the binding was last synced, so that an
// earlier spec.secret.name may have left Secrets behind. A spec never edited (generation 1) has
// had no other name: a new binding looks for none.
func specEdited(b *authv1alpha1.IdPTokenBinding) bool {
	return b.Generation > 1 && b.Generation != b.Status.ObservedGeneration
}

// MaxSteps bounds the steps of one pass: each step of Next can run at most once, refresh twice.
const MaxSteps = 12

// Resolving tells whether the pass has only to learn which connection the primary identity of
// a binding that names none is: the read found it, and the next pass joins that identity's
// lineage (a token is never persisted under an unresolved identity that another spelling of the
// same identity would not find).
func Resolving(f *Facts, p *Pass) bool {
	b := f.Binding
	return f.Unresolved && p.ReadAuth0 && p.Failure == nil && p.Held != nil && b.Spec.User != nil &&
		p.Held.Identity.Connection != "" && IsPrimaryOf(b.Spec.User.ID, p.Held.Identity)
}

// SameData tells whether a Secret's data a (nil: no Secret) already holds exactly b.
func SameData(a, b map[string][]byte) bool {
	if a == nil {
		return false
	}
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return slices.Equal(x, y) })
}

// ClaimResult is what StepClaim found on the identity's state Secret.
type ClaimResult int

const (
	ClaimTaken   ClaimResult = iota // this manager holds the claim
	ClaimBusy                       // another manager holds it, or won the race for it
	ClaimForeign                    // a Secret of the state's name is not the identity's state
)

// RecordClaim records the outcome of StepClaim in the pass; fail explains ClaimForeign.
func (p *Pass) RecordClaim(r ClaimResult, fail *Failure) {
	switch r {
	case ClaimTaken:
		p.Claimed = true
	case ClaimBusy:
		p.Busy = true
	case ClaimForeign:
		p.Busy, p.Failure = true, fail
	}
}

// The recorders below are the one place where a step's outcome changes the pass: the controller
// performs a step and hands over what it observed; the test driver and FuzzPlanner hand over
// scripted outcomes to the same functions.

// RefreshResult is what a refresh at the IdP came to (StepRefresh).
type RefreshResult struct {
	// Failure: no refresh was sent (no usable endpoint or client, the tenant not ready).
	Failure *Failure
	// InvalidGrant: the IdP refused the refresh token; Err says how.
	InvalidGrant bool
	// Err is any other error's text (scrubbed), when the refresh failed.
	Err string
	// Renewal is the IdP's answer when the refresh succeeded.
	Renewal Renewal
	// Endpoint, when not empty, is kept with the state: the connection's own endpoint (never a
	// spec.refresh override).
	Endpoint Endpoint
	// Unsupported: nothing was sent, as the operator cannot refresh through the token's
	// connection (it says why): the token is marked so, and re-read from Auth0 at its expiry.
	Unsupported string
}

// RecordRefresh records a refresh at the IdP.
func (p *Pass) RecordRefresh(f *Facts, r RefreshResult) {
	p.Refreshes++
	p.NeedRefresh = false
	held, kept := p.Held, p.Kept
	p.Kept = nil
	switch {
	case r.Failure != nil:
		p.Failure = r.Failure
	case r.Unsupported != "":
		unrefreshable := *held
		if kept != nil {
			unrefreshable = *kept
		}
		unrefreshable.RefreshUnsupported = r.Unsupported
		p.Held = &unrefreshable
	case r.InvalidGrant:
		p.Held, p.InvalidGrant = Refused(held), true
		p.Failure = RefreshRejected(r.Err)
	case r.Err != "":
		if kept != nil {
			p.Held = kept // Auth0's expired copy is no better than the token held before the read
		}
		p.Failure = RefreshError(r.Err)
	default:
		next := Renewed(f, held, r.Renewal)
		if r.Endpoint.TokenURL != "" {
			next.Endpoint = r.Endpoint
		}
		p.Held, p.Refreshed, p.InvalidGrant, p.Failure = next, true, false, nil
	}
}

// RecordRead records a read of Auth0 (StepReadAuth0): the token read, or why there is none. It
// returns AfterRead's verdict.
func (p *Pass) RecordRead(f *Facts, read *Token, fail *Failure) Verdict {
	p.ReadAuth0 = true
	if fail != nil {
		p.Failure = fail
		if f.Notice.Deleted && (fail.Reason == authv1alpha1.ReasonUserNotFound || fail.Reason == authv1alpha1.ReasonIdentityNotFound) {
			// Auth0 reported the user deleted and has no such user (or identity) now: the token
			// held is forgotten and no Secret keeps it.
			p.Revoked, p.Held, p.Kept = true, nil, nil
			p.Failure = UserDeleted(f.Binding, fail)
		}
		return VerdictNothingNewer
	}
	next, verdict, failure := AfterRead(f, p.Held, read)
	if verdict == VerdictRefresh {
		p.Kept = p.Held
		if next.ValidAt(f.Now) {
			p.Kept = next // a first refresh of an Estimated expiry: Auth0's token stands if it fails
		}
	}
	p.Held, p.NeedRefresh, p.Failure = next, verdict == VerdictRefresh, failure
	return verdict
}

// RecordPersist records the write of the identity's state (StepPersist): held is the lineage's
// token after it (a newer one another writer persisted wins), or fail says why nothing of the
// lineage is written.
func (p *Pass) RecordPersist(held *Token, fail *Failure) {
	p.Persisted = true
	if fail != nil {
		p.Held, p.Failure = nil, fail
		return
	}
	p.Held = held
}

// RecordTargetWrite records the write of the binding's Secret (StepWriteTarget).
func (p *Pass) RecordTargetWrite(fail *Failure) {
	p.TargetAttempted = true
	if fail != nil {
		p.Failure = fail
		return
	}
	p.TargetWritten = true
}

// RecordTargetsDropped records StepDropAllTargets or StepDropOldTargets.
func (p *Pass) RecordTargetsDropped() { p.TargetsDropped = true }

// RecordStateDropped records StepDropState.
func (p *Pass) RecordStateDropped() { p.StateDropped = true }

// RecordLegacyDropped records StepDropLegacy.
func (p *Pass) RecordLegacyDropped() { p.LegacyDropped = true }

// RecordTenantBusy records that the tenant's share of the workers was taken: the pass ends and
// looks again after BusyRetry.
func (p *Pass) RecordTenantBusy() { p.Busy = true }
