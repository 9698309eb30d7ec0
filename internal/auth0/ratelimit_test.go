package auth0

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// tooManyRequests answers like Auth0 does when the bucket is empty.
// The fake's default rate-limit headers use real time, so they are dropped.
func tooManyRequests(w http.ResponseWriter, headers map[string]string) {
	for _, k := range []string{"X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
		w.Header().Del(k)
	}
	for k, v := range headers {
		w.Header().Set(k, v)
	}
	writeJSON(w, http.StatusTooManyRequests,
		`{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}`)
}

func TestRateLimitedRequestIsRetriedTransparently(t *testing.T) {
	resetIn := func(d time.Duration) string { return fmt.Sprint(fakeStart.Add(d).Unix()) }
	tests := map[string]struct {
		headers  map[string]string
		wantWait time.Duration
	}{
		"Retry-After seconds": {
			headers:  map[string]string{"Retry-After": "2", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": resetIn(2 * time.Second)},
			wantWait: 2 * time.Second,
		},
		"only x-ratelimit-reset": {
			headers:  map[string]string{"X-Ratelimit-Limit": "2", "X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": resetIn(3 * time.Second)},
			wantWait: 3 * time.Second,
		},
		"Retry-After as HTTP date": {
			headers:  map[string]string{"Retry-After": fakeStart.Add(4 * time.Second).UTC().Format(http.TimeFormat)},
			wantWait: 4 * time.Second,
		},
		"no hint at all": {wantWait: defaultRetryAfter},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.addUser("auth0|1", userBody("auth0|1"))
			var calls atomic.Int64
			f.apiHook = func(w http.ResponseWriter, _ *http.Request) bool {
				if calls.Add(1) == 1 {
					tooManyRequests(w, tc.headers)
					return true
				}
				return false
			}
			fc := clocktesting.NewFakeClock(fakeStart)
			c := f.client(t, func(cfg *Config) { cfg.Clock = fc })

			var u *User
			// Step in 1s increments so we learn how long the client waited.
			steps, err := runStepping(t, fc, time.Second, func() error {
				var err error
				u, err = c.GetUser(testContext(t), "auth0|1")
				return err
			})
			if err != nil {
				t.Fatalf("GetUser: %v", err)
			}
			if u.UserID != "auth0|1" {
				t.Errorf("UserID = %q", u.UserID)
			}
			if got := time.Duration(steps) * time.Second; got != tc.wantWait {
				t.Errorf("client waited %v of fake time, want %v", got, tc.wantWait)
			}
			if st := c.Stats(); st.APIRequests != 2 || st.RateLimited != 1 {
				t.Errorf("Stats = %+v, want 2 API requests and 1 rate limited", st)
			}
		})
	}
}

func TestRateLimitGivesUp(t *testing.T) {
	tests := map[string]struct {
		retryAfter      string
		maxWait         time.Duration
		wantRequests    int64
		wantRetryAfter  time.Duration
		wantFakeSeconds int
	}{
		"after three attempts": {
			retryAfter: "1", maxWait: time.Minute, wantRequests: 3, wantRetryAfter: time.Second, wantFakeSeconds: 2,
		},
		"when one wait exceeds MaxRateLimitWait": {
			retryAfter: "60", maxWait: 30 * time.Second, wantRequests: 1, wantRetryAfter: time.Minute,
		},
		"when the total wait would exceed MaxRateLimitWait": {
			retryAfter: "3", maxWait: 5 * time.Second, wantRequests: 2, wantRetryAfter: 3 * time.Second, wantFakeSeconds: 3,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.apiHook = func(w http.ResponseWriter, _ *http.Request) bool {
				tooManyRequests(w, map[string]string{"Retry-After": tc.retryAfter})
				return true
			}
			fc := clocktesting.NewFakeClock(fakeStart)
			c := f.client(t, func(cfg *Config) { cfg.Clock = fc; cfg.MaxRateLimitWait = tc.maxWait })

			steps, err := runStepping(t, fc, time.Second, func() error {
				_, err := c.GetUser(testContext(t), "auth0|1")
				return err
			})
			wait, ok := IsRateLimited(err)
			if !ok {
				t.Fatalf("got %v, want a RateLimited error", err)
			}
			if wait != tc.wantRetryAfter {
				t.Errorf("RetryAfter = %v, want %v", wait, tc.wantRetryAfter)
			}
			if !IsTransient(err) {
				t.Error("RateLimited must be transient")
			}
			if st := c.Stats(); st.APIRequests != tc.wantRequests || st.RateLimited != tc.wantRequests {
				t.Errorf("Stats = %+v, want %d requests, all rate limited", st, tc.wantRequests)
			}
			if steps != tc.wantFakeSeconds {
				t.Errorf("waited %ds of fake time, want %ds", steps, tc.wantFakeSeconds)
			}
			assertNoSecrets(t, err.Error())
		})
	}
}

