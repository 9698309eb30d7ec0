package binding

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func TestPrecheckRefusesBeforeAnyRequest(t *testing.T) {
	tests := map[string]struct {
		edit func(f *Facts)
		want string
	}{
		"no override": {edit: func(*Facts) {}},
		"override on a Denied tenant": {edit: func(f *Facts) {
			f.Binding.Spec.Refresh.TokenURL = "https://evil.example/token"
			f.Binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"client override on Denied": {edit: func(f *Facts) {
			f.Binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"tokenURL without a client": {edit: func(f *Facts) {
			f.Tenant.OverrideAllowed = true
			f.Binding.Spec.Refresh.TokenURL = "https://evil.example/token"
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"allowed with a labelled client": {edit: func(f *Facts) {
			f.Tenant.OverrideAllowed = true
			f.Binding.Spec.Refresh.TokenURL = "https://idp.example/token"
			f.Binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
		}},
		"an unlabelled client Secret": {edit: func(f *Facts) {
			f.Tenant.OverrideAllowed = true
			f.Binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
			f.Tenant.OverrideRefused = Terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0, "not labelled")
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"refused by a cluster policy":        {edit: func(f *Facts) { f.Tenant.Denied = "no" }, want: authv1alpha1.ReasonNotPermitted},
		"no tenant":                          {edit: func(f *Facts) { f.Tenant.Found = false }, want: authv1alpha1.ReasonTenantNotFound},
		"the home of the state is not known": {edit: func(f *Facts) { f.Tenant.HomeKnown = false }, want: authv1alpha1.ReasonTenantNotReady},
		"the Secret belongs to someone else": {edit: func(f *Facts) { f.Conflict = "x" }, want: authv1alpha1.ReasonSecretConflict},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBinding()
			f := testFacts(b, testHeld(b))
			tc.edit(f)
			got := Precheck(f)
			switch {
			case tc.want == "" && got != nil:
				t.Fatalf("Precheck = %s: %s, want nothing", got.Reason, got.Message)
			case tc.want != "" && (got == nil || got.Reason != tc.want):
				t.Fatalf("Precheck = %+v, want %s", got, tc.want)
			}
		})
	}
}

// outcomes says what each I/O step of a scripted pass finds; the zero value is success.
type outcomes struct {
	refresh []string // per refresh attempt: "ok", "invalid_grant", "error"
	read    string   // "new", "expired-with-refresh-token", "same", "error", "not-found", "estimated", "estimated-unsupported"
	target  string   // "ok", "refused"
	claim   string   // "ok", "busy"
	// lifetime of the tokens the IdP and Auth0 hand out; 0 means an hour.
	lifetime time.Duration
}

func (o outcomes) lifetimeOr() time.Duration {
	if o.lifetime == 0 {
		return time.Hour
	}
	return o.lifetime
}

// drive runs a pass over f as the controller does, with each step's result taken from o, and
// returns the steps taken and the final pass.
func drive(t testing.TB, f *Facts, o outcomes) ([]string, *Pass) {
	p := Start(f)
	var steps []string
	unlocked := false // the controller releases the identity's lock at the first non-lineage step
	released := false // and the tenant's share of the workers at the first step after the external ones
	for range MaxSteps {
		step := Next(f, p)
		if step == StepDone {
			return steps, p
		}
		steps = append(steps, step.String())
		if step.Lineage() && unlocked {
			t.Fatalf("steps %v: a lineage step after the identity's lock was released", steps)
		}
		if step.External() && released {
			t.Fatalf("steps %v: a request to Auth0 or the IdP after the tenant's share was given back", steps)
		}
		unlocked = unlocked || !step.Lineage()
		released = released || step.AfterExternal()
		switch step {
		case StepDropAllTargets, StepDropOldTargets:
			p.RecordTargetsDropped()
		case StepDropState:
			p.RecordStateDropped()
		case StepReread:
			f.Fresh = true
			p = Start(f)
		case StepClaim:
			if o.claim == "busy" {
				p.RecordClaim(ClaimBusy, nil)
			} else {
				p.RecordClaim(ClaimTaken, nil)
			}
		case StepRefresh:
			result := "ok"
			if p.Refreshes < len(o.refresh) {
				result = o.refresh[p.Refreshes]
			}
			switch result {
			case "ok":
				p.RecordRefresh(f, RefreshResult{Renewal: Renewal{AccessToken: "at-new", RefreshToken: "rt-new", ExpiresIn: o.lifetimeOr()}})
			case "invalid_grant":
				p.RecordRefresh(f, RefreshResult{InvalidGrant: true, Err: "invalid_grant"})
			default:
				p.RecordRefresh(f, RefreshResult{Err: "500"})
			}
		case StepReadAuth0:
			read := &Token{AccessToken: "at-auth0", RefreshToken: "rt-auth0", Auth0RefreshHash: HashToken("rt-auth0"), Lineage: f.Lineage,
				Identity: authv1alpha1.IdentityStatus{Provider: "google-oauth2", Connection: "google-oauth2", UserID: "1"}}
			read.Expiry.ExpiresAt = f.Now.Add(o.lifetimeOr())
			switch o.read {
			case "error":
				p.RecordRead(f, nil, Transient(authv1alpha1.ReasonManagementAPIError, "503"))
				continue
			case "not-found":
				p.RecordRead(f, nil, Terminal(authv1alpha1.ReasonUserNotFound, 0, "404"))
				continue
			case "expired-with-refresh-token":
				read.Expiry.ExpiresAt = f.Now.Add(-time.Minute)
			case "estimated":
				read.Expiry.Source = authv1alpha1.ExpirySourceEstimated
			case "estimated-unsupported":
				read.Expiry.Source = authv1alpha1.ExpirySourceEstimated
				read.RefreshUnsupported = `strategy "samlp"`
			case "same":
				if p.Held != nil {
					copied := *p.Held
					read = &copied
				}
			}
			p.RecordRead(f, read, nil)
		case StepPersist:
			p.RecordPersist(p.Held, nil)
		case StepDropLegacy:
			p.RecordLegacyDropped()
		case StepWriteTarget:
			if o.target == "refused" {
				p.RecordTargetWrite(Terminal(authv1alpha1.ReasonSecretWriteFailed, 5*time.Minute, "refused"))
			} else {
				p.RecordTargetWrite(nil)
			}
		}
	}
	t.Fatalf("the pass did not end within %d steps: %v", MaxSteps, steps)
	return nil, nil
}

// failedAgo makes the binding's last attempt a failure d before f.Now (its first: a 5 s backoff).
func failedAgo(f *Facts, d time.Duration) {
	f.Binding.Status.FailedAttempts = 1
	f.Binding.Status.LastFailureTime = &metav1.Time{Time: f.Now.Add(-d)}
}

func TestNextPerformsOneStepAtATimeInOrder(t *testing.T) {
	due := func(f *Facts) { f.Now = f.Held.RenewAt }
	expired := func(f *Facts) { f.Now = f.Held.Expiry.ExpiresAt.Add(time.Minute) }
	tests := map[string]struct {
		edit       func(f *Facts)
		o          outcomes
		want       string
		wantReason string // of the pass's failure; "" for none
	}{
		"current and not due: nothing":             {edit: func(*Facts) {}, want: ""},
		"Secret deleted: restored from the state":  {edit: func(f *Facts) { f.Target = nil }, want: "write-target"},
		"first pass: read Auth0, persist, write":   {edit: func(f *Facts) { f.Held, f.State, f.Target = nil, nil, nil }, want: "reread,read-auth0,persist,write-target"},
		"due: refresh, persist before the write":   {edit: due, want: "reread,claim,refresh,persist,write-target"},
		"due, the IdP fails: nothing is persisted": {edit: due, o: outcomes{refresh: []string{"error"}}, want: "reread,claim,refresh,persist", wantReason: authv1alpha1.ReasonRefreshFailed},
		"invalid_grant: Auth0's newer refresh token is refreshed at once": {
			edit: expired, o: outcomes{refresh: []string{"invalid_grant", "ok"}, read: "expired-with-refresh-token"},
			want: "reread,claim,refresh,read-auth0,refresh,persist,write-target",
		},
		"invalid_grant twice: no loop, the dead token is persisted": {
			edit: expired, o: outcomes{refresh: []string{"invalid_grant", "invalid_grant"}, read: "expired-with-refresh-token"},
			want: "reread,claim,refresh,read-auth0,refresh,persist", wantReason: authv1alpha1.ReasonRefreshFailed,
		},
		"invalid_grant while the held token is valid: Auth0's new refresh token is kept for later": {
			edit: due, o: outcomes{refresh: []string{"invalid_grant"}, read: "expired-with-refresh-token"},
			want: "reread,claim,refresh,read-auth0,persist",
		},
		"invalid_grant and Auth0 has a new token: adopted": {
			edit: due, o: outcomes{refresh: []string{"invalid_grant"}, read: "new"},
			want: "reread,claim,refresh,read-auth0,persist,write-target",
		},
		"first pass, an Estimated expiry: refreshed at once for the IdP's own": {
			edit: func(f *Facts) { f.Held, f.State, f.Target = nil, nil, nil }, o: outcomes{read: "estimated"},
			want: "reread,read-auth0,claim,refresh,persist,write-target",
		},
		"first pass, an Estimated expiry, the IdP fails: Auth0's token is written": {
			edit: func(f *Facts) { f.Held, f.State, f.Target = nil, nil, nil }, o: outcomes{read: "estimated", refresh: []string{"error"}},
			want: "reread,read-auth0,claim,refresh,persist,write-target", wantReason: authv1alpha1.ReasonRefreshFailed,
		},
		"first pass, an Estimated expiry the operator cannot refresh: only synced": {
			edit: func(f *Facts) { f.Held, f.State, f.Target = nil, nil, nil }, o: outcomes{read: "estimated-unsupported"},
			want: "reread,read-auth0,persist,write-target",
		},
		"due, the connection cannot be refreshed: Auth0 is read again": {
			edit: func(f *Facts) {
				f.Held.RefreshUnsupported = `strategy "samlp"`
				f.State = f.Held.StateData()
				f.Now = f.Held.RenewAt
			}, o: outcomes{read: "estimated-unsupported"},
			want: "reread,read-auth0,persist,write-target",
		},
		"due, the last attempt failed 2 s ago: nothing is asked until the backoff ends": {
			edit: func(f *Facts) { due(f); failedAgo(f, 2*time.Second) }, want: "",
		},
		"due, the backoff has ended: refreshed": {
			edit: func(f *Facts) { due(f); failedAgo(f, 10*time.Second) }, want: "reread,claim,refresh,persist,write-target",
		},
		"backing off, the Secret was deleted: restored without asking anyone": {
			edit: func(f *Facts) { due(f); failedAgo(f, 2*time.Second); f.Target = nil }, want: "write-target",
		},
		"a force-refresh whose attempt failed 2 s ago: retried when the backoff ends, not at once": {
			edit: func(f *Facts) {
				failedAgo(f, 2*time.Second)
				f.Binding.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "now"}
				f.ForceSeenAt = f.Now.Add(-3 * time.Second)
			}, want: "",
		},
		"backing off, a new force-refresh value: acted on at once": {
			edit: func(f *Facts) {
				due(f)
				failedAgo(f, 2*time.Second)
				f.Binding.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "now"}
			}, want: "reread,claim,refresh,persist,write-target",
		},
		"another binding's first refresh of an Estimated expiry is in flight: nothing is written until it is done": {
			edit: func(f *Facts) {
				f.Held.Expiry.Source, f.Held.LastRefresh = authv1alpha1.ExpirySourceEstimated, time.Time{}
				f.State, f.Target = f.Held.StateData(), nil
			}, o: outcomes{claim: "busy"}, want: "reread,claim",
		},
		"the API server refuses the Secret": {
			edit: func(f *Facts) { f.Target = nil }, o: outcomes{target: "refused"},
			want: "write-target", wantReason: authv1alpha1.ReasonSecretWriteFailed,
		},
		"not permitted: the Secrets go, nothing is requested": {
			edit: func(f *Facts) { f.Tenant.Denied = "no" }, want: "drop-all-targets", wantReason: authv1alpha1.ReasonNotPermitted,
		},
		"no tenant: nothing":                   {edit: func(f *Facts) { f.Tenant.Found = false }, want: "", wantReason: authv1alpha1.ReasonTenantNotFound},
		"the tenant's client is not built yet": {edit: func(f *Facts) { f.Tenant.ClientPending = true; f.Held = nil }, want: ""},
		"spec changed: old Secrets go, the Secret is applied again": {
			edit: func(f *Facts) { f.Binding.Generation = 2 }, want: "drop-old-targets,write-target",
		},
		"a new binding: no earlier spec.secret.name to look for": {
			edit: func(f *Facts) { f.Binding.Status = authv1alpha1.IdPTokenBindingStatus{}; f.Target = nil },
			want: "write-target",
		},
		"migration: the per-binding state becomes the identity's": {
			edit: func(f *Facts) { f.State, f.Legacy = nil, true }, want: "persist,drop-legacy",
		},
		"force-refresh: refreshed although not due": {
			edit: func(f *Facts) {
				f.Binding.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "now"}
			}, want: "reread,claim,refresh,persist,write-target",
		},
		"force-refresh within the renewal spacing: queued, nothing sent": {
			edit: func(f *Facts) {
				f.Binding.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "now"}
				f.Held.LastRefresh = f.Now.Add(-10 * time.Second)
				f.State = f.Held.StateData()
			}, want: "",
		},
		"due, another manager holds the identity's claim: nothing sent": {
			edit: due, o: outcomes{claim: "busy"}, want: "reread,claim",
		},
		"an unresolved primary identity: the first pass only reads Auth0": {
			edit: func(f *Facts) {
				f.Held, f.State, f.Target, f.Unresolved = nil, nil, nil, true
				f.Binding.Spec.User.Connection = ""
			}, want: "reread,read-auth0",
		},
		"Auth0 reported a change after the last read: Auth0 is read, not the IdP, and its new token written": {
			edit: func(f *Facts) { f.Notice = Notice{At: f.Now.Add(-time.Second)} }, o: outcomes{read: "new"},
			want: "reread,read-auth0,persist,write-target",
		},
		"Auth0 reported a change, Auth0 has nothing newer: only the read time is persisted": {
			edit: func(f *Facts) { f.Notice = Notice{At: f.Now.Add(-time.Second)} }, o: outcomes{read: "same"},
			want: "reread,read-auth0,persist",
		},
		"a notice the lineage has read since: nothing": {
			edit: func(f *Facts) {
				f.Held.Auth0ReadAt = f.Now.Add(-time.Second)
				f.State = f.Held.StateData()
				f.Notice = Notice{At: f.Now.Add(-2 * time.Second)}
			}, want: "",
		},
		"TokenExpired and backing off, the user logs in again: read at once": {
			edit: func(f *Facts) {
				expired(f)
				f.Held.RefreshTokenDead = true
				f.State = f.Held.StateData()
				failedAgo(f, 2*time.Second)
				f.Notice = Notice{At: f.Now.Add(-time.Second)}
			}, o: outcomes{read: "new"},
			want: "reread,read-auth0,persist,write-target",
		},
		"no access token yet and backing off, the user logs in: read at once": {
			edit: func(f *Facts) {
				f.Held, f.State, f.Target = nil, nil, nil
				failedAgo(f, 2*time.Second)
				f.Notice = Notice{At: f.Now.Add(-time.Second)}
			}, o: outcomes{read: "new"},
			want: "reread,read-auth0,persist,write-target",
		},
		"a notice from before the last failure: the backoff holds": {
			edit: func(f *Facts) {
				failedAgo(f, 2*time.Second)
				f.Notice = Notice{At: f.Now.Add(-3 * time.Second)}
			}, want: "",
		},
		"user deleted and Auth0 confirms it: the state and the Secret are deleted": {
			edit: func(f *Facts) { f.Notice = Notice{At: f.Now.Add(-time.Second), Deleted: true} }, o: outcomes{read: "not-found"},
			want: "reread,read-auth0,drop-state,drop-all-targets", wantReason: authv1alpha1.ReasonUserNotFound,
		},
		"user deleted, another binding dropped the state already: the Secret is deleted": {
			edit: func(f *Facts) {
				f.Held, f.State = nil, nil
				f.Notice = Notice{At: f.Now.Add(-time.Second), Deleted: true}
			}, o: outcomes{read: "not-found"},
			want: "reread,read-auth0,drop-all-targets", wantReason: authv1alpha1.ReasonUserNotFound,
		},
		"user deleted, but Auth0 still has the user: nothing is deleted": {
			edit: func(f *Facts) { f.Notice = Notice{At: f.Now.Add(-time.Second), Deleted: true} }, o: outcomes{read: "same"},
			want: "reread,read-auth0,persist",
		},
		"Auth0 has no such user but reported no deletion: the Secret keeps its token": {
			edit: func(f *Facts) { f.Notice = Notice{At: f.Now.Add(-time.Second)} }, o: outcomes{read: "not-found"},
			want: "reread,read-auth0", wantReason: authv1alpha1.ReasonUserNotFound,
		},
		"a reported deletion without a notice since the last read: nothing": {
			edit: func(f *Facts) {
				f.Held.Auth0ReadAt = f.Now
				f.State = f.Held.StateData()
				f.Notice = Notice{At: f.Now.Add(-time.Second), Deleted: true}
			}, o: outcomes{read: "not-found"}, want: "",
		},
		"TokenExpired, no notice: the read that finds nothing newer writes no state (a write would start the next pass)": {
			edit: func(f *Facts) {
				expired(f)
				f.Held.RefreshToken, f.Held.Auth0RefreshHash = "", ""
				f.Held.Auth0ReadAt = f.Now.Add(-time.Hour)
				f.State = f.Held.StateData()
			}, o: outcomes{read: "same"},
			want: "reread,read-auth0", wantReason: authv1alpha1.ReasonTokenExpired,
		},
		"force-refresh already acted on by this manager: nothing": {
			edit: func(f *Facts) {
				f.Binding.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "now"}
				f.ForceHandled = true
			}, want: "",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBinding()
			f := testFacts(b, testHeld(b))
			tc.edit(f)
			steps, p := drive(t, f, tc.o)
			if got := strings.Join(steps, ","); got != tc.want {
				t.Errorf("steps = %q, want %q", got, tc.want)
			}
			switch {
			case tc.wantReason == "" && p.Failure != nil:
				t.Errorf("failure %s: %s", p.Failure.Reason, p.Failure.Message)
			case tc.wantReason != "" && (p.Failure == nil || p.Failure.Reason != tc.wantReason):
				t.Errorf("failure = %+v, want %s", p.Failure, tc.wantReason)
			}
		})
	}
}

