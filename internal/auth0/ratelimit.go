package auth0

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// maxAttempts bounds how often one call is sent when Auth0 answers 429.
const maxAttempts = 3

// maxHold caps a server-requested pause so a bogus header (or a badly skewed
// clock) cannot block a tenant's client for hours.
const maxHold = 10 * time.Minute

// defaultRetryAfter is used for a 429 that says nothing about when to retry.
const defaultRetryAfter = time.Second

// retryAfter works out how long a 429 asks us to wait: Retry-After (seconds or
// HTTP date), else Auth0's x-ratelimit-reset (epoch seconds), else a second.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
			if secs > int64(maxHold/time.Second) {
				return maxHold
			}
			return time.Duration(secs) * time.Second
		}
		if t, err := http.ParseTime(v); err == nil {
			return clampWait(t.Sub(now))
		}
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

// observeRateLimit holds all further requests until the bucket refills when
// Auth0 reports it empty, so we do not spend a request just to get a 429.
func (c *Client) observeRateLimit(h http.Header) {
	if strings.TrimSpace(h.Get("X-Ratelimit-Remaining")) != "0" {
		return
	}
	if reset, ok := rateLimitReset(h); ok {
		c.holdUntil(reset)
	}
}

// holdUntil extends the tenant-wide pause to t (never shortens it).
func (c *Client) holdUntil(t time.Time) {
	now := c.cfg.Clock.Now()
	if limit := now.Add(maxHold); t.After(limit) {
		t = limit
	}
	c.holdMu.Lock()
	defer c.holdMu.Unlock()
	if t.After(c.hold) {
		c.hold = t
	}
}

func (c *Client) holdRemaining() time.Duration {
	c.holdMu.Lock()
	defer c.holdMu.Unlock()
	return c.hold.Sub(c.cfg.Clock.Now())
}

// awaitHold waits out a server-requested pause. *waited accumulates the
// call's total such waits; if the next one would exceed MaxRateLimitWait the
// call gives up with a RateLimited error instead (last is the 429 that caused
// the pause, if this call received one).
func (c *Client) awaitHold(ctx context.Context, req request, waited *time.Duration, last *APIError) error {
	for {
		d := c.holdRemaining()
		if d <= 0 {
			return nil
		}
		if *waited+d > c.cfg.MaxRateLimitWait {
			return giveUpError(req, d, last)
		}
		if err := c.sleep(ctx, d); err != nil {
			return err
		}
		*waited += d
	}
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

// awaitLimiter waits for the client-side token bucket. It reserves at the
// injected clock's time and sleeps on the injected clock, so a fake clock
// fully controls the pacing in tests.
func (c *Client) awaitLimiter(ctx context.Context) error {
	now := c.cfg.Clock.Now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errLimiterBurst
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := c.sleep(ctx, d); err != nil {
		r.CancelAt(c.cfg.Clock.Now())
		return err
	}
	return nil
}

// sleep waits d on the injected clock or until ctx is done.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := c.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
