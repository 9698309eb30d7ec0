package binding

import (
	"maps"
	"slices"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
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

// Decision is the first trigger of the chain that fired.
type Decision struct {
	Action Action
	Why    string
}

// Trigger is one policy of the chain: it returns a decision when it fires.
type Trigger func(f *Facts) (Decision, bool)

// Triggers are tried in order; the first that fires decides. Reading Auth0 is the last resort:
// a held token with a refresh token is renewed at the IdP, never re-read.
var Triggers = []Trigger{
	func(f *Facts) (Decision, bool) {
		return Decision{ActionRead, "no token held yet"}, f.Held == nil
	},
	func(f *Facts) (Decision, bool) {
		return Decision{ActionRead, "the binding's source changed"}, f.Held.Source != f.Source
	},
	func(f *Facts) (Decision, bool) {
		if !ForceRefreshPending(f.Binding) || f.ForceHandled {
			return Decision{}, false
		}
		if f.Held.CanRefresh() {
			return Decision{ActionRefresh, "the force-refresh annotation has a new value"}, true
		}
		return Decision{ActionRead, "the force-refresh annotation has a new value"}, true
	},
	func(f *Facts) (Decision, bool) {
		if f.Now.Before(f.Held.RenewAt) {
			return Decision{}, false
		}
		if f.Held.CanRefresh() {
			return Decision{ActionRefresh, "the token is due for renewal"}, true
		}
		return Decision{ActionRead, "the token is due for renewal and there is no usable refresh token"}, true
	},
	func(f *Facts) (Decision, bool) {
		// Applying again drops what the spec no longer asks for, such as a removed label. Only
		// after a first successful pass: a cache lagging behind that pass is not a spec change.
		return Decision{ActionWrite, "the binding's spec changed"}, specChanged(f)
	},
	func(f *Facts) (Decision, bool) {
		if f.Target == nil {
			return Decision{ActionWrite, "the Secret does not exist"}, true
		}
		return Decision{ActionWrite, "the Secret's content differs"}, !TargetUpToDate(f.Binding, f.Held, f.Target)
	},
}

// Decide runs the trigger chain.
func Decide(f *Facts) Decision {
	for _, t := range Triggers {
		if d, ok := t(f); ok {
			return d
		}
	}
	return Decision{ActionNone, "the Secret is current"}
}

func specChanged(f *Facts) bool {
	st := f.Binding.Status
	return st.ObservedGeneration != 0 && f.Binding.Generation != st.ObservedGeneration
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
	StepDropAllTargets             // the binding lost its permission: delete (or release) its Secrets
	StepReread                     // take the identity's lock and re-read its state from the API server
	StepRefresh                    // refresh Pass.Held at the IdP
	StepReadAuth0                  // read the token from Auth0 (identities[], the connection, or Token Vault)
	StepPersist                    // write Pass.Held to the identity's refresh-state Secret
	StepDropLegacy                 // delete the migrated per-binding state of an earlier version
	StepDropOldTargets             // delete the Secrets of an earlier spec.secret.name
	StepWriteTarget                // write Pass.Held to the binding's Secret
)

func (s Step) String() string {
	return [...]string{"done", "drop-all-targets", "reread", "refresh", "read-auth0", "persist", "drop-legacy", "drop-old-targets", "write-target"}[s]
}

// Lineage tells whether the step reads or writes the identity's lineage (its refresh state, the
// IdP, Auth0), and so runs under the identity's lock. Next names a pass's lineage steps before
// any other, so the lock is released at the first other step: the writes of the target Secrets
// of one identity's bindings do not wait for each other.
func (s Step) Lineage() bool {
	switch s {
	case StepReread, StepRefresh, StepReadAuth0, StepPersist, StepDropLegacy:
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

	Refreshes    int  // refresh attempts
	InvalidGrant bool // the IdP refused the refresh token
	ReadAuth0    bool // Auth0 was read
	// NeedRefresh: Auth0's copy of the access token has expired, but its refresh token can renew it.
	NeedRefresh bool
	// Kept is the token held before a read whose expired copy must be refreshed: it stays the
	// lineage's token when that refresh fails for any reason but invalid_grant.
	Kept            *Token
	Refreshed       bool // a refresh at the IdP succeeded
	Persisted       bool // the refresh-state Secret holds Held
	LegacyDropped   bool
	TargetsDropped  bool // the old (or, when not permitted, all) target Secrets are gone
	TargetAttempted bool
	TargetWritten   bool
}

// Start begins a pass over f.
func Start(f *Facts) *Pass {
	p := &Pass{Blocked: Precheck(f), Held: f.Held}
	p.Failure = p.Blocked
	if p.Blocked == nil {
		if d := Decide(f); d.Action == ActionNone || d.Action == ActionWrite {
			p.Held = Reschedule(f)
		}
	}
	return p
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
	if f.Tenant.ClientPending {
		return StepDone
	}
	d := Decide(f)
	wantsToken := d.Action == ActionRefresh || d.Action == ActionRead
	switch {
	case wantsToken && !f.Fresh:
		return StepReread
	case d.Action == ActionRefresh && p.Refreshes == 0:
		return StepRefresh
	case d.Action == ActionRead && !p.ReadAuth0:
		return StepReadAuth0
	case p.InvalidGrant && !p.ReadAuth0:
		// Auth0 may hold a newer refresh token (the user logged in again): it is tried at once.
		return StepReadAuth0
	case p.NeedRefresh && p.Refreshes < 2:
		return StepRefresh
	case p.Held != nil && !p.Persisted && !SameData(f.State, p.Held.StateData()):
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

// specEdited tells whether the spec changed since the binding was last synced, so that an
// earlier spec.secret.name may have left Secrets behind. A spec never edited (generation 1) has
// had no other name: a new binding looks for none.
func specEdited(b *authv1alpha1.IdPTokenBinding) bool {
	return b.Generation > 1 && b.Generation != b.Status.ObservedGeneration
}

// MaxSteps bounds the steps of one pass: each step of Next can run at most once, refresh twice.
const MaxSteps = 10

// SameData tells whether a Secret's data a (nil: no Secret) already holds exactly b.
func SameData(a, b map[string][]byte) bool {
	if a == nil {
		return false
	}
	return maps.EqualFunc(a, b, func(x, y []byte) bool { return slices.Equal(x, y) })
}
