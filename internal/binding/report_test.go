package binding

import (
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// bindingReasons are every Ready=False reason a binding pass can report.
var bindingReasons = []string{
	authv1alpha1.ReasonTenantNotFound, authv1alpha1.ReasonTenantNotReady, authv1alpha1.ReasonUserNotFound,
	authv1alpha1.ReasonConnectionNotFound, authv1alpha1.ReasonIdentityNotFound, authv1alpha1.ReasonNoAccessToken,
	authv1alpha1.ReasonSecretConflict, authv1alpha1.ReasonManagementAPIError, authv1alpha1.ReasonRefreshFailed,
	authv1alpha1.ReasonTokenExpired, authv1alpha1.ReasonNotPermitted, authv1alpha1.ReasonInvalidRefreshConfig,
	authv1alpha1.ReasonSecretWriteFailed, authv1alpha1.ReasonTokenVaultEnabled,
}

func readyOf(st authv1alpha1.IdPTokenBindingStatus) string {
	c := meta.FindStatusCondition(st.Conditions, authv1alpha1.ConditionReady)
	if c == nil {
		return "none"
	}
	s := string(c.Status) + "/" + c.Reason
	if sf := meta.FindStatusCondition(st.Conditions, authv1alpha1.ConditionSyncFailing); sf != nil {
		s += " SyncFailing=" + sf.Reason
	}
	if meta.IsStatusConditionTrue(st.Conditions, authv1alpha1.ConditionStalled) {
		s += " Stalled"
	}
	if meta.IsStatusConditionTrue(st.Conditions, authv1alpha1.ConditionReconciling) {
		s += " Reconciling"
	}
	return s
}

// TestReadyOverEveryReason: for each failure reason, what Ready says when the Secret holds a
// valid token, holds an expired one, or holds none.
func TestReadyOverEveryReason(t *testing.T) {
	for _, reason := range bindingReasons {
		for _, held := range []string{"valid", "expired", "none"} {
			t.Run(reason+"/"+held, func(t *testing.T) {
				b := testBinding()
				h := testHeld(b)
				f := testFacts(b, h)
				switch held {
				case "expired":
					f.Now = h.Expiry.ExpiresAt.Add(time.Minute)
				case "none":
					f.Held, f.State, f.Target, h = nil, nil, nil, nil
				}
				stalled := map[string]bool{
					authv1alpha1.ReasonTenantNotFound: true, authv1alpha1.ReasonUserNotFound: true, authv1alpha1.ReasonConnectionNotFound: true,
					authv1alpha1.ReasonIdentityNotFound: true, authv1alpha1.ReasonNoAccessToken: true, authv1alpha1.ReasonSecretConflict: true,
					authv1alpha1.ReasonTokenExpired: true, authv1alpha1.ReasonNotPermitted: true, authv1alpha1.ReasonInvalidRefreshConfig: true,
					authv1alpha1.ReasonSecretWriteFailed: true, authv1alpha1.ReasonTokenVaultEnabled: true,
				}
				p := &Pass{Held: h, Failure: Transient(reason, "what went wrong")}
				if stalled[reason] {
					p.Failure = Terminal(reason, 0, "what went wrong")
				}
				st, events := Report(f, p)
				want := "False/" + reason
				kstatus := " Reconciling"
				switch {
				case held == "valid":
					want, kstatus = "True/Synced SyncFailing="+reason, ""
				case held == "expired" && reason == authv1alpha1.ReasonTokenExpired:
					want, kstatus = "False/"+authv1alpha1.ReasonTokenExpired, " Stalled"
				case held == "expired" && reason != authv1alpha1.ReasonSecretConflict:
					want, kstatus = "False/"+authv1alpha1.ReasonTokenExpired+" SyncFailing="+reason, " Stalled"
				case stalled[reason]:
					kstatus = " Stalled"
				}
				if got := readyOf(st); got != want+kstatus {
					t.Errorf("Ready = %q, want %q", got, want+kstatus)
				}
				if st.FailedAttempts != 1 || len(events) != 1 || events[0].Reason != reason {
					t.Errorf("failedAttempts %d, events %+v: want one attempt and one Warning", st.FailedAttempts, events)
				}
				if st.ObservedGeneration != b.Status.ObservedGeneration {
					t.Error("a failed pass must not claim to have observed the generation")
				}
				// Seen again, a terminal failure is no news; a transient one is another attempt.
				f.Binding.Status = st
				st2, events2 := Report(f, p)
				if p.Failure.Terminal && (st2.FailedAttempts != 1 || len(events2) != 0) {
					t.Errorf("a terminal failure seen again counted again: %d attempts, %d events", st2.FailedAttempts, len(events2))
				}
				if !p.Failure.Terminal && st2.FailedAttempts != 2 {
					t.Errorf("a transient failure seen again: %d attempts, want 2", st2.FailedAttempts)
				}
			})
		}
	}
}

func TestReadyAfterASuccessfulPass(t *testing.T) {
	b := testBinding()
	b.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "v2"}
	b.Status.Conditions = []metav1.Condition{{Type: authv1alpha1.ConditionSyncFailing, Status: metav1.ConditionTrue, Reason: "RefreshFailed"}}
	b.Status.FailedAttempts = 3
	h := testHeld(b)
	f := testFacts(b, h)

	st, _ := Report(f, &Pass{Held: h, TargetWritten: true})
	if got := readyOf(st); got != "True/Synced SyncFailing=RefreshFailed" {
		t.Errorf("a pass that only rewrote the Secret: Ready = %q; the last renewal failure must stand", got)
	}
	if st.LastForceRefresh != "" {
		t.Error("a force-refresh is acted on only by a refresh or a read")
	}
	st, events := Report(f, &Pass{Held: h, Refreshes: 1, Refreshed: true, TargetWritten: true})
	if got := readyOf(st); got != "True/Synced" || st.FailedAttempts != 0 || st.LastForceRefresh != "v2" {
		t.Errorf("after a refresh: Ready = %q, failedAttempts %d, lastForceRefresh %q", got, st.FailedAttempts, st.LastForceRefresh)
	}
	if len(events) != 1 || events[0].Reason != "Refreshed" || strings.Contains(events[0].Message, h.AccessToken) {
		t.Errorf("events = %+v: want one Refreshed Event without the token", events)
	}
	short := *h
	short.Expiry.ExpiresAt = now.Add(-time.Second)
	if got := readyOf(func() authv1alpha1.IdPTokenBindingStatus {
		s, _ := Report(f, &Pass{Held: &short, Refreshes: 1})
		return s
	}()); got != "False/TokenExpired Stalled" {
		t.Errorf("a token living less than the renewal spacing: Ready = %q", got)
	}
	st, _ = Report(f, &Pass{Blocked: Terminal(authv1alpha1.ReasonNotPermitted, 0, "no"), Failure: Terminal(authv1alpha1.ReasonNotPermitted, 0, "no"), Held: h})
	if st.ExpiresAt != nil || st.Identity != nil {
		t.Error("a binding that lost its permission must not report the token it no longer has")
	}
}

