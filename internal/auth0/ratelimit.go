package auth0

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// Auth0 meters the Management API with a token bucket per tenant and reports it on every
// answer: x-ratelimit-limit (the bucket's size), x-ratelimit-remaining (whole tokens left
// after this request) and x-ratelimit-reset (an epoch second, rounded up). Auth0 documents the
// reset as the time the bucket is full again; a reasonable server could also mean the time the
// next token arrives. The pacer below is correct under both readings: it only uses the reset
// for an upper bound of the refill rate that holds under either.
//
// The client keeps its own bucket (golang.org/x/time/rate) at the tenant's configured rate
// and burst, which are a ceiling: the server's headers can only lower them (a smaller bucket,
// a slower refill) or drain tokens the server says are gone (another client of the tenant
// spent them). Nothing is held until the reset, so the client never idles while the server
// would accept; and as long as the client's bucket is never fuller than the server's, it
// never sends what the server would refuse. One pacer serves every caller of a tenant, and
// rate.Limiter hands out its slots in the order callers ask, so the budget is shared fairly.
//
// The client's bucket is one token smaller than the server's. While both are full, a token
// taken from ours starts our refill when the request leaves, and the server's only when it
// arrives; without a spare token, our next request would reach the server a network delay
// before the server's next token. The spare costs one request of the first burst, not rate.

// maxAttempts bounds how often one call is sent when Auth0 answers 429.
const maxAttempts = 3

// maxHold caps a server-requested pause so a bogus header (or a badly skewed
// clock) cannot block a tenant's client for hours.
const maxHold = 10 * time.Minute

// defaultRetryAfter is used for a 429 that says nothing about when to retry.
const defaultRetryAfter = time.Second

// rateBoundWindow is how long an upper bound of the server's refill rate is trusted: a bound
// is valid while the tenant's limits stay the same, and a tenant can be moved to a bigger plan.
const rateBoundWindow = 5 * time.Minute

// serverBucket is what one answer said about the server's bucket.
type serverBucket struct {
	limit     int       // x-ratelimit-limit; 0 when absent
	remaining int       // x-ratelimit-remaining; -1 when absent
	reset     time.Time // x-ratelimit-reset; zero when absent
	date      time.Time // the Date header (whole seconds); zero when absent
}

func parseServerBucket(h http.Header) serverBucket {
	b := serverBucket{remaining: -1}
	if v, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Ratelimit-Limit"))); err == nil && v > 0 {
		b.limit = v
	}
	if v, err := strconv.Atoi(strings.TrimSpace(h.Get("X-Ratelimit-Remaining"))); err == nil && v >= 0 {
		b.remaining = v
	}
	b.reset, _ = rateLimitReset(h)
	if d, err := http.ParseTime(h.Get("Date")); err == nil {
		b.date = d
	}
	return b
}

// rateBound returns an upper bound of the server's refill rate in tokens per second, valid
// whichever way the reset is meant, or false when this answer gives none.
//
// With remaining R < limit L, the server's level was in [R, R+1) when it answered. If the
// reset is when the bucket is full again, then reset−1 < now + (L−level)/rate ≤ now + (L−R)/rate
// (the reset is rounded up), so rate < (L−R) / (reset−1−now). If it is when the next token
// arrives, reset−1 < now + 1/rate, a tighter bound of the same form, since L−R ≥ 1.
// "now" is the later of our clock and the server's Date, so a clock running behind the
// server's cannot make the bound too low by more than the Date's one-second resolution.
func (b serverBucket) rateBound(now time.Time) (float64, bool) {
	if b.limit == 0 || b.remaining < 0 || b.remaining >= b.limit || b.reset.IsZero() {
		return 0, false
	}
	if b.date.After(now) {
		now = b.date
	}
	span := b.reset.Add(-time.Second).Sub(now).Seconds()
	if span <= 0 || span > maxHold.Seconds() {
		return 0, false
	}
	return float64(b.limit-b.remaining) / span, true
}

// pacer is one tenant's Management API budget: the client's token bucket, kept in step with
// the server's, and the pause a 429's Retry-After asks for.
type pacer struct {
	clk     clock.Clock
	limiter *rate.Limiter
	ceiling rate.Limit // the configured rate; the server can only lower it
	burst   int        // the configured burst; likewise

	mu sync.Mutex
	// hold: no request is sent before it (a 429's Retry-After).
	hold time.Time
	// pending counts requests that took a token and have not been answered yet.
	pending int
	// bound is the lowest upper bound of the server's refill rate seen in this window and the
	// last; 0 when none.
	bound, prevBound float64
	boundSince       time.Time
}

func newPacer(clk clock.Clock, limit rate.Limit, burst int) *pacer {
	return &pacer{clk: clk, limiter: rate.NewLimiter(limit, clientBurst(burst, burst)), ceiling: limit, burst: burst, boundSince: clk.Now()}
}

// clientBurst is the size of our bucket: the configured burst, and one token less than the
// server's (see above). Until the server has said, it is taken to be the configured burst.
func clientBurst(configured, server int) int {
	if server > configured {
		return configured
	}
	return max(1, server-1)
}

