package binding

import (
	"math"
	"testing"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

func TestBackoff(t *testing.T) {
	for n, want := range map[int32]time.Duration{0: 5 * time.Second, 1: 5 * time.Second, 2: 10 * time.Second, 7: 5 * time.Minute, 100: 5 * time.Minute} {
		if got := Backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	h.AccessTokenSecret, h.RefreshTokenDead, h.RefreshUnsupported = "ats", true, `strategy "samlp"`
	h.ObtainedAt, h.LastRefresh = now, now
	got := ParseState(h.StateData())
	if *got != *h {
		t.Fatalf("round trip changed the held token:\n got %+v\nwant %+v", *got, *h)
	}
	if ParseState(map[string][]byte{}) != nil {
		t.Fatal("an empty state Secret must parse as nothing held")
	}
}

func TestDesiredTarget(t *testing.T) {
	b := testBinding()
	b.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "a", authv1alpha1.LabelBinding: "spoofed"}
	h := testHeld(b)
	h.AccessTokenSecret = "ats"
	d, _ := DesiredTarget(b, h)
	if d.Labels[authv1alpha1.LabelBinding] != "alice" || d.Labels["team"] != "a" {
		t.Errorf("labels = %v: the operator's labels must win over the spec's", d.Labels)
	}
	if string(d.Data["expires_at"]) != "2026-11-23T09:30:00Z" || d.Annotations[authv1alpha1.AnnotationExpiresAt] != "2026-11-23T09:30:00Z" {
		t.Errorf("expires_at = %q / %q", d.Data["expires_at"], d.Annotations[authv1alpha1.AnnotationExpiresAt])
	}
	if _, ok := d.Data["refresh_token"]; ok {
		t.Error("refresh_token written without includeRefreshToken")
	}
	if string(d.Data["access_token_secret"]) != "ats" || !d.Owned {
		t.Errorf("access_token_secret = %q, owned = %v", d.Data["access_token_secret"], d.Owned)
	}
	h.Expiry = expiry.Result{Source: authv1alpha1.ExpirySourceUnknown}
	if d, _ := DesiredTarget(b, h); d.Data["expires_at"] != nil || d.Annotations[authv1alpha1.AnnotationExpiresAt] != "" {
		t.Error("expires_at written for an unknown expiry")
	}
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