func TestAStateWriteAlwaysPrecedesTheTargetWrite(t *testing.T) {
	b := testBinding()
	for _, o := range []outcomes{{}, {refresh: []string{"invalid_grant", "ok"}, read: "expired-with-refresh-token"}, {read: "new"}} {
		f := testFacts(b, testHeld(b))
		f.Now = f.Held.RenewAt
		steps, _ := drive(t, f, o)
		if w := slices.Index(steps, "write-target"); w >= 0 && slices.Index(steps, "persist") > w {
			t.Errorf("steps %v write the Secret before the state", steps)
		}
	}
}

func TestAReadCoversTheNoticesReceivedBeforeIt(t *testing.T) {
	b := testBinding()
	f := testFacts(b, testHeld(b))
	f.Notice = Notice{At: f.Now.Add(-500 * time.Millisecond)}
	if d := Decide(f); d.Trigger != TriggerAuth0Event || d.Action != ActionRead {
		t.Fatalf("Decide = %+v, want a read for the notice", d)
	}
	if got := ReadNotBefore(f, f.Held); !got.Equal(f.Notice.At) {
		t.Errorf("ReadNotBefore = %v, want the notice's time %v: an older shared read would hide the new login", got, f.Notice.At)
	}
	_, p := drive(t, f, outcomes{read: "same"})
	if !p.Held.Auth0ReadAt.Equal(f.Now) {
		t.Fatalf("Auth0ReadAt = %v, want the pass's time %v", p.Held.Auth0ReadAt, f.Now)
	}
	// The persisted state keeps the time to the nanosecond: the next pass does not read again.
	next := testFacts(b, ParseState(p.Held.StateData()))
	next.Now = f.Now.Add(time.Second)
	next.Notice = f.Notice
	if d := Decide(next); d.Trigger == TriggerAuth0Event {
		t.Fatalf("the notice fired again after a read that covered it (Auth0ReadAt %v)", next.Held.Auth0ReadAt)
	}
	// A notice received after the read fires again.
	next.Notice = Notice{At: f.Now.Add(time.Nanosecond)}
	if d := Decide(next); d.Trigger != TriggerAuth0Event {
		t.Fatalf("a notice after the read did not fire: %+v", d)
	}
}

func TestAReadAnEventAskedForNeverDelaysTheRenewal(t *testing.T) {
	b := testBinding()
	held := testHeld(b) // expires in 30 min, renewal planned in 10 min
	f := testFacts(b, held)
	f.Notice = Notice{At: f.Now.Add(-time.Second)}
	_, p := drive(t, f, outcomes{read: "same"})
	if !p.Held.RenewAt.Equal(held.RenewAt) {
		t.Fatalf("after a read that found nothing newer the renewal moved from %v to %v", held.RenewAt, p.Held.RenewAt)
	}
}
