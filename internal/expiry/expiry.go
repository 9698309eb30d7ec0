// Package expiry decides when a token expires and when it should be renewed. Everything here
// is a pure function of its inputs so that the rules of the design can be table-tested.
package expiry

import (
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// Evidence is everything known about a token's lifetime, gathered from the IdP, the token
// itself and Auth0. Zero values mean "not known".
type Evidence struct {
	// IdPExpiresIn is expires_in from a refresh response at the identity provider.
	IdPExpiresIn time.Duration
	// ObtainedAt is when the token was received from the identity provider or Auth0.
	ObtainedAt time.Time
	// JWTExpiry and JWTIssuedAt are the exp and iat claims when the access token is a JWT.
	JWTExpiry, JWTIssuedAt time.Time
	// Auth0Expiry is an absolute expiry given by Auth0, such as admin_access_token_expiresin.
	Auth0Expiry time.Time
	// LastLogin and IdentityExpiresIn estimate the expiry of a token Auth0 got at the user's login.
	LastLogin         time.Time
	IdentityExpiresIn time.Duration
}

// Result is a token's expiry and the start of its lifetime, both in whole seconds.
type Result struct {
	ExpiresAt time.Time // zero when Source is Unknown
	IssuedAt  time.Time // start of the lifetime, used for "one third of the lifetime remains"
	Source    authv1alpha1.ExpirySource
}

// Lifetime is the token's whole lifetime, or zero when unknown.
func (r Result) Lifetime() time.Duration {
	if r.ExpiresAt.IsZero() || r.IssuedAt.IsZero() || !r.ExpiresAt.After(r.IssuedAt) {
		return 0
	}
	return r.ExpiresAt.Sub(r.IssuedAt)
}

// MaxAhead is the furthest ahead an expiry is believed: a later one (or one that overflows) is
// treated as Unknown, so that a bogus exp or expires_in cannot postpone renewal for years.
const MaxAhead = 366 * 24 * time.Hour

// Determine applies the design's order: the IdP's expires_in, the JWT exp claim, an absolute
// time from Auth0, last_login + expires_in, else Unknown. An expiry more than MaxAhead after
// the token was obtained is Unknown.
func Determine(e Evidence) Result {
	r := determine(e)
	if !r.ExpiresAt.IsZero() {
		ref := e.ObtainedAt
		if ref.IsZero() {
			ref = r.IssuedAt
		}
		if r.ExpiresAt.Sub(ref) > MaxAhead || r.ExpiresAt.Year() > 9999 || r.ExpiresAt.Year() < 1970 {
			return Result{IssuedAt: e.ObtainedAt.Truncate(time.Second).UTC(), Source: authv1alpha1.ExpirySourceUnknown}
		}
	}
	return r
}

func determine(e Evidence) Result {
	switch {
	case e.IdPExpiresIn > 0 && e.IdPExpiresIn <= MaxAhead && !e.ObtainedAt.IsZero():
		return whole(e.ObtainedAt.Add(e.IdPExpiresIn), e.ObtainedAt, authv1alpha1.ExpirySourceIdPResponse)
	case !e.JWTExpiry.IsZero():
		issued := e.JWTIssuedAt
		if issued.IsZero() || !issued.Before(e.JWTExpiry) {
			issued = e.ObtainedAt
		}
		return whole(e.JWTExpiry, issued, authv1alpha1.ExpirySourceJWT)
	case !e.Auth0Expiry.IsZero():
		return whole(e.Auth0Expiry, e.ObtainedAt, authv1alpha1.ExpirySourceAuth0)
	case !e.LastLogin.IsZero() && e.IdentityExpiresIn > 0 && e.IdentityExpiresIn <= MaxAhead:
		return whole(e.LastLogin.Add(e.IdentityExpiresIn), e.LastLogin, authv1alpha1.ExpirySourceEstimated)
	default:
		return Result{IssuedAt: e.ObtainedAt.Truncate(time.Second), Source: authv1alpha1.ExpirySourceUnknown}
	}
}

func whole(expires, issued time.Time, src authv1alpha1.ExpirySource) Result {
	// Status serialises whole seconds; truncate here so stored and computed times agree.
	return Result{ExpiresAt: expires.Truncate(time.Second).UTC(), IssuedAt: issued.Truncate(time.Second).UTC(), Source: src}
}

// MinRenewalSpacing is the shortest time between two renewals of one token.
const MinRenewalSpacing = 30 * time.Second

// Schedule is the input of RenewAt.
type Schedule struct {
	Token Result
	// RenewBefore is the binding's spec.refresh.renewBefore; zero means one third of the lifetime.
	RenewBefore time.Duration
	// FallbackInterval is how long to wait before re-reading a token whose expiry is unknown.
	FallbackInterval time.Duration
	// LastRenewal is when the token was last obtained; renewals are at least MinRenewalSpacing apart.
	LastRenewal time.Time
	// Jitter returns a value in [0, 1); the renewal moves earlier by up to 10% of the lifetime.
	Jitter func() float64
	// Now anchors an unknown expiry's re-read when neither LastRenewal nor the token's issue
	// time is known.
	Now time.Time
}

// MinFallbackInterval is the shortest re-read interval of a token whose expiry is unknown.
const MinFallbackInterval = time.Minute

// RenewAt returns when the token should be renewed, truncated to whole seconds: the expiry
// minus renewBefore (one third of the lifetime by default, and when renewBefore does not fit in
// the lifetime), minus up to 10% of the lifetime of jitter, and never sooner than
// MinRenewalSpacing after the last renewal.
func RenewAt(s Schedule) time.Time {
	var at time.Time
	if s.Token.ExpiresAt.IsZero() {
		base := s.LastRenewal
		if base.IsZero() {
			base = s.Token.IssuedAt
		}
		if base.IsZero() {
			base = s.Now
		}
		at = base.Add(max(s.FallbackInterval, MinFallbackInterval))
	} else {
		lifetime := s.Token.Lifetime()
		before := s.RenewBefore
		if before <= 0 || (lifetime > 0 && before >= lifetime) {
			before = lifetime / 3
		}
		at = s.Token.ExpiresAt.Add(-before)
		if s.Jitter != nil && lifetime > 0 {
			j := s.Jitter()
			if j < 0 || j >= 1 {
				j = 0
			}
			at = at.Add(-time.Duration(j * 0.1 * float64(lifetime)))
		}
	}
	if floor := s.LastRenewal.Add(MinRenewalSpacing); !s.LastRenewal.IsZero() && at.Before(floor) {
		at = floor
	}
	return at.Truncate(time.Second).UTC()
}
