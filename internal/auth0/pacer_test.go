package auth0

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"
	clocktesting "k8s.io/utils/clock/testing"
)

// serverAnswer builds the rate-limit headers of an answer.
func serverAnswer(limit, remaining int, reset time.Time) http.Header {
	h := http.Header{}
	h.Set("X-Ratelimit-Limit", strconv.Itoa(limit))
	h.Set("X-Ratelimit-Remaining", strconv.Itoa(remaining))
	h.Set("X-Ratelimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	return h
}

// bucketAfter is what a token-bucket server of size, refilling at perSecond, reports when its
// level after a request is level at now: remaining and reset under either reading (epoch
// seconds, rounded up), as test/auth0sim computes them.
func bucketAfter(size int, perSecond, level float64, now time.Time, whenFull bool) (int, time.Time) {
	wait := (math.Floor(level) + 1 - level) / perSecond
	if whenFull {
		wait = (float64(size) - level) / perSecond
	}
	reset := now.Add(time.Duration(wait * float64(time.Second)))
	if tr := reset.Truncate(time.Second); !tr.Equal(reset) {
		reset = tr.Add(time.Second)
	}
	return int(level), reset
}

func TestRateBoundHoldsUnderBothReadings(t *testing.T) {
	for _, whenFull := range []bool{true, false} {
		for _, tc := range []struct {
			size      int
			perSecond float64
		}{{2, 2}, {50, 50}, {10, 2}, {5, 1}} {
			name := fmt.Sprintf("size %d at %g/s, reset when full %v", tc.size, tc.perSecond, whenFull)
			t.Run(name, func(t *testing.T) {
				tightest := math.Inf(1)
				// Every phase within a second, every level the bucket can be left at.
				for phase := time.Duration(0); phase < time.Second; phase += 7 * time.Millisecond {
					now := fakeStart.Add(phase)
					for level := 0.0; level <= float64(tc.size-1); level += 0.13 {
						remaining, reset := bucketAfter(tc.size, tc.perSecond, level, now, whenFull)
						b, ok := parseServerBucket(serverAnswer(tc.size, remaining, reset)).rateBound(now)
						if !ok {
							continue
						}
						if b < tc.perSecond {
							t.Fatalf("level %.2f at +%v: bound %.3f/s is below the real rate %g/s", level, phase, b, tc.perSecond)
						}
						tightest = min(tightest, b)
					}
				}
				// The bound is worth having: over many answers it comes close to the rate.
				if whenFull && tightest > 1.1*tc.perSecond {
					t.Errorf("the tightest bound was %.3f/s for a real rate of %g/s", tightest, tc.perSecond)
				}
			})
		}
	}
}

func TestRateBoundIgnoresUselessHeaders(t *testing.T) {
	now := fakeStart.Add(300 * time.Millisecond)
	tests := map[string]http.Header{
		"no headers":            {},
		"bucket full":           serverAnswer(2, 2, fakeStart.Add(time.Second)),
		"reset this second":     serverAnswer(2, 0, fakeStart.Add(time.Second)),
		"reset in the past":     serverAnswer(2, 0, fakeStart.Add(-time.Hour)),
		"reset absurdly far":    serverAnswer(2, 0, fakeStart.Add(24*time.Hour)),
		"remaining unparseable": {"X-Ratelimit-Limit": {"2"}, "X-Ratelimit-Remaining": {"x"}, "X-Ratelimit-Reset": {"1700000003"}},
	}
	for name, h := range tests {
		t.Run(name, func(t *testing.T) {
			if b, ok := parseServerBucket(h).rateBound(now); ok {
				t.Errorf("got a bound of %.3f/s, want none", b)
			}
		})
	}
}

func TestPacerDrainsOnlyWhatTheServerProvablyLacks(t *testing.T) {
	tests := map[string]struct {
		burst      int
		spent      int // tokens the client spent just before the answer
		pending    int // other requests under way
		remaining  int
		status     int
		wantTokens float64
	}{
		"in step":                       {burst: 2, spent: 1, remaining: 1, status: 200, wantTokens: 1},
		"server fuller than us":         {burst: 5, spent: 4, remaining: 3, status: 200, wantTokens: 1},
		"less than a token ahead":       {burst: 2, spent: 1, remaining: 0, status: 200, wantTokens: 0},
		"another client spent the rest": {burst: 10, spent: 1, remaining: 2, status: 200, wantTokens: 2},
		"with requests under way":       {burst: 10, spent: 1, pending: 3, remaining: 5, status: 200, wantTokens: 2},
		"a 429 proves the server empty": {burst: 2, spent: 1, remaining: 0, status: 429, wantTokens: 0},
		"a 429 with requests under way": {burst: 4, spent: 2, pending: 2, remaining: 0, status: 429, wantTokens: -2},
		"no headers leave us alone":     {burst: 4, spent: 1, remaining: -1, status: 200, wantTokens: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(fakeStart)
			p := newPacer(fc, 2, tc.burst)
			p.limiter = rate.NewLimiter(2, tc.burst) // full, at the configured burst
			p.limiter.ReserveN(fakeStart, tc.spent)
			p.pending = tc.pending + 1 // the answered request is one of them
			h := http.Header{}
			if tc.remaining >= 0 {
				// A server bucket one bigger, so that ours keeps its size.
				h = serverAnswer(tc.burst+1, tc.remaining, fakeStart)
			}
			p.observe(h, tc.status)
			if got := p.limiter.TokensAt(fakeStart); got != tc.wantTokens {
				t.Errorf("client bucket holds %.2f tokens, want %.2f", got, tc.wantTokens)
			}
			if p.pending != tc.pending {
				t.Errorf("pending = %d, want %d", p.pending, tc.pending)
			}
		})
	}
}