func TestRequeue(t *testing.T) {
	b := testBinding()
	tests := map[string]struct {
		p        *Pass
		failures int32
		want     time.Duration
	}{
		"success: at the renewal time": {p: &Pass{Held: testHeld(b)}, want: 10 * time.Minute},
		"transient failure: backoff": {
			p: &Pass{Held: testHeld(b), Failure: Transient("X", "m")}, failures: 3, want: 20 * time.Second,
		},
		"transient failure: the server's Retry-After when longer": {
			p: &Pass{Held: testHeld(b), Failure: &Failure{NotBefore: time.Minute}}, failures: 1, want: time.Minute,
		},
		"backoff never passes the expiry of a valid token": {
			p: &Pass{Held: func() *Token { h := testHeld(b); h.Expiry.ExpiresAt = now.Add(3 * time.Second); return h }(),
				Failure: Transient("X", "m")}, failures: 9, want: 4 * time.Second,
		},
		"terminal without a token: no requeue":                {p: &Pass{Failure: Terminal("X", 0, "m")}, want: 0},
		"terminal with a recheck":                             {p: &Pass{Failure: Terminal("X", time.Minute, "m")}, want: time.Minute},
		"terminal with a valid token: look again at expiry":   {p: &Pass{Held: testHeld(b), Failure: Terminal("X", 0, "m")}, want: 30*time.Minute + time.Second},
		"a renewal time in the past: at once, not a hot loop": {p: &Pass{Held: func() *Token { h := testHeld(b); h.RenewAt = now.Add(-time.Hour); return h }()}, want: MinRequeue},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Requeue(testFacts(b, nil), tc.p, tc.failures); got != tc.want {
				t.Fatalf("Requeue = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzPlanner runs whole passes over facts parsed from arbitrary refresh-state Secret bytes,
// with arbitrary clocks, policies and step results, and asserts that the planner never panics,
// always ends a pass within MaxSteps, never writes a target before the state it holds, and
// always schedules a bounded requeue: in [1 s, 24 h], or none only after a terminal failure.
func FuzzPlanner(f *testing.F) {
	seed := testHeld(testBinding()).StateData()
	var buf []byte
	for k, v := range seed {
		buf = append(append(append(append(buf, k...), '='), v...), '\n')
	}
	f.Add(buf, int64(1_795_000_000), int64(3600), int64(600), int64(3600), uint16(0), 0.5, int32(0))
	f.Add([]byte("access_token=x\nexpires_at=9999-12-31T23:59:59Z\nrenew_at=0001-01-01T00:00:00Z\nrefresh_token=r\n"), int64(0), int64(-1), int64(math.MaxInt64), int64(1), uint16(0xffff), 0.99, int32(40))
	f.Add([]byte("access_token=\x00\nexpires_at=garbage\nsource=0123456789abcdef\nrefresh_token_dead=true\n"), int64(-62135596800), int64(math.MinInt64), int64(-5), int64(-1), uint16(0x5a5a), math.NaN(), int32(-2))
	f.Fuzz(func(t *testing.T, raw []byte, nowUnix, expiresIn, renewBefore, fallback int64, bits uint16, jitter float64, failed int32) {
		data := map[string][]byte{}
		for _, line := range strings.Split(string(raw), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				data[k] = []byte(v)
			}
		}
		b := testBinding()
		b.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: time.Duration(renewBefore)}
		b.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: time.Duration(fallback)}
		b.Status.FailedAttempts = failed
		if bits&1 != 0 {
			b.Generation = 2
		}
		if bits&2 != 0 {
			b.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "x"}
		}
		fx := testFacts(b, nil)
		fx.Now = time.Unix(int64(uint64(nowUnix)%(1<<34)), 0).UTC() // any clock from 1970 to 2514
		fx.Held, fx.State, fx.Jitter = ParseState(data), data, jitter
		fx.Tenant.Found, fx.Tenant.ClientPending, fx.Legacy = bits&4 == 0, bits&8 != 0, bits&16 != 0
		if bits&32 != 0 {
			fx.Tenant.Denied = "no"
		}
		if fx.Held != nil && bits&64 == 0 {
			fx.Target = targetFor(b, fx.Held)
		}
		results := outcomes{read: [...]string{"new", "expired-with-refresh-token", "same", "error"}[bits>>7&3]}
		results.refresh = []string{[...]string{"ok", "invalid_grant", "error", "ok"}[bits>>9&3], [...]string{"ok", "invalid_grant", "error", "ok"}[bits>>11&3]}
		if bits&(1<<13) != 0 {
			results.target = "refused"
		}
		results.lifetime = time.Duration(expiresIn)
		steps, p := drive(t, fx, results)
		if w := indexOf(steps, "write-target"); w >= 0 {
			if pi := indexOf(steps, "persist"); pi > w {
				t.Fatalf("steps %v write the Secret before the state", steps)
			}
		}
		st, _ := Report(fx, p)
		d := Requeue(fx, p, st.FailedAttempts)
		if d == 0 {
			if p.Failure == nil || !p.Failure.Terminal {
				t.Fatalf("no requeue after a pass without a terminal failure (steps %v, failure %+v)", steps, p.Failure)
			}
			return
		}
		if d < MinRequeue || d > MaxRequeue {
			t.Fatalf("requeue after %v, outside [%v, %v] (steps %v, held %+v)", d, MinRequeue, MaxRequeue, steps, p.Held)
		}
		if h := p.Held; p.Refreshed && !h.RenewAt.After(fx.Now) {
			t.Fatalf("a refreshed token is renewed at %v, not after now %v", h.RenewAt, fx.Now)
		}
	})
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func TestATokenTheOperatorCannotRefreshIsSyncedButNotReady(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	h.RefreshUnsupported = `strategy "samlp" has no token endpoint the operator knows`
	f := testFacts(b, h)

	st, events := Report(f, &Pass{Held: h, ReadAuth0: true, TargetWritten: true})
	if got := readyOf(st); got != "False/RefreshUnsupported Stalled" {
		t.Errorf("Ready = %q, want False/RefreshUnsupported with Stalled", got)
	}
	ready := meta.FindStatusCondition(st.Conditions, authv1alpha1.ConditionReady)
	for _, want := range []string{`"samlp"`, b.Spec.Secret.Name, h.Expiry.ExpiresAt.Format(time.RFC3339)} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("message %q does not name %s", ready.Message, want)
		}
	}
	if !hasEvent(events, authv1alpha1.ReasonRefreshUnsupported) {
		t.Errorf("events = %+v: want a RefreshUnsupported Warning the first time", events)
	}
	if Requeue(f, &Pass{Held: h}, st.FailedAttempts) != h.RenewAt.Sub(now) {
		t.Error("the token must be read again from Auth0 at its renewal time")
	}

	b.Status = st
	_, events = Report(f, &Pass{Held: h})
	if hasEvent(events, authv1alpha1.ReasonRefreshUnsupported) {
		t.Error("the Warning must not repeat on every pass")
	}

	st, _ = Report(f, &Pass{Held: h, Failure: Transient(authv1alpha1.ReasonManagementAPIError, "503")})
	if got := readyOf(st); got != "False/RefreshUnsupported SyncFailing=ManagementAPIError Stalled" {
		t.Errorf("a failed re-read: Ready = %q", got)
	}
}