// take waits for the tenant's budget: first any server-requested pause, then a token of the
// client's bucket. *waited accumulates the call's pauses (not the bucket's pacing); a pause
// that would take it beyond maxWait gives up with a RateLimited error. On success the caller
// must report the answer with observe, or a failure to get one with abandon.
func (p *pacer) take(ctx context.Context, req request, maxWait time.Duration, waited *time.Duration, last *APIError) error {
	for {
		d := p.holdRemaining()
		if d <= 0 {
			break
		}
		if *waited+d > maxWait {
			return giveUpError(req, d, last)
		}
		if err := p.sleep(ctx, d); err != nil {
			return err
		}
		*waited += d
	}
	p.mu.Lock()
	now := p.clk.Now()
	r := p.limiter.ReserveN(now, 1)
	if !r.OK() {
		p.mu.Unlock()
		return errLimiterBurst
	}
	p.pending++
	p.mu.Unlock()
	if d := r.DelayFrom(now); d > 0 {
		if err := p.sleep(ctx, d); err != nil {
			p.mu.Lock()
			p.pending--
			r.CancelAt(p.clk.Now())
			p.mu.Unlock()
			return err
		}
	}
	return nil
}

// abandon gives back the place of a request that got no answer (network error, cancelled).
// Its token is not returned: the server may have counted it.
func (p *pacer) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending--
}

// observe folds an answer's rate-limit headers into the client's bucket. A 429 also sets the
// pause its Retry-After asks for.
func (p *pacer) observe(h http.Header, status int) time.Duration {
	now := p.clk.Now()
	sb := parseServerBucket(h)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending--
	if p.ceiling == rate.Inf {
		// No client-side bucket: only a 429's pause applies.
		return p.holdFor429(h, status, now)
	}
	if sb.limit > 0 {
		if b := clientBurst(p.burst, sb.limit); b != p.limiter.Burst() {
			p.limiter.SetBurstAt(now, b)
		}
	}
	b, _ := sb.rateBound(now)
	p.learnBound(b, now)
	refused := status == http.StatusTooManyRequests
	if sb.remaining >= 0 || refused {
		p.drainTo(float64(max(sb.remaining, 0)), refused, now)
	}
	return p.holdFor429(h, status, now)
}

// learnBound records an upper bound of the server's refill rate (0: none, only the windows
// move on) and paces at the lowest bound of this window and the last, when that is below the
// configured rate.
func (p *pacer) learnBound(b float64, now time.Time) {
	if now.Sub(p.boundSince) >= rateBoundWindow {
		p.prevBound, p.bound, p.boundSince = p.bound, 0, now
	}
	if b > 0 && (p.bound == 0 || b < p.bound) {
		p.bound = b
	}
	limit := p.ceiling
	for _, b := range []float64{p.bound, p.prevBound} {
		if b > 0 && rate.Limit(b) < limit {
			limit = rate.Limit(b)
		}
	}
	if limit != p.limiter.Limit() {
		p.limiter.SetLimitAt(now, limit)
	}
}

// drainTo lowers the client's bucket when the server's holds provably less: the server had
// fewer than remaining+1 tokens, and our bucket counts at least that many that the server
// has not seen spent. Then the client keeps only what the server is sure to have, less the
// requests under way. A bucket that is not provably ahead is left alone, so rounding never
// costs a token. A 429 proves the server had none.
func (p *pacer) drainTo(remaining float64, refused bool, now time.Time) {
	tokens := p.limiter.TokensAt(now)
	if !refused && tokens < remaining+1 {
		return
	}
	target := remaining - float64(p.pending)
	excess := math.Ceil(tokens - target)
	if excess <= 0 {
		return
	}
	n := min(int(excess), p.limiter.Burst())
	// A reservation taken and never used: that is how rate.Limiter spends tokens.
	p.limiter.ReserveN(now, n)
}

// holdFor429 returns how long a 429 asks us to wait, 0 for any other status. A Retry-After
// holds every request of the tenant that long. Without one, the drained bucket already spaces
// the next request by one token's time, so nothing more is held.
func (p *pacer) holdFor429(h http.Header, status int, now time.Time) time.Duration {
	if status != http.StatusTooManyRequests {
		return 0
	}
	if wait, ok := httpclient.RetryAfter(h, now, maxHold); ok {
		if t := now.Add(wait); t.After(p.hold) {
			p.hold = t
		}
		return wait
	}
	if limit := p.limiter.Limit(); p.ceiling != rate.Inf && limit > 0 {
		return time.Duration(float64(time.Second) / float64(limit))
	}
	wait := retryAfter(h, now)
	if t := now.Add(wait); t.After(p.hold) {
		p.hold = t
	}
	return wait
}

func (p *pacer) holdRemaining() time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hold.Sub(p.clk.Now())
}

// sleep waits d on the injected clock or until ctx is done.
func (p *pacer) sleep(ctx context.Context, d time.Duration) error {
	t := p.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}

// retryAfter works out how long a 429 asks us to wait when there is no client-side bucket to
// pace the retry: Retry-After, else Auth0's x-ratelimit-reset, else a second.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := httpclient.RetryAfter(h, now, maxHold); ok {
		return d
	}
	if reset, ok := rateLimitReset(h); ok {
		if d := reset.Sub(now); d > 0 {
			return clampWait(d)
		}
	}
	return defaultRetryAfter
}

func clampWait(d time.Duration) time.Duration {
	return max(0, min(d, maxHold))
}

// rateLimitReset parses x-ratelimit-reset, Auth0's epoch-seconds reset time.
func rateLimitReset(h http.Header) (time.Time, bool) {
	v := strings.TrimSpace(h.Get("X-Ratelimit-Reset"))
	if v == "" {
		return time.Time{}, false
	}
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs <= 0 || secs > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}

func giveUpError(req request, wait time.Duration, last *APIError) *APIError {
	if last != nil {
		e := *last
		e.RetryAfter = wait
		return &e
	}
	return &APIError{
		Kind:       RateLimited,
		Method:     req.method,
		Path:       req.display,
		Message:    "Auth0 rate limit exhausted; waiting for the reset would exceed MaxRateLimitWait",
		RetryAfter: wait,
	}
}
