package auth0

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

// Auth0 answers every client-credentials request, granted or refused with 429, with the state of
// the fine-grained M2M token quotas that apply to it
// (https://auth0.com/docs/fine-grained-m2m-token-quotas, "Auth0 quota headers"):
//
//	Auth0-Client-Quota-Limit: b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200
//	Auth0-Organization-Quota-Limit: b=per_hour;q=50;r=47;t=3540,b=per_day;q=250;r=247;t=43200
//
// a comma-separated list of buckets, each with its name (b), quota (q), remaining tokens (r) and
// seconds until it resets (t). A spent quota is a 429 with that header, X-RateLimit-* and a
// Retry-After in seconds until the quota resets. Auth0's global rate limit answers /oauth/token
// with a 500 ("Global limit has been reached") and X-RateLimit-*. Either way, asking again before
// the reset is refused too and counts against the tenant's Authentication API limit, so the
// client sends no token request until then.

// Why new M2M tokens are held, the values of QuotaState.Reason.
const (
	// QuotaReasonQuota: a fine-grained M2M token quota is spent (429 with a quota header).
	QuotaReasonQuota = "quota"
	// QuotaReasonRateLimit: /oauth/token answered 429 without a quota header.
	QuotaReasonRateLimit = "rate limit"
	// QuotaReasonGlobalRateLimit: Auth0's global rate limit (500 with X-RateLimit-*).
	QuotaReasonGlobalRateLimit = "global rate limit"
)

// maxTokenHold caps a hold of the token endpoint. A per_day bucket resets within a day; a longer
// Retry-After (a spent monthly quota, or a bogus header) is tried again once a day.
const maxTokenHold = 24 * time.Hour

// QuotaBucket is one bucket of an M2M token quota, as the latest /oauth/token answer gave it.
type QuotaBucket struct {
	// Entity is whose quota it is: "client" (Auth0-Client-Quota-Limit) or "organization"
	// (Auth0-Organization-Quota-Limit).
	Entity string
	// Name is Auth0's bucket name, "per_hour" or "per_day".
	Name string
	// Quota is the bucket's size (0 when the header left it out); Remaining the tokens left.
	Quota, Remaining int64
	// ResetAt is when the bucket resets (zero when the header left it out).
	ResetAt time.Time
}

// Label is the bucket's name in metrics: "<entity>/<name>", e.g. "client/per_hour".
func (b QuotaBucket) Label() string { return b.Entity + "/" + b.Name }

// QuotaState is what the client knows of its M2M token quota.
type QuotaState struct {
	// HeldUntil is when the client sends token requests again; zero when they are not held.
	// Management API calls go on with the cached token while it is valid.
	HeldUntil time.Time
	// Reason says why requests are held: QuotaReasonQuota, QuotaReasonRateLimit or
	// QuotaReasonGlobalRateLimit; empty when they are not.
	Reason string
	// Buckets are the quota buckets of the latest answer that named any; nil when none did.
	Buckets []QuotaBucket
}

// quotaGate is one client's M2M quota state: the buckets Auth0 reported and the hold of new token
// requests. It is safe for concurrent use.
type quotaGate struct {
	clk    clock.PassiveClock
	tenant string // metrics label

	mu        sync.Mutex
	heldUntil time.Time
	reason    string
	buckets   []QuotaBucket
}

// held returns until when, and why, new token requests are held; a zero time when they are not.
func (g *quotaGate) held(now time.Time) (time.Time, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !now.Before(g.heldUntil) {
		return time.Time{}, ""
	}
	return g.heldUntil, g.reason
}

// state returns a copy of the quota state at now.
func (g *quotaGate) state(now time.Time) QuotaState {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := QuotaState{Buckets: slices.Clone(g.buckets)}
	if now.Before(g.heldUntil) {
		s.HeldUntil, s.Reason = g.heldUntil, g.reason
	}
	return s
}

// observe folds in an answer of /oauth/token: status, headers and error_description. granted says
// a token came with it, which lifts any hold. A 2xx answer replaces the buckets (a quota that was
// removed is no longer reported); another answer replaces them only if it names some. It returns
// the hold the answer imposes, 0 for none.
func (g *quotaGate) observe(status int, h http.Header, desc string, granted bool, now time.Time) time.Duration {
	buckets, named := parseQuotaHeaders(h, now)
	hold, reason := tokenHold(status, h, desc, buckets, named, now)
	g.mu.Lock()
	defer g.mu.Unlock()
	if named || status/100 == 2 {
		g.setBuckets(buckets)
	}
	switch {
	case granted:
		g.heldUntil, g.reason = time.Time{}, ""
	case hold > 0 && now.Add(hold).After(g.heldUntil):
		g.heldUntil, g.reason = now.Add(hold), reason
	}
	return hold
}

// setBuckets replaces the buckets and their metric series. g.mu is held.
func (g *quotaGate) setBuckets(buckets []QuotaBucket) {
	for _, old := range g.buckets {
		if !slices.ContainsFunc(buckets, func(b QuotaBucket) bool { return b.Label() == old.Label() }) {
			metrics.DeleteAuth0M2MQuotaRemaining(g.tenant, old.Label())
		}
	}
	for _, b := range buckets {
		metrics.SetAuth0M2MQuotaRemaining(g.tenant, b.Label(), b.Remaining)
	}
	g.buckets = buckets
}

// tokenHold works out how long a refused token request holds the next ones, and why: a 429
// until Retry-After and the reset of every spent bucket, else X-RateLimit-Reset, else a second;
// a 500 that is the global rate limit until X-RateLimit-Reset, at least a second. Any other
// answer holds nothing, and the hold is at most maxTokenHold.
func tokenHold(status int, h http.Header, desc string, buckets []QuotaBucket, named bool, now time.Time) (time.Duration, string) {
	var hold time.Duration
	var reason string
	switch {
	case status == http.StatusTooManyRequests:
		reason = QuotaReasonRateLimit
		if named {
			reason = QuotaReasonQuota
		}
		known := false
		if d, ok := httpclient.RetryAfter(h, now, maxTokenHold); ok {
			hold, known = d, true
		}
		for _, b := range buckets {
			if b.Remaining == 0 && !b.ResetAt.IsZero() {
				hold, known = max(hold, b.ResetAt.Sub(now)), true
			}
		}
		if reset, ok := rateLimitReset(h); ok && !known {
			hold = reset.Sub(now)
		}
	case status == http.StatusInternalServerError && isGlobalRateLimit(h, desc):
		reason = QuotaReasonGlobalRateLimit
		if reset, ok := rateLimitReset(h); ok {
			hold = reset.Sub(now)
		}
	default:
		return 0, ""
	}
	return min(max(hold, defaultRetryAfter), maxTokenHold), reason
}

// isGlobalRateLimit tells Auth0's global rate limit from another server error: the rate-limit
// headers say the budget is spent, or the error says so.
func isGlobalRateLimit(h http.Header, desc string) bool {
	_, hasReset := rateLimitReset(h)
	spent := strings.TrimSpace(h.Get("X-Ratelimit-Remaining")) == "0"
	return spent && hasReset || strings.Contains(strings.ToLower(desc), "global limit")
}

// heldError is the answer to a token request that is not sent because of a hold.
func heldError(until time.Time, reason string, now time.Time) *APIError {
	return &APIError{
		Kind:       RateLimited,
		Method:     http.MethodPost,
		Path:       tokenPath,
		Message:    fmt.Sprintf("new M2M tokens held until %s (Auth0 %s)", until.UTC().Format(time.RFC3339), reason),
		RetryAfter: until.Sub(now),
	}
}
