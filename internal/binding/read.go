package binding

import (
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// Reschedule recomputes the renewal time of the held token when the binding's spec changed (a
// new renewBefore or fallbackInterval applies to the token already held); else it is Held.
func Reschedule(f *Facts) *Token {
	h := f.Held
	if h == nil || !specChanged(f) {
		return h
	}
	next := *h
	// The 30 s spacing counts from the last refresh at the IdP, as everywhere else.
	next.RenewAt = f.RenewAt(&next, h.LastRefresh)
	return &next
}

// Renewal is what an IdP answered to a refresh.
type Renewal struct {
	AccessToken  string
	RefreshToken string // empty: the IdP keeps the one sent
	ExpiresIn    time.Duration
	TokenType    string
	Scope        string // empty: the IdP granted the scope it granted before (RFC 6749 §5.1)
}

// Renewed is the token after a successful refresh of held.
func Renewed(f *Facts, held *Token, r Renewal) *Token {
	next := *held
	next.AccessToken = r.AccessToken
	next.AccessTokenSecret = ""
	next.TokenType = r.TokenType
	if r.Scope != "" {
		next.Scope = r.Scope
	}
	if r.RefreshToken != "" {
		next.RefreshToken = r.RefreshToken
	}
	jwtExp, jwtIat, _ := expiry.JWTExpiry(r.AccessToken)
	next.Expiry = expiry.Determine(expiry.Evidence{IdPExpiresIn: r.ExpiresIn, ObtainedAt: f.Now, JWTExpiry: jwtExp, JWTIssuedAt: jwtIat})
	next.ObtainedAt, next.LastRefresh = f.Now, f.Now
	next.RenewAt = f.RenewAt(&next, f.Now)
	return &next
}

// Refused is held once the IdP answered invalid_grant: its refresh token is never sent again.
func Refused(held *Token) *Token {
	dead := *held
	dead.RefreshTokenDead = true
	return &dead
}

// ReadNotBefore is how recent a read of Auth0 must be to have anything newer than held, or than
// what an Auth0 event said had changed.
func ReadNotBefore(f *Facts, held *Token) time.Time {
	var t time.Time
	switch {
	case held != nil && held.RefreshTokenDead:
		t = f.Now
	case held != nil && held.Lineage == f.Lineage:
		t = held.ObtainedAt
	}
	if f.Notice.At.After(t) {
		t = f.Notice.At
	}
	return t
}

// Verdict says what Adopt found.
type Verdict int

const (
	VerdictNew          Verdict = iota // Auth0 has a token newer than the one held
	VerdictRefresh                     // Auth0's access token has expired but a refresh token can renew it
	VerdictNothingNewer                // Auth0 has nothing newer than the token held
)

// Adopt merges the token read from Auth0 with the token held.
func Adopt(now time.Time, held, fresh *Token) (*Token, Verdict) {
	next := *fresh
	sameSource := held != nil && held.Lineage == fresh.Lineage
	// An equal hash proves the same lineage even across a spec edit that names the same identity
	// differently: a rotated refresh token must survive it.
	if held != nil && held.Auth0RefreshHash != "" && held.Auth0RefreshHash == fresh.Auth0RefreshHash {
		// Auth0's refresh token is the one this lineage started from: the held one is newer.
		next.RefreshToken, next.RefreshTokenDead, next.LastRefresh = held.RefreshToken, held.RefreshTokenDead, held.LastRefresh
	}
	if held != nil && held.Endpoint.TokenURL != "" && next.Endpoint.TokenURL == "" {
		next.Endpoint = held.Endpoint
	}
	keepHeld := func() *Token {
		keep := *held
		keep.RefreshToken, keep.RefreshTokenDead, keep.Auth0RefreshHash = next.RefreshToken, next.RefreshTokenDead, next.Auth0RefreshHash
		keep.RefreshUnsupported = next.RefreshUnsupported
		return &keep
	}
	if sameSource && held.ValidAt(now) && (held.AccessToken == fresh.AccessToken || laterExpiry(held, fresh)) {
		return keepHeld(), VerdictNothingNewer
	}
	if !next.ValidAt(now) {
		if next.CanRefresh() {
			return &next, VerdictRefresh
		}
		if sameSource {
			return keepHeld(), VerdictNothingNewer
		}
		return &next, VerdictNothingNewer
	}
	return &next, VerdictNew
}

func laterExpiry(a, b *Token) bool {
	return !a.Expiry.ExpiresAt.IsZero() && !b.Expiry.ExpiresAt.IsZero() && a.Expiry.ExpiresAt.After(b.Expiry.ExpiresAt)
}

// minRecheck spaces re-reads of Auth0 that found nothing newer.
const minRecheck = 5 * time.Second

// VaultRetry spaces the exchanges that ask Token Vault for a token it has not renewed yet:
// Auth0 renews a vaulted token only once it has expired.
const VaultRetry = 2 * time.Second

// AfterRead is the token after a read of Auth0 found read, and the failure to report, if any.
// VerdictRefresh says that Auth0's access token has expired and its refresh token must renew it.
func AfterRead(f *Facts, held, read *Token) (next *Token, verdict Verdict, fail *Failure) {
	next, verdict = Adopt(f.Now, held, read)
	// Whatever it found, the read covers every Auth0 event received before the pass began. It is
	// recorded only when an event asked for it, so that other reads leave the state as it was:
	// a state write starts every binding's pass, and a read that changed the state at each pass
	// would loop (a TokenExpired binding reads at every pass).
	next.Auth0ReadAt = f.Now
	if held != nil && !f.Notice.At.After(held.Auth0ReadAt) {
		next.Auth0ReadAt = held.Auth0ReadAt
	}
	b := f.Binding
	switch verdict {
	case VerdictRefresh:
		return next, verdict, nil
	case VerdictNothingNewer:
		if UsesTokenVault(b) {
			next, fail = vaultNothingNewer(f, next)
			return next, verdict, fail
		}
		if !next.ValidAt(f.Now) {
			return next, verdict, Terminal(authv1alpha1.ReasonTokenExpired, FallbackInterval(b),
				"The token expired and neither the identity provider nor Auth0 has a fresh one; the user must log in again through connection %s", next.Identity.Connection)
		}
		// Nothing newer in Auth0 yet: look again halfway to expiry, or at the renewal already
		// planned if that comes first (a read an Auth0 event asked for never delays a renewal).
		at := halfwayToExpiry(f.Now, next, FallbackInterval(b))
		if held != nil && held.Lineage == next.Lineage && held.RenewAt.After(f.Now) && held.RenewAt.Before(at) {
			at = held.RenewAt
		}
		next.RenewAt = at
		if next.RefreshTokenDead {
			// The Secret keeps a token that will not be renewed: say so now, not at expiry.
			return next, verdict, Terminal(authv1alpha1.ReasonRefreshFailed, next.RenewAt.Sub(f.Now),
				"The identity provider rejected the refresh token (invalid_grant) and Auth0 has no newer one; the token in Secret %s expires %s and is not renewed unless the user logs in again through connection %s",
				b.Spec.Secret.Name, next.ExpiryText(), next.Identity.Connection)
		}
		return next, verdict, nil
	}
	next.ObtainedAt = f.Now
	// Reading Auth0 renews nothing: the 30 s spacing counts from the last refresh at the IdP, so
	// a token that was already old when read is renewed on time.
	next.RenewAt = f.RenewAt(next, next.LastRefresh)
	if next.NeedsFirstRefresh() {
		// An Estimated expiry is a guess: the IdP's own expires_in replaces it at once.
		return next, VerdictRefresh, nil
	}
	return next, verdict, nil
}

// halfwayToExpiry is when to look again for a token Auth0 does not have yet: halfway to the
// expiry of the one held, so that reads thin out rather than loop, and still come before it expires.
func halfwayToExpiry(now time.Time, t *Token, fallback time.Duration) time.Time {
	wait := fallback
	if exp := t.Expiry.ExpiresAt; !exp.IsZero() {
		wait = exp.Sub(now) / 2
	}
	return now.Add(max(wait, minRecheck)).Truncate(time.Second)
}

// vaultNothingNewer schedules the next exchange when Token Vault returned the token already
// held: just after it expires, when Auth0 renews it; once expired, every VaultRetry.
func vaultNothingNewer(f *Facts, held *Token) (*Token, *Failure) {
	next := *held
	exp := held.Expiry.ExpiresAt
	if held.ValidAt(f.Now) {
		at := f.Now.Add(VaultRetry)
		if !exp.IsZero() && exp.Add(time.Second).After(at) {
			at = exp.Add(time.Second)
		}
		next.RenewAt = at.Truncate(time.Second)
		return &next, nil
	}
	next.RenewAt = f.Now.Add(VaultRetry).Truncate(time.Second)
	return &next, Terminal(authv1alpha1.ReasonTokenExpired, VaultRetry,
		"The token expired at %s and Auth0 Token Vault has not renewed it yet (it renews a token only once it has expired); asking again every %s",
		exp.Format(time.RFC3339), VaultRetry)
}
