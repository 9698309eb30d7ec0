package controller

import (
	"math"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// FuzzRequeueIsBounded drives the scheduling arithmetic (expiry evidence, renewBefore,
// fallbackInterval, jitter, clock, backoff) with arbitrary values and asserts that every requeue
// lies in [1 s, 24 h], and that only a terminal failure waits for a change instead.
func FuzzRequeueIsBounded(f *testing.F) {
	f.Add(int64(3600), int64(0), int64(600), int64(3600), 0.5, int32(0), false, int64(0), int64(1_700_000_000))
	f.Add(int64(math.MaxInt64), int64(-1), int64(1), int64(1), 0.99, int32(40), false, int64(0), int64(0))
	f.Add(int64(-5), int64(math.MinInt64), int64(math.MaxInt64), int64(-1), -3.0, int32(-2), true, int64(0), int64(-62135596800))
	f.Add(int64(10), int64(20), int64(0), int64(0), math.NaN(), int32(1), true, int64(5), int64(253402300799))
	f.Fuzz(func(t *testing.T, expiresIn, jwtExpOffset, renewBefore, fallback int64, jitter float64, failed int32, term bool, recheck, nowUnix int64) {
		now := time.Unix(int64(uint64(nowUnix)%(1<<34)), 0).UTC() // any clock from 1970 to 2514
		b := testBinding()
		b.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: time.Duration(renewBefore)}
		b.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: time.Duration(fallback)}
		b.Status.FailedAttempts = failed
		in := &bindingInput{binding: b, now: now, policy: policyOf([]authv1alpha1.IdPTokenBinding{*b})}
		ev := expiry.Evidence{ObtainedAt: now, IdPExpiresIn: time.Duration(expiresIn) * time.Second}
		if jwtExpOffset != 0 {
			ev.JWTExpiry = now.Add(time.Duration(jwtExpOffset) * time.Second)
		}
		h := &heldToken{AccessToken: "t", Expiry: expiry.Determine(ev), ObtainedAt: now}
		r := &BindingReconciler{Jitter: func() float64 { return jitter }}
		h.RenewAt = r.renewAt(in, h, now)
		if h.RenewAt.Year() < 1970 {
			t.Fatalf("renewal scheduled at %v", h.RenewAt)
		}
		for _, out := range []outcome{
			{held: h},
			{held: h, failure: &failure{reason: "X", terminal: term, recheck: time.Duration(recheck), retryAfter: time.Duration(recheck)}},
			{failure: &failure{reason: "X", terminal: term, recheck: time.Duration(recheck)}},
		} {
			res := out.result(in)
			if res.RequeueAfter == 0 {
				if out.failure == nil || !out.failure.terminal {
					t.Fatalf("no requeue for a non-terminal outcome %+v (held %+v)", out.failure, h.Expiry)
				}
				continue
			}
			if res.RequeueAfter < minRequeue || res.RequeueAfter > maxRequeue {
				t.Fatalf("requeue after %v, outside [%v, %v] (expiry %+v, renewAt %v, now %v)", res.RequeueAfter, minRequeue, maxRequeue, h.Expiry, h.RenewAt, now)
			}
		}
	})
}

func TestExpiryMoreThanAYearAheadIsUnknown(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for name, ev := range map[string]expiry.Evidence{
		"expires_in of ten years": {ObtainedAt: now, IdPExpiresIn: 10 * 365 * 24 * time.Hour},
		"a JWT exp in year 9999":  {ObtainedAt: now, JWTExpiry: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)},
		"an Auth0 time far ahead": {ObtainedAt: now, Auth0Expiry: now.Add(400 * 24 * time.Hour)},
		"an overflowing estimate": {ObtainedAt: now, LastLogin: now, IdentityExpiresIn: time.Duration(math.MaxInt64)},
	} {
		if got := expiry.Determine(ev); got.Source != authv1alpha1.ExpirySourceUnknown || !got.ExpiresAt.IsZero() {
			t.Errorf("%s: Determine = %+v, want Unknown", name, got)
		}
	}
	if got := expiry.Determine(expiry.Evidence{ObtainedAt: now, IdPExpiresIn: time.Hour}); got.Source != authv1alpha1.ExpirySourceIdPResponse {
		t.Errorf("an hour-long token: %+v", got)
	}
}