func hasEvent(events []Event, reason string) bool {
	for _, e := range events {
		if e.Reason == reason {
			return true
		}
	}
	return false
}

func TestABindingBackingOffLooksAgainWhenTheBackoffEnds(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	f := testFacts(b, h)
	f.Now, f.Jitter = h.RenewAt.Add(time.Second), 0
	b.Status.FailedAttempts = 2 // a 10 s backoff
	b.Status.LastFailureTime = &metav1.Time{Time: f.Now.Add(-4 * time.Second)}
	p := Start(f)
	if !p.BackingOff || Next(f, p) != StepDone {
		t.Fatalf("a due renewal 4 s into a 10 s backoff must wait: %+v", p)
	}
	if got := Requeue(f, p, b.Status.FailedAttempts); got != 6*time.Second {
		t.Errorf("Requeue = %s, want the backoff's end (6 s)", got)
	}
}

func TestNextRefreshTimeIsNeverInThePastAfterGivingUp(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	f := testFacts(b, h)
	f.Now = h.Expiry.ExpiresAt.Add(time.Minute) // expired, the renewal time long past
	p := &Pass{Held: h, Failure: Terminal(authv1alpha1.ReasonTokenExpired, time.Hour, "expired")}
	st, _ := Report(f, p)
	if st.NextRefreshTime == nil || !st.NextRefreshTime.After(f.Now) {
		t.Fatalf("nextRefreshTime = %v after TokenExpired at %v: it must say when the operator looks again (in an hour)", st.NextRefreshTime, f.Now)
	}
	p.Revoked, p.Held = true, nil
	if st, _ := Report(f, p); st.NextRefreshTime != nil || st.ExpiresAt != nil {
		t.Fatalf("a deleted user's binding still reports a token: next %v, expires %v", st.NextRefreshTime, st.ExpiresAt)
	}
}

