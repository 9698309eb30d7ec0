package conformance

import (
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/internal/auth0"
)

// auth0TokenRows: the client-credentials grant at /oauth/token that gets the Management API
// token (DESIGN.md, "Auth0Tenant": cached and shared; "Real IdPs and real Auth0 answers": a
// spent quota or the global limit holds every M2M token request until the reset).
var auth0TokenRows = []auth0Row{
	{
		// One token serves every call until shortly before it expires.
		fixture: "auth0-oauth-token-m2m-success", call: authenticate,
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			if o.err != nil || o.secondErr != nil {
				t.Fatalf("Authenticate: %v, then %v", o.err, o.secondErr)
			}
			if o.tokenRequests != 1 {
				t.Errorf("%d token requests for two Authenticate calls, want 1", o.tokenRequests)
			}
		},
	},
	{
		// The client is refused: AuthenticationFailed, not a retry loop.
		fixture: "auth0-oauth-token-401-access-denied", call: authenticate,
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantAPIError(t, o.err, auth0.Unauthorized, "access_denied", false)
		},
	},
	{
		// A spent M2M quota: 429 without Retry-After in the source. Whatever the hold, the
		// next token request does not leave before it.
		fixture: "auth0-oauth-token-429-client-quota", call: authenticate,
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantHeld(t, o, 0)
		},
	},
	{
		// The Authentication API's rate limit: held until X-RateLimit-Reset.
		fixture: "auth0-oauth-token-429-rate-limit", call: authenticate,
		now: beforeReset(30 * time.Second),
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantHeld(t, o, 30*time.Second)
		},
	},
	{
		// Auth0's global limit answers /oauth/token with 500 and X-RateLimit-*: held until the
		// reset too, not retried as a plain server error.
		fixture: "auth0-oauth-token-500-global-limit", call: authenticate,
		now: beforeReset(20 * time.Second),
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantHeld(t, o, 20*time.Second)
		},
	},
}

// beforeReset sets the fake clock d before the fixture's X-RateLimit-Reset.
func beforeReset(d time.Duration) func(testing.TB, *fixture) time.Time {
	return func(t testing.TB, f *fixture) time.Time {
		return f.epochHeader(t, "X-RateLimit-Reset").Add(-d)
	}
}

// wantHeld checks that a refused M2M token request is transient, says when to try again
// (wait, when the answer said), and that the second Authenticate sent nothing.
func wantHeld(t *testing.T, o auth0Outcome, wait time.Duration) {
	t.Helper()
	if o.err == nil {
		t.Fatal("Authenticate succeeded")
	}
	if !auth0.IsTransient(o.err) {
		t.Errorf("not transient: %v", o.err)
	}
	if e := apiError(t, o.err); wait > 0 && e.RetryAfter != wait {
		t.Errorf("RetryAfter = %s, want %s (X-RateLimit-Reset): %v", e.RetryAfter, wait, o.err)
	}
	if o.secondErr == nil {
		t.Error("the second Authenticate succeeded")
	}
	if o.tokenRequests != 1 {
		t.Errorf("%d token requests, want 1: the second must be held", o.tokenRequests)
	}
}
