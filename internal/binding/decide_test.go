package binding

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

func TestDecide(t *testing.T) {
	tests := map[string]struct {
		edit func(f *Facts)
		want Action
	}{
		"nothing held: read Auth0": {
			edit: func(f *Facts) { f.Held = nil }, want: ActionRead,
		},
		"source changed: read Auth0": {
			edit: func(f *Facts) { f.Lineage = "another-identity" }, want: ActionRead,
		},
		"due with a refresh token: refresh at the IdP": {
			edit: func(f *Facts) { f.Now = f.Held.RenewAt }, want: ActionRefresh,
		},
		"due with a dead refresh token: read Auth0": {
			edit: func(f *Facts) { f.Now = f.Held.RenewAt; f.Held.RefreshTokenDead = true }, want: ActionRead,
		},
		"due without a refresh token: read Auth0": {
			edit: func(f *Facts) { f.Now = f.Held.RenewAt; f.Held.RefreshToken = "" }, want: ActionRead,
		},
		"Secret deleted: write it from the held token": {
			edit: func(f *Facts) { f.Target = nil }, want: ActionWrite,
		},
		"access_token edited by hand: write": {
			edit: func(f *Facts) { f.Target.Data["access_token"] = []byte("x") }, want: ActionWrite,
		},
		"refresh_token appeared although not included: write": {
			edit: func(f *Facts) { f.Target.Data["refresh_token"] = []byte("x") }, want: ActionWrite,
		},
		"includeRefreshToken turned on: write": {
			edit: func(f *Facts) { f.Binding.Spec.Secret.IncludeRefreshToken = true }, want: ActionWrite,
		},
		"a managed annotation edited: write": {
			edit: func(f *Facts) { f.Target.Annotations[authv1alpha1.AnnotationProvider] = "x" }, want: ActionWrite,
		},
		"deletionPolicy changed to Retain: write (drop the ownerReference)": {
			edit: func(f *Facts) { f.Binding.Spec.DeletionPolicy = authv1alpha1.DeletionPolicyRetain }, want: ActionWrite,
		},
		"a user label added to the spec: write": {
			edit: func(f *Facts) {
				f.Binding.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "a"}
			}, want: ActionWrite,
		},
		"spec changed since the last successful pass: write, so that removed labels go": {
			edit: func(f *Facts) { f.Binding.Generation = 2 }, want: ActionWrite,
		},
		"foreign keys and labels are left alone": {
			edit: func(f *Facts) { f.Target.Data["other"] = []byte("x"); f.Target.Labels["other"] = "x" }, want: ActionNone,
		},
		"current and not due: nothing": {
			edit: func(*Facts) {}, want: ActionNone,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBinding()
			h := testHeld(b)
			f := testFacts(b, h)
			tc.edit(f)
			if got := Decide(f); got.Action != tc.want {
				t.Fatalf("Decide() = %v (%s), want %v", got.Action, got.Why, tc.want)
			}
		})
	}
}

func TestAdopt(t *testing.T) {
	b := testBinding()
	valid := func(at, rt string, exp time.Duration) *Token {
		h := testHeld(b)
		h.AccessToken, h.RefreshToken, h.Auth0RefreshHash = at, rt, HashToken(rt)
		h.Expiry.ExpiresAt = now.Add(exp)
		return h
	}
	tests := map[string]struct {
		held, read  *Token
		wantVerdict Verdict
		wantAT      string
		wantRT      string
	}{
		"first read": {
			held: nil, read: valid("at-a0", "rt-a0", time.Hour), wantVerdict: VerdictNew, wantAT: "at-a0", wantRT: "rt-a0",
		},
		"Auth0 still has the refresh token the lineage started from: keep the rotated one": {
			held: func() *Token {
				h := valid("at-2", "rt-2", 10*time.Minute)
				h.Auth0RefreshHash = HashToken("rt-a0")
				return h
			}(),
			read:        valid("at-a0", "rt-a0", -time.Minute),
			wantVerdict: VerdictNothingNewer, wantAT: "at-2", wantRT: "rt-2",
		},
		"the user logged in again: Auth0's new refresh token wins": {
			held: func() *Token {
				h := valid("at-2", "rt-2", 10*time.Minute)
				h.Auth0RefreshHash = HashToken("rt-a0")
				return h
			}(),
			read:        valid("at-a1", "rt-a1", time.Hour),
			wantVerdict: VerdictNew, wantAT: "at-a1", wantRT: "rt-a1",
		},
		"a spec edit naming the same identity differently keeps the rotated lineage": {
			held: func() *Token {
				h := valid("at-2", "rt-2", 10*time.Minute)
				h.Auth0RefreshHash, h.Lineage = HashToken("rt-a0"), "before-the-edit"
				return h
			}(),
			read:        valid("at-a0", "rt-a0", -time.Minute),
			wantVerdict: VerdictRefresh, wantAT: "at-a0", wantRT: "rt-2",
		},
		"Auth0's access token expired but its refresh token is usable: refresh now": {
			held: nil, read: valid("at-a0", "rt-a0", -time.Second), wantVerdict: VerdictRefresh, wantAT: "at-a0", wantRT: "rt-a0",
		},
		"same access token in Auth0: nothing newer": {
			held: valid("at-1", "", 5*time.Minute), read: valid("at-1", "", 5*time.Minute), wantVerdict: VerdictNothingNewer, wantAT: "at-1",
		},
		"expired everywhere and no refresh token: nothing newer, still expired": {
			held: valid("at-1", "", -time.Minute), read: valid("at-1", "", -time.Minute), wantVerdict: VerdictNothingNewer, wantAT: "at-1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, verdict := Adopt(now, tc.held, tc.read)
			if verdict != tc.wantVerdict || got.AccessToken != tc.wantAT || got.RefreshToken != tc.wantRT {
				t.Fatalf("adopt() = (%v, at=%q rt=%q), want (%v, at=%q rt=%q)", verdict, got.AccessToken, got.RefreshToken, tc.wantVerdict, tc.wantAT, tc.wantRT)
			}
		})
	}
}

