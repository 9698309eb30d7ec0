package auth0

import (
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// tokenAnswer is one scripted answer of the fake's /oauth/token.
type tokenAnswer struct {
	status  int
	headers map[string]string
	body    string
}

// scriptTokens makes the fake's /oauth/token answer with next() while it returns ok, and
// normally otherwise; it counts every request the endpoint receives.
func scriptTokens(f *fakeAuth0, next func() (tokenAnswer, bool)) *atomic.Int64 {
	var n atomic.Int64
	f.mu.Lock()
	defer f.mu.Unlock()
	f.tokenHook = func(w http.ResponseWriter, _ *http.Request) bool {
		n.Add(1)
		a, ok := next()
		if !ok {
			return false
		}
		for k, v := range a.headers {
			w.Header().Set(k, v)
		}
		writeJSON(w, a.status, a.body)
		return true
	}
	return &n
}

// switchable answers with the scripted answer while on is set.
type switchable struct {
	mu sync.Mutex
	on bool
	a  tokenAnswer
}

func (s *switchable) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = on
}

func (s *switchable) next() (tokenAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a, s.on
}

const quotaBody = `{"error":"too_many_requests","error_description":"Client quota exceeded"}`

func epoch(t time.Time) string { return fmt.Sprint(t.Unix()) }

func TestQuota429HoldsEveryTokenRequestUntilRetryAfter(t *testing.T) {
	f := newFakeAuth0(t)
	for i := range 10 {
		id := fmt.Sprintf("auth0|%d", i)
		f.addUser(id, userBody(id))
	}
	quota := &switchable{on: true, a: tokenAnswer{
		status: http.StatusTooManyRequests,
		body:   quotaBody,
		headers: map[string]string{
			"Retry-After":              "7200",
			"X-RateLimit-Limit":        "100",
			"X-RateLimit-Remaining":    "0",
			"X-RateLimit-Reset":        epoch(fakeStart.Add(2 * time.Hour)),
			"Auth0-Client-Quota-Limit": "b=per_hour;q=100;r=0;t=7200,b=per_day;q=1000;r=500;t=80000",
		},
	}}
	requests := scriptTokens(f, quota.next)
	fc := clocktesting.NewFakeClock(fakeStart)
	c := f.client(t, func(cfg *Config) { cfg.Clock = fc })
	ctx := testContext(t)

	_, err := c.Authenticate(ctx)
	if wait, ok := IsRateLimited(err); !ok || wait != 2*time.Hour {
		t.Fatalf("first token request: got %v (wait %v), want RateLimited with RetryAfter 2h", err, wait)
	}

	// Concurrent and repeated callers while held: no request, the remaining hold as RetryAfter.
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			_, err := c.GetUser(ctx, fmt.Sprintf("auth0|%d", i))
			if wait, ok := IsRateLimited(err); !ok || wait != 2*time.Hour {
				t.Errorf("GetUser while held: got %v (wait %v), want RateLimited with RetryAfter 2h", err, wait)
			}
		})
	}
	wg.Wait()
	for _, step := range []time.Duration{30 * time.Minute, time.Hour, 29*time.Minute + 59*time.Second} {
		before := fc.Now().Sub(fakeStart)
		fc.Step(step)
		want := 2*time.Hour - before - step
		_, err := c.Authenticate(ctx)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Kind != RateLimited || apiErr.RetryAfter != want || apiErr.StatusCode != 0 {
			t.Fatalf("after %v: got %v, want RateLimited without a response and RetryAfter %v", before+step, err, want)
		}
		assertNoSecrets(t, err.Error())
	}
	if got := requests.Load(); got != 1 {
		t.Fatalf("/oauth/token saw %d requests while held, want 1", got)
	}
	if st := c.Stats(); st.TokenRequests != 1 || st.APIRequests != 0 {
		t.Errorf("Stats = %+v, want 1 token request and no API request", st)
	}

	// The hold has passed: one request again, and the token serves the API.
	quota.set(false)
	fc.Step(time.Second)
	if _, err := c.GetUser(ctx, "auth0|0"); err != nil {
		t.Fatalf("GetUser after the hold: %v", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("/oauth/token saw %d requests, want 2 (one after the hold)", got)
	}
}