func TestUnknownExpiryIsReReadAfterTheFallbackNotAtYearOne(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	at := expiry.RenewAt(expiry.Schedule{Token: expiry.Result{Source: authv1alpha1.ExpirySourceUnknown}, FallbackInterval: time.Hour, Now: now})
	if !at.Equal(now.Add(time.Hour)) {
		t.Errorf("RenewAt = %v, want an hour after now", at)
	}
	at = expiry.RenewAt(expiry.Schedule{Token: expiry.Result{Source: authv1alpha1.ExpirySourceUnknown}, FallbackInterval: time.Nanosecond, Now: now})
	if !at.Equal(now.Add(expiry.MinFallbackInterval)) {
		t.Errorf("a nanosecond fallback must be raised to %v: RenewAt = %v", expiry.MinFallbackInterval, at)
	}
}

func TestPrecheckRefusesOverridesBeforeAnyRequest(t *testing.T) {
	tenant := &authv1alpha1.Auth0Tenant{}
	r := &BindingReconciler{}
	base := func() *bindingInput {
		b := testBinding()
		return &bindingInput{binding: b, tenant: tenant, tenantKey: tenantKeyOf(b)}
	}
	tests := map[string]struct {
		edit func(in *bindingInput)
		want string
	}{
		"no override": {edit: func(*bindingInput) {}},
		"override on a Denied tenant": {edit: func(in *bindingInput) {
			in.binding.Spec.Refresh.TokenURL = "https://evil.example/token"
			in.binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"client override on Denied": {edit: func(in *bindingInput) {
			in.binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"tokenURL without a client": {edit: func(in *bindingInput) {
			in.tenant = allowing()
			in.binding.Spec.Refresh.TokenURL = "https://evil.example/token"
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"allowed with a labelled client": {edit: func(in *bindingInput) {
			in.tenant = allowing()
			in.binding.Spec.Refresh.TokenURL = "https://idp.example/token"
			in.binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
		}},
		"an unlabelled client Secret": {edit: func(in *bindingInput) {
			in.tenant = allowing()
			in.binding.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "c"}
			in.overrideRefused = terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0, "not labelled")
		}, want: authv1alpha1.ReasonInvalidRefreshConfig},
		"refused by a cluster policy": {edit: func(in *bindingInput) { in.denied = "no" }, want: authv1alpha1.ReasonNotPermitted},
		"no tenant":                   {edit: func(in *bindingInput) { in.tenant = nil }, want: authv1alpha1.ReasonTenantNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := base()
			tc.edit(in)
			f := r.precheck(in)
			switch {
			case tc.want == "" && f != nil:
				t.Fatalf("precheck = %s: %s, want nothing", f.reason, f.message)
			case tc.want != "" && (f == nil || f.reason != tc.want):
				t.Fatalf("precheck = %+v, want %s", f, tc.want)
			}
		})
	}
}

func allowing() *authv1alpha1.Auth0Tenant {
	return &authv1alpha1.Auth0Tenant{Spec: authv1alpha1.Auth0TenantSpec{RefreshOverride: authv1alpha1.RefreshOverrideAllowed}}
}

func TestTokenVaultAsksAgainJustAfterExpiryThenEveryFewSeconds(t *testing.T) {
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	r := &BindingReconciler{}
	in := &bindingInput{binding: testBinding(), now: now}
	held := func(exp time.Time) *heldToken {
		return &heldToken{AccessToken: "t", Expiry: expiry.Result{ExpiresAt: exp, Source: authv1alpha1.ExpirySourceAuth0}}
	}
	tests := map[string]struct {
		expires    time.Time
		wantAt     time.Time
		wantReason string
	}{
		"valid for a while: just after it expires":     {expires: now.Add(10 * time.Minute), wantAt: now.Add(10*time.Minute + time.Second)},
		"about to expire: not sooner than the retry":   {expires: now.Add(500 * time.Millisecond), wantAt: now.Add(vaultRetry)},
		"expired, not renewed yet: retry, Ready False": {expires: now.Add(-time.Second), wantAt: now.Add(vaultRetry), wantReason: authv1alpha1.ReasonTokenExpired},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			next, f := r.vaultNothingNewer(in, held(tc.expires))
			if !next.RenewAt.Equal(tc.wantAt) {
				t.Errorf("RenewAt = %v, want %v", next.RenewAt, tc.wantAt)
			}
			switch {
			case tc.wantReason == "" && f != nil:
				t.Errorf("failure %s", f.reason)
			case tc.wantReason != "" && (f == nil || f.reason != tc.wantReason || f.recheck != vaultRetry):
				t.Errorf("failure = %+v, want %s rechecked after %v", f, tc.wantReason, vaultRetry)
			}
		})
	}
}