func TestPacerFollowsTheServersBucket(t *testing.T) {
	tests := map[string]struct {
		rps        float64
		burst      int
		answer     http.Header
		status     int
		wantLimit  rate.Limit
		wantBurst  int
		wantHold   time.Duration
		wantReturn time.Duration
	}{
		"configured like the server: ours keeps a spare token": {
			rps: 2, burst: 2, answer: serverAnswer(2, 1, fakeStart.Add(time.Second)), status: 200,
			wantLimit: 2, wantBurst: 1,
		},
		"server's bucket is smaller": {
			rps: 10, burst: 10, answer: serverAnswer(3, 1, fakeStart.Add(time.Second)), status: 200,
			wantLimit: 10, wantBurst: 2,
		},
		"server's bucket is bigger: the configured one is a ceiling": {
			rps: 2, burst: 2, answer: serverAnswer(50, 49, fakeStart.Add(time.Second)), status: 200,
			wantLimit: 2, wantBurst: 2,
		},
		"reset says the refill is slower than configured": {
			// 5 tokens missing, full only in the 5th second: at most 5 ÷ 4 tokens a second.
			rps: 10, burst: 5, answer: serverAnswer(5, 0, fakeStart.Add(5*time.Second)), status: 200,
			wantLimit: 1.25, wantBurst: 4,
		},
		"429 with Retry-After holds every request that long": {
			rps: 2, burst: 2, answer: func() http.Header {
				h := serverAnswer(3, 0, fakeStart.Add(time.Second))
				h.Set("Retry-After", "3")
				return h
			}(), status: 429,
			wantLimit: 2, wantBurst: 2, wantHold: 3 * time.Second, wantReturn: 3 * time.Second,
		},
		"429 without Retry-After: the drained bucket paces the retry": {
			rps: 4, burst: 2, answer: serverAnswer(3, 0, fakeStart.Add(time.Second)), status: 429,
			wantLimit: 4, wantBurst: 2, wantReturn: 250 * time.Millisecond,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fc := clocktesting.NewFakeClock(fakeStart)
			p := newPacer(fc, rate.Limit(tc.rps), tc.burst)
			p.limiter.ReserveN(fakeStart, 1)
			p.pending = 1
			if got := p.observe(tc.answer, tc.status); got != tc.wantReturn {
				t.Errorf("observe returned %v, want %v", got, tc.wantReturn)
			}
			if got := p.limiter.Limit(); math.Abs(float64(got-tc.wantLimit)) > 1e-9 {
				t.Errorf("pace = %v/s, want %v/s", got, tc.wantLimit)
			}
			if got := p.limiter.Burst(); got != tc.wantBurst {
				t.Errorf("burst = %d, want %d", got, tc.wantBurst)
			}
			if got := max(0, p.holdRemaining()); got != tc.wantHold {
				t.Errorf("hold = %v, want %v", got, tc.wantHold)
			}
		})
	}
}