func TestPolicyOfTakesTheEarliestRenewalAndMostFrequentReRead(t *testing.T) {
	a, b, c := testBinding(), testBinding(), testBinding()
	a.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: 10 * time.Minute}
	b.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: 20 * time.Minute}
	a.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: 2 * time.Hour}
	b.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: 30 * time.Minute}
	c.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: time.Nanosecond} // admitted by an old API server
	p := PolicyOf([]authv1alpha1.IdPTokenBinding{*a, *b})
	if p.RenewBefore != 20*time.Minute || p.Fallback != 30*time.Minute {
		t.Errorf("policyOf = %+v, want renewBefore 20m, fallback 30m", p)
	}
	if p := PolicyOf([]authv1alpha1.IdPTokenBinding{*c}); p.Fallback != time.Minute {
		t.Errorf("a fallbackInterval below 1m must be raised to 1m, got %v", p.Fallback)
	}
}
func TestTokenVaultAsksAgainJustAfterExpiryThenEveryFewSeconds(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	f := testFacts(testBinding(), nil)
	f.Now = now
	held := func(exp time.Time) *Token {
		return &Token{AccessToken: "t", Expiry: expiry.Result{ExpiresAt: exp, Source: authv1alpha1.ExpirySourceAuth0}}
	}
	tests := map[string]struct {
		expires    time.Time
		wantAt     time.Time
		wantReason string
	}{
		"valid for a while: just after it expires":     {expires: now.Add(10 * time.Minute), wantAt: now.Add(10*time.Minute + time.Second)},
		"about to expire: not sooner than the retry":   {expires: now.Add(500 * time.Millisecond), wantAt: now.Add(VaultRetry)},
		"expired, not renewed yet: retry, Ready False": {expires: now.Add(-time.Second), wantAt: now.Add(VaultRetry), wantReason: authv1alpha1.ReasonTokenExpired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			next, fail := vaultNothingNewer(f, held(tc.expires))
			if !next.RenewAt.Equal(tc.wantAt) {
				t.Errorf("RenewAt = %v, want %v", next.RenewAt, tc.wantAt)
			}
			switch {
			case tc.wantReason == "" && fail != nil:
				t.Errorf("failure %s", fail.Reason)
			case tc.wantReason != "" && (fail == nil || fail.Reason != tc.wantReason || fail.NotBefore != VaultRetry):
				t.Errorf("failure = %+v, want %s rechecked after %v", fail, tc.wantReason, VaultRetry)
			}
		})
	}
}

func TestEveryTriggerNamesItself(t *testing.T) {
	b := testBinding()
	cases := map[Trigger]func(f *Facts){
		TriggerNoToken:        func(f *Facts) { f.Held = nil },
		TriggerLineageChanged: func(f *Facts) { f.Lineage = "another" },
		TriggerForceRefresh: func(f *Facts) {
			f.Binding.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "1"}
		},
		TriggerRenewalDue:    func(f *Facts) { f.Now = f.Held.RenewAt },
		TriggerSpecChanged:   func(f *Facts) { f.Binding.Generation = 2 },
		TriggerSecretMissing: func(f *Facts) { f.Target = nil },
		TriggerSecretDiffers: func(f *Facts) { f.Target.Data["access_token"] = []byte("edited") },
		TriggerNone:          func(*Facts) {},
	}
	for want, edit := range cases {
		f := testFacts(b.DeepCopy(), testHeld(b))
		f.Binding = b.DeepCopy()
		edit(f)
		if d := Decide(f); d.Trigger != want || d.Why == "" {
			t.Errorf("%s: Decide = %+v", want, d)
		}
	}
}
