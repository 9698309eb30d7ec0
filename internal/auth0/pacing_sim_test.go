package auth0

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// The client against the simulated tenant, whose Management API is a token bucket that
// answers like Auth0, on one fake clock: as the tenant's only client it must get no 429 and
// use at least 95 % of what the bucket allows, under either reading of x-ratelimit-reset.
func TestPacingAgainstTheSimulatorsBucket(t *testing.T) {
	type server struct {
		perSecond, burst int
	}
	tests := []struct {
		server   server
		callers  int
		requests int
		step     time.Duration // fake-clock step while everyone waits
	}{
		{server: server{2, 2}, callers: 1, requests: 40, step: 10 * time.Millisecond},
		{server: server{2, 2}, callers: 4, requests: 40, step: 10 * time.Millisecond},
		{server: server{1, 5}, callers: 3, requests: 30, step: 10 * time.Millisecond},
		{server: server{50, 50}, callers: 4, requests: 400, step: 2 * time.Millisecond},
	}
	for _, mode := range []struct {
		name  string
		reset auth0sim.ResetMode
	}{{"reset when full", auth0sim.ResetWhenFull}, {"reset at the next token", auth0sim.ResetNextToken}} {
		for _, tc := range tests {
			name := fmt.Sprintf("%s/%d per s, burst %d, %d callers", mode.name, tc.server.perSecond, tc.server.burst, tc.callers)
			t.Run(name, func(t *testing.T) {
				start := time.Now().Truncate(time.Second)
				fc := clocktesting.NewFakeClock(start)
				sim, err := auth0sim.New(auth0sim.Options{
					Clock: fc, RateLimitPerSecond: tc.server.perSecond, RateLimitBurst: tc.server.burst, RateLimitReset: mode.reset,
				})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(sim.Close)
				sim.AddM2MClient("pacing", "sim_cs_pacing", "read:users")
				for i := range tc.requests {
					sim.AddUser(fmt.Sprintf("auth0|u%d", i), auth0sim.IdentitySpec{Connection: "Username-Password-Authentication", Provider: "auth0", UserID: fmt.Sprintf("u%d", i)})
				}
				// The tenant's rateLimit says what the server does, as the defaults do for a
				// free tenant.
				c, err := NewClient(Config{
					Domain: sim.Domain(), ClientID: "pacing", ClientSecret: "sim_cs_pacing", CABundle: sim.CAPEM(),
					RequestsPerSecond: float64(tc.server.perSecond), Burst: tc.server.burst, Clock: fc,
				})
				if err != nil {
					t.Fatal(err)
				}

				last := runCallers(t, fc, tc.callers, tc.requests, tc.step, func(ctx context.Context, i int) error {
					_, err := c.GetUser(ctx, fmt.Sprintf("auth0|u%d", i))
					return err
				})

				st := c.Stats()
				if st.RateLimited != 0 || sim.Stats().RateLimited != 0 {
					t.Errorf("got %d × 429 (simulator: %d), want none for the tenant's only client", st.RateLimited, sim.Stats().RateLimited)
				}
				if st.APIRequests != int64(tc.requests) {
					t.Errorf("sent %d requests for %d reads", st.APIRequests, tc.requests)
				}
				// What the bucket allows from start to the last send: it starts full.
				elapsed := last.Sub(start).Seconds()
				allowed := float64(tc.server.burst) + elapsed*float64(tc.server.perSecond)
				t.Logf("%d requests in %.2fs of fake time: %.1f%% of what the bucket allows", tc.requests, elapsed, 100*float64(tc.requests)/allowed)
				if use := float64(tc.requests) / allowed; use < 0.95 {
					t.Errorf("%d requests in %.2fs of fake time: %.1f%% of the %.0f the bucket allows, want ≥ 95%%",
						tc.requests, elapsed, 100*use, allowed)
				}
			})
		}
	}
}

// runCallers runs n reads (call with i = 0..n-1) from the given number of concurrent callers,
// taking turns over i, and steps the fake clock only while every live caller waits on it. It
// returns the fake time at which the last read started.
func runCallers(t *testing.T, fc *clocktesting.FakeClock, callers, n int, step time.Duration, call func(ctx context.Context, i int) error) time.Time {
	t.Helper()
	ctx := testContext(t)
	var next, live atomic.Int64
	live.Store(int64(callers))
	var mu sync.Mutex
	var last time.Time
	errs := make(chan error, callers)
	for range callers {
		go func() {
			defer live.Add(-1)
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					errs <- nil
					return
				}
				if err := call(ctx, i); err != nil {
					errs <- fmt.Errorf("read %d: %w", i, err)
					return
				}
				mu.Lock()
				last = fc.Now()
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for live.Load() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the callers did not finish: %d still running", live.Load())
		}
		if l := live.Load(); l > 0 && int64(fc.Waiters()) >= l {
			fc.Step(step)
			continue
		}
		time.Sleep(20 * time.Microsecond)
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	return last
}