func TestPacerForgetsALowBoundAfterTwoWindows(t *testing.T) {
	fc := clocktesting.NewFakeClock(fakeStart)
	p := newPacer(fc, 10, 5)
	p.pending = 1
	p.observe(serverAnswer(5, 0, fakeStart.Add(5*time.Second)), 200)
	if got := p.limiter.Limit(); got >= 10 {
		t.Fatalf("pace = %v/s after a slow reset, want below 10/s", got)
	}
	for range 2 {
		fc.Step(rateBoundWindow)
		p.pending = 1
		p.observe(serverAnswer(5, 4, fc.Now()), 200) // no bound in this answer
	}
	if got := p.limiter.Limit(); got != 10 {
		t.Errorf("pace = %v/s two windows later, want the configured 10/s", got)
	}
}

// Callers that each read one user after another share the tenant's budget in turn: none gets
// a second slot while another is waiting for its first.
func TestCallersShareTheBudgetInTurn(t *testing.T) {
	const callers, reads = 3, 4
	f := newFakeAuth0(t)
	var mu sync.Mutex
	var order []int // the caller of each request, in the order the server saw them
	f.apiHook = func(w http.ResponseWriter, r *http.Request) bool {
		var caller, read int
		if _, err := fmt.Sscanf(strings.TrimPrefix(r.URL.Path, "/api/v2/users/"), "auth0|c%d-%d", &caller, &read); err == nil {
			mu.Lock()
			order = append(order, caller)
			mu.Unlock()
		}
		return false
	}
	for c := range callers {
		for i := range reads {
			id := fmt.Sprintf("auth0|c%d-%d", c, i)
			f.addUser(id, userBody(id))
		}
	}
	fc := clocktesting.NewFakeClock(fakeStart)
	cl := f.client(t, func(cfg *Config) { cfg.Clock = fc; cfg.RequestsPerSecond = 1; cfg.Burst = 1 })
	ctx := testContext(t)
	var live atomic.Int64
	live.Store(callers)
	errs := make(chan error, callers)
	for c := range callers {
		go func() {
			defer live.Add(-1)
			for i := range reads {
				if _, err := cl.GetUser(ctx, fmt.Sprintf("auth0|c%d-%d", c, i)); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for live.Load() > 0 && time.Now().Before(deadline) {
		if l := live.Load(); l > 0 && int64(fc.Waiters()) >= l {
			fc.Step(time.Second)
			continue
		}
		time.Sleep(50 * time.Microsecond)
	}
	for range callers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(order) != callers*reads {
		t.Fatalf("the server saw %d reads, want %d", len(order), callers*reads)
	}
	served := make([]int, callers)
	for n, c := range order {
		served[c]++
		for other := range callers {
			if d := served[c] - served[other]; d > 1 {
				t.Fatalf("request %d: caller %d had %d reads while caller %d had %d (order %v)", n+1, c, served[c], other, served[other], order)
			}
		}
	}
}
