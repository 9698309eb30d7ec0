package expiry

import (
	"testing"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

var t0 = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func TestDetermine(t *testing.T) {
	tests := map[string]struct {
		in         Evidence
		wantSource authv1alpha1.ExpirySource
		wantExpiry time.Time
		wantIssued time.Time
	}{
		"IdP expires_in wins over everything": {
			in: Evidence{IdPExpiresIn: time.Hour, ObtainedAt: t0, JWTExpiry: t0.Add(2 * time.Hour),
				Auth0Expiry: t0.Add(3 * time.Hour), LastLogin: t0, IdentityExpiresIn: time.Minute},
			wantSource: authv1alpha1.ExpirySourceIdPResponse, wantExpiry: t0.Add(time.Hour), wantIssued: t0,
		},
		"JWT exp before Auth0's time": {
			in:         Evidence{ObtainedAt: t0, JWTExpiry: t0.Add(2 * time.Hour), JWTIssuedAt: t0.Add(-time.Hour), Auth0Expiry: t0.Add(3 * time.Hour)},
			wantSource: authv1alpha1.ExpirySourceJWT, wantExpiry: t0.Add(2 * time.Hour), wantIssued: t0.Add(-time.Hour),
		},
		"JWT without iat starts its lifetime when obtained": {
			in:         Evidence{ObtainedAt: t0, JWTExpiry: t0.Add(time.Hour)},
			wantSource: authv1alpha1.ExpirySourceJWT, wantExpiry: t0.Add(time.Hour), wantIssued: t0,
		},
		"Auth0 absolute time": {
			in:         Evidence{ObtainedAt: t0, Auth0Expiry: t0.Add(3 * time.Hour), LastLogin: t0, IdentityExpiresIn: time.Minute},
			wantSource: authv1alpha1.ExpirySourceAuth0, wantExpiry: t0.Add(3 * time.Hour), wantIssued: t0,
		},
		"estimated from last_login": {
			in:         Evidence{ObtainedAt: t0, LastLogin: t0.Add(-10 * time.Minute), IdentityExpiresIn: time.Hour},
			wantSource: authv1alpha1.ExpirySourceEstimated, wantExpiry: t0.Add(50 * time.Minute), wantIssued: t0.Add(-10 * time.Minute),
		},
		"expires_in without last_login is unknown": {
			in:         Evidence{ObtainedAt: t0, IdentityExpiresIn: time.Hour},
			wantSource: authv1alpha1.ExpirySourceUnknown, wantIssued: t0,
		},
		"nothing known": {
			in:         Evidence{ObtainedAt: t0},
			wantSource: authv1alpha1.ExpirySourceUnknown, wantIssued: t0,
		},
		"sub-second times are truncated": {
			in:         Evidence{IdPExpiresIn: 3599*time.Second + 900*time.Millisecond, ObtainedAt: t0.Add(300 * time.Millisecond)},
			wantSource: authv1alpha1.ExpirySourceIdPResponse, wantExpiry: t0.Add(3600 * time.Second), wantIssued: t0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := Determine(tc.in)
			if got.Source != tc.wantSource || !got.ExpiresAt.Equal(tc.wantExpiry) || !got.IssuedAt.Equal(tc.wantIssued) {
				t.Fatalf("Determine() = %v exp=%v issued=%v; want %v exp=%v issued=%v",
					got.Source, got.ExpiresAt, got.IssuedAt, tc.wantSource, tc.wantExpiry, tc.wantIssued)
			}
		})
	}
}

func TestRenewAt(t *testing.T) {
	hour := Result{ExpiresAt: t0.Add(time.Hour), IssuedAt: t0, Source: authv1alpha1.ExpirySourceIdPResponse}
	tests := map[string]struct {
		in   Schedule
		want time.Time
	}{
		"default: one third of the lifetime remains": {
			in: Schedule{Token: hour}, want: t0.Add(40 * time.Minute),
		},
		"renewBefore": {
			in: Schedule{Token: hour, RenewBefore: 10 * time.Minute}, want: t0.Add(50 * time.Minute),
		},
		"renewBefore longer than the lifetime falls back to a third": {
			in: Schedule{Token: hour, RenewBefore: 2 * time.Hour}, want: t0.Add(40 * time.Minute),
		},
		"maximum jitter moves it 10% of the lifetime earlier": {
			in: Schedule{Token: hour, Jitter: func() float64 { return 0.999999 }}, want: t0.Add(34 * time.Minute),
		},
		"half jitter": {
			in: Schedule{Token: hour, Jitter: func() float64 { return 0.5 }}, want: t0.Add(37 * time.Minute),
		},
		"out-of-range jitter is ignored": {
			in: Schedule{Token: hour, Jitter: func() float64 { return 7 }}, want: t0.Add(40 * time.Minute),
		},
		"never sooner than 30s after the last renewal": {
			in:   Schedule{Token: Result{ExpiresAt: t0.Add(20 * time.Second), IssuedAt: t0}, LastRenewal: t0},
			want: t0.Add(30 * time.Second),
		},
		"unknown expiry: fallback interval after the last read": {
			in:   Schedule{Token: Result{Source: authv1alpha1.ExpirySourceUnknown}, FallbackInterval: time.Hour, LastRenewal: t0},
			want: t0.Add(time.Hour),
		},
		"result is whole seconds": {
			in:   Schedule{Token: Result{ExpiresAt: t0.Add(100 * time.Second), IssuedAt: t0}, Jitter: func() float64 { return 0.123 }},
			want: t0.Add(65 * time.Second), // 100 - 33.33 - 1.23 = 65.44 → 65
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := RenewAt(tc.in); !got.Equal(tc.want) {
				t.Fatalf("RenewAt() = %v, want %v", got, tc.want)
			}
		})
	}
}