// A renewal reaches each binding of an identity; only the binding that refreshed records an
// Event. A restored, first, re-read or recovering write still records one.
func TestOnlyTheBindingThatRefreshedRecordsTheRenewal(t *testing.T) {
	ready := []metav1.Condition{{Type: authv1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: authv1alpha1.ReasonSynced}}
	notReady := []metav1.Condition{{Type: authv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: authv1alpha1.ReasonRefreshFailed}}
	earlier, later := metav1.NewTime(now.Add(-time.Hour)), now.Add(-time.Minute)
	tests := map[string]struct {
		conditions  []metav1.Condition
		lastRefresh *metav1.Time // the binding's status before the pass
		held        time.Time    // the LastRefresh of the token written
		pass        Pass
		wantReason  string // "" for no Event
	}{
		"a renewal another binding made":          {conditions: ready, lastRefresh: &earlier, held: later},
		"the binding that refreshed":              {conditions: ready, lastRefresh: &earlier, held: later, pass: Pass{Refreshed: true, Refreshes: 1}, wantReason: "Refreshed"},
		"the Secret restored (same refresh)":      {conditions: ready, lastRefresh: &earlier, held: earlier.Time, wantReason: "Synced"},
		"the first write":                         {conditions: nil, held: later, wantReason: "Synced"},
		"a renewal reaching a binding not Ready":  {conditions: notReady, lastRefresh: &earlier, held: later, wantReason: "Synced"},
		"a read from Auth0 (a new login)":         {conditions: ready, lastRefresh: &earlier, held: later, pass: Pass{ReadAuth0: true}, wantReason: "Synced"},
		"a token never refreshed, read elsewhere": {conditions: ready, lastRefresh: &earlier, held: time.Time{}, wantReason: "Synced"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBinding()
			b.Status.Conditions, b.Status.LastRefreshTime = tc.conditions, tc.lastRefresh
			h := testHeld(b)
			h.LastRefresh = tc.held
			p := tc.pass
			p.Held, p.TargetWritten = h, true
			st, events := Report(testFacts(b, h), &p)
			var reasons []string
			for _, e := range events {
				reasons = append(reasons, e.Reason)
			}
			if want := []string{tc.wantReason}; (tc.wantReason == "" && len(reasons) != 0) || (tc.wantReason != "" && !slices.Equal(reasons, want)) {
				t.Errorf("events %v, want %q", reasons, tc.wantReason)
			}
			if st.LastSyncTime == nil || (!tc.held.IsZero() && !st.LastRefreshTime.Time.Equal(tc.held)) {
				t.Errorf("status lastSyncTime %v, lastRefreshTime %v: the write must still be recorded", st.LastSyncTime, st.LastRefreshTime)
			}
		})
	}
}