func TestEmptyServerBucketWaitsOneTokenNotUntilReset(t *testing.T) {
	tests := map[string]struct {
		remaining string
		// wantWait is how long the second request waits: one token at 2/s when the server
		// says its bucket is empty (whatever the reset says), nothing when it has tokens.
		wantWait time.Duration
	}{
		"server empty":      {remaining: "0", wantWait: 500 * time.Millisecond},
		"server has tokens": {remaining: "1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			f.addUser("auth0|1", userBody("auth0|1"))
			f.addUser("auth0|2", userBody("auth0|2"))
			f.apiHook = func(w http.ResponseWriter, _ *http.Request) bool {
				w.Header().Set("X-Ratelimit-Limit", "3")
				w.Header().Set("X-Ratelimit-Remaining", tc.remaining)
				// Full again in 2 s, as Auth0 says after a burst.
				w.Header().Set("X-Ratelimit-Reset", fmt.Sprint(fakeStart.Add(2*time.Second).Unix()))
				return false
			}
			fc := clocktesting.NewFakeClock(fakeStart)
			// Our bucket keeps a spare token below the server's 3: two to spend.
			c := f.client(t, func(cfg *Config) { cfg.Clock = fc; cfg.RequestsPerSecond = 2; cfg.Burst = 3 })
			if _, err := c.GetUser(testContext(t), "auth0|1"); err != nil {
				t.Fatal(err)
			}
			steps, err := runStepping(t, fc, 10*time.Millisecond, func() error {
				_, err := c.GetUser(testContext(t), "auth0|2")
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(steps) * 10 * time.Millisecond; got != tc.wantWait {
				t.Errorf("the second request waited %v, want %v", got, tc.wantWait)
			}
		})
	}
}

func TestHoldIsCancelledWithContext(t *testing.T) {
	f := newFakeAuth0(t)
	fc := clocktesting.NewFakeClock(fakeStart)
	c := f.client(t, func(cfg *Config) { cfg.Clock = fc })
	c.pace.hold = fakeStart.Add(10 * time.Second)

	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := c.GetUser(ctx, "auth0|1")
		done <- err
	}()
	eventually(t, "the request to wait", fc.HasWaiters)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
	if n := c.Stats().APIRequests; n != 0 {
		t.Errorf("APIRequests = %d, want 0", n)
	}
}

func TestClientSideLimiterSpacesRequests(t *testing.T) {
	tests := map[string]struct {
		rps   float64
		burst int
		calls int
		// wantWaits is the number of calls that had to wait for a token.
		wantWaits int
	}{
		"burst 1 at 1 rps": {rps: 1, burst: 1, calls: 4, wantWaits: 3},
		// Until the server says its bucket is bigger, ours keeps a spare token.
		"burst 2 at 2 rps": {rps: 2, burst: 2, calls: 4, wantWaits: 3},
		"burst covers all": {rps: 1, burst: 5, calls: 4, wantWaits: 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			for i := range tc.calls {
				id := fmt.Sprintf("auth0|%d", i)
				f.addUser(id, userBody(id))
			}
			fc := clocktesting.NewFakeClock(fakeStart)
			c := f.client(t, func(cfg *Config) { cfg.Clock = fc; cfg.RequestsPerSecond = tc.rps; cfg.Burst = tc.burst })

			waits := 0
			done := make(chan error, 1)
			go func() {
				for i := range tc.calls {
					if _, err := c.GetUser(testContext(t), fmt.Sprintf("auth0|%d", i)); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
					if waits != tc.wantWaits {
						t.Errorf("%d calls waited for the limiter, want %d", waits, tc.wantWaits)
					}
					if n := c.Stats().APIRequests; n != int64(tc.calls) {
						t.Errorf("APIRequests = %d, want %d", n, tc.calls)
					}
					return
				default:
				}
				if fc.HasWaiters() {
					// Blocked on the limiter: nothing may have been sent for
					// this call yet.
					sent := c.Stats().APIRequests
					if sent >= int64(tc.calls) {
						t.Fatalf("waiting after all %d requests were sent", sent)
					}
					waits++
					fc.Step(time.Duration(float64(time.Second) / tc.rps))
					eventually(t, "the waiting request to be sent", func() bool { return c.Stats().APIRequests == sent+1 })
					continue
				}
				time.Sleep(time.Millisecond)
			}
		})
	}
}