func TestTokenEndpoint500IsHeldOnlyWhenItIsTheGlobalLimit(t *testing.T) {
	reset := fakeStart.Add(45 * time.Second)
	tests := map[string]struct {
		answer   tokenAnswer
		wantKind ErrorKind
		wantHold time.Duration // 0: not held, the next call sends a request
	}{
		"x-ratelimit-remaining 0 and a reset": {
			answer: tokenAnswer{status: 500, body: `{"error":"server_error","error_description":"Internal error"}`, headers: map[string]string{
				"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": epoch(reset),
			}},
			wantKind: RateLimited, wantHold: 45 * time.Second,
		},
		"Global limit text with a reset": {
			answer: tokenAnswer{status: 500, body: `{"error":"access_denied","error_description":"Global limit has been reached"}`, headers: map[string]string{
				"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "29", "X-RateLimit-Reset": epoch(reset),
			}},
			wantKind: RateLimited, wantHold: 45 * time.Second,
		},
		"no rate-limit headers": {
			answer:   tokenAnswer{status: 500, body: `{"error":"server_error","error_description":"Internal error"}`},
			wantKind: ServerError,
		},
		"budget left and no global limit text": {
			answer: tokenAnswer{status: 500, body: `{"error":"server_error","error_description":"Internal error"}`, headers: map[string]string{
				"X-RateLimit-Limit": "30", "X-RateLimit-Remaining": "12", "X-RateLimit-Reset": epoch(reset),
			}},
			wantKind: ServerError,
		},
		"remaining 0 but the reset has passed": {
			answer: tokenAnswer{status: 500, body: `{}`, headers: map[string]string{
				"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": epoch(fakeStart.Add(-time.Minute)),
			}},
			wantKind: RateLimited, wantHold: defaultRetryAfter,
		},
		"503 from a proxy": {
			answer:   tokenAnswer{status: 503, body: `{}`},
			wantKind: ServerError,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeAuth0(t)
			requests := scriptTokens(f, func() (tokenAnswer, bool) { return tc.answer, true })
			fc := clocktesting.NewFakeClock(fakeStart)
			c := f.client(t, func(cfg *Config) { cfg.Clock = fc })
			ctx := testContext(t)

			_, err := c.Authenticate(ctx)
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Kind != tc.wantKind || apiErr.StatusCode != tc.answer.status {
				t.Fatalf("got %v, want %v with status %d", err, tc.wantKind, tc.answer.status)
			}
			if apiErr.RetryAfter != tc.wantHold {
				t.Errorf("RetryAfter = %v, want %v", apiErr.RetryAfter, tc.wantHold)
			}
			_, err = c.Authenticate(ctx)
			if tc.wantHold == 0 {
				if got := requests.Load(); got != 2 {
					t.Errorf("a plain server error held the next request: %d requests, want 2 (%v)", got, err)
				}
				return
			}
			if wait, ok := IsRateLimited(err); !ok || wait != tc.wantHold || requests.Load() != 1 {
				t.Errorf("second call: %v (wait %v) after %d requests, want held for %v without a request", err, wait, requests.Load(), tc.wantHold)
			}
			fc.Step(tc.wantHold)
			_, _ = c.Authenticate(ctx)
			if got := requests.Load(); got != 2 {
				t.Errorf("after the reset: %d requests, want 2", got)
			}
		})
	}
}

func TestCachedTokenServesTheAPIWhileNewTokensAreHeld(t *testing.T) {
	f := newFakeAuth0(t)
	f.expiresIn = 3600
	f.addUser("auth0|1", userBody("auth0|1"))
	quota := &switchable{a: tokenAnswer{
		status: http.StatusTooManyRequests, body: quotaBody,
		headers: map[string]string{"Retry-After": "7200", "Auth0-Client-Quota-Limit": "b=per_hour;q=10;r=0;t=7200"},
	}}
	requests := scriptTokens(f, quota.next)
	fc := clocktesting.NewFakeClock(fakeStart)
	c := f.client(t, func(cfg *Config) { cfg.Clock = fc })
	ctx := testContext(t)

	if _, err := c.GetUser(ctx, "auth0|1"); err != nil {
		t.Fatal(err)
	}
	// Inside the last minute of the token's life the client asks for a new one, and is refused.
	quota.set(true)
	fc.Step(3600*time.Second - 30*time.Second)
	for i := range 3 {
		if _, err := c.GetUser(ctx, "auth0|1"); err != nil {
			t.Fatalf("GetUser %d with a valid cached token during the hold: %v", i, err)
		}
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("/oauth/token saw %d requests, want 2: one renewal, then held", got)
	}
	for _, req := range f.requests() {
		if req.Auth != "Bearer "+m2mTokenPrefix+"1" {
			t.Errorf("request %s used another token than the cached one", req.Path)
		}
	}
	// Once the cached token is (nearly) dead, the hold shows.
	fc.Step(25 * time.Second)
	_, err := c.GetUser(ctx, "auth0|1")
	if _, ok := IsRateLimited(err); !ok {
		t.Errorf("GetUser after the cached token expired: got %v, want RateLimited", err)
	}
	if got := requests.Load(); got != 2 {
		t.Errorf("/oauth/token saw %d requests, want still 2", got)
	}
}

func TestConcurrentCallersShareOneRefusedTokenRequest(t *testing.T) {
	f := newFakeAuth0(t)
	release, open := gate(t)
	arrived := make(chan struct{}, 1)
	requests := scriptTokens(f, func() (tokenAnswer, bool) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-release
		return tokenAnswer{status: http.StatusTooManyRequests, body: quotaBody, headers: map[string]string{"Retry-After": "600"}}, true
	})
	fc := clocktesting.NewFakeClock(fakeStart)
	c := f.client(t, func(cfg *Config) { cfg.Clock = fc })
	ctx := testContext(t)

	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			// Other users, so that the reads are not coalesced before they need a token.
			if _, err := c.GetUser(ctx, fmt.Sprintf("auth0|%d", i)); !isKind(err, RateLimited) {
				t.Errorf("GetUser: got %v, want RateLimited", err)
			}
		})
	}
	<-arrived // the first request is in; whoever comes later joins it or meets the hold
	open()
	wg.Wait()
	if got := requests.Load(); got != 1 {
		t.Errorf("/oauth/token saw %d requests from 10 concurrent callers, want 1", got)
	}
}
