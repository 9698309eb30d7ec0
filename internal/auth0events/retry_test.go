package auth0events

import (
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"
)

// retries records OnRetry calls.
type retries struct {
	mu    sync.Mutex
	waits []time.Duration
	errs  []error
	ch    chan struct{}
}

func newRetries() *retries { return &retries{ch: make(chan struct{}, 100)} }

func (r *retries) on(err error, wait time.Duration) {
	r.mu.Lock()
	r.waits = append(r.waits, wait)
	r.errs = append(r.errs, err)
	r.mu.Unlock()
	r.ch <- struct{}{}
}

func (r *retries) wait(t *testing.T) (time.Duration, error) {
	t.Helper()
	select {
	case <-r.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no retry")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waits[len(r.waits)-1], r.errs[len(r.errs)-1]
}

// sleeping waits until Subscribe's wait is on the clock, so that stepping the clock reaches it.
func sleeping(t *testing.T, clk *testingclock.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for clk.Waiters() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Subscribe is not waiting on the clock")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestSubscribeWaitsWhatTheServerAsks checks the wait after a refused connection, on a fake
// clock: no second request is sent before the clock has moved by that wait.
func TestSubscribeWaitsWhatTheServerAsks(t *testing.T) {
	tests := map[string]struct {
		header   http.Header
		status   int
		min, max time.Duration
	}{
		"429 Retry-After":              {status: 429, header: http.Header{"Retry-After": {"7"}}, min: 7 * time.Second, max: 7 * time.Second},
		"429 x-ratelimit-reset":        {status: 429, header: http.Header{"X-Ratelimit-Reset": {strconv.FormatInt(t0.Unix()+30, 10)}}, min: 30 * time.Second, max: 30 * time.Second},
		"429 Retry-After over MaxHold": {status: 429, header: http.Header{"Retry-After": {"86400"}}, min: DefaultMaxHold, max: DefaultMaxHold},
		"429 with neither: backoff":    {status: 429, min: time.Second, max: 1250 * time.Millisecond},
		"503: backoff":                 {status: 503, min: time.Second, max: 1250 * time.Millisecond},
		"200 that is not a stream":     {status: 200, header: http.Header{"Content-Type": {"text/html"}}, min: time.Second, max: 1250 * time.Millisecond},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				if n > 0 {
					stream(w)
					<-r.Context().Done()
					return
				}
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(`{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}`))
			})
			clk := testingclock.NewFakeClock(t0)
			rs := newRetries()
			c := newTestClient(t, ts, func(c *Config) { c.Clock, c.OnRetry = clk, rs.on })
			stop, _ := subscribe(t, c, From{Offset: "o1"}, newCollector())
			wait, err := rs.wait(t)
			if wait < tc.min || wait > tc.max {
				t.Fatalf("waits %v after %v, want [%v, %v]", wait, err, tc.min, tc.max)
			}
			sleeping(t, clk)
			clk.Step(wait - time.Millisecond)
			time.Sleep(50 * time.Millisecond)
			if n := ts.count(); n != 1 {
				t.Fatalf("%d requests before the wait was over", n)
			}
			clk.Step(time.Millisecond)
			ts.waitRequest(t, 1)
			if got := ts.request(1).lastEventID; got != "o1" {
				t.Errorf("the retry resumed from %q, want o1", got)
			}
			_ = stop()
		})
	}
}

func TestSubscribeBackoffGrowsAndResets(t *testing.T) {
	ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch n {
		case 0, 1, 2, 4:
			w.WriteHeader(http.StatusServiceUnavailable)
		case 3:
			stream(w)
			send(w, "retry: 0\n\n")
		default:
			stream(w)
			<-r.Context().Done()
		}
	})
	clk := testingclock.NewFakeClock(t0)
	rs := newRetries()
	c := newTestClient(t, ts, func(c *Config) { c.Clock, c.OnRetry = clk, rs.on })
	stop, _ := subscribe(t, c, From{}, newCollector())
	for i, base := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, time.Second} {
		wait, _ := rs.wait(t)
		if wait < base || wait > base+base/4 {
			t.Fatalf("failure %d: waits %v, want [%v, %v]", i, wait, base, base+base/4)
		}
		sleeping(t, clk)
		clk.Step(wait)
	}
	ts.waitRequest(t, 5)
	_ = stop()
}

func TestSubscribeReconnectsWhenTheStreamFallsSilent(t *testing.T) {
	firstClosed := make(chan struct{})
	ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		if n == 0 {
			send(w, "retry: 0\n\n"+eventFrame("user.updated", "evt_1", "o1", "u", t0))
			<-r.Context().Done() // silent until the client gives up on it
			close(firstClosed)
			return
		}
		<-r.Context().Done()
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, func(c *Config) { c.IdleTimeout = 200 * time.Millisecond }), From{}, col)
	ts.waitRequest(t, 1)
	select {
	case <-firstClosed:
	case <-time.After(5 * time.Second):
		t.Fatal("the silent connection was not closed")
	}
	if got := ts.request(1).lastEventID; got != "o1" {
		t.Errorf("resumed from %q, want o1", got)
	}
	_ = stop()
}

func TestSubscribeWithoutOffsetReconnectsFromItsStart(t *testing.T) {
	ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		if n == 0 {
			send(w, "retry: 0\n\n") // closes before any offset
			return
		}
		<-r.Context().Done()
	})
	clk := testingclock.NewFakeClock(t0)
	stop, _ := subscribe(t, newTestClient(t, ts, func(c *Config) { c.Clock = clk }), From{}, newCollector())
	ts.waitRequest(t, 1)
	_ = stop()
	want := t0.Add(-resumeMargin).Format(time.RFC3339Nano)
	if got := ts.request(1).query["from_timestamp"]; len(got) != 1 || got[0] != want {
		t.Fatalf("from_timestamp %v, want %s", got, want)
	}
}

// An error frame other than an expired offset is a failure to back off from, even after
// events: a server that fails every stream must not be reconnected to in a hot loop. The
// reconnect resumes from the offset the frame names.
func TestSubscribeBacksOffAfterAnErrorFrame(t *testing.T) {
	ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		if n == 0 {
			send(w, "retry: 0\n\n"+eventFrame("user.updated", "evt_1", "o1", "u", t0))
			send(w, "event: error\ndata: {\"error\":{\"code\":\"processing_error\",\"message\":\"oops\",\"offset\":\"o2\"}}\n\n")
			return
		}
		<-r.Context().Done()
	})
	clk := testingclock.NewFakeClock(t0)
	rs := newRetries()
	c := newTestClient(t, ts, func(c *Config) { c.Clock, c.OnRetry = clk, rs.on })
	stop, _ := subscribe(t, c, From{}, newCollector())
	wait, err := rs.wait(t)
	if wait < time.Second || wait > 1250*time.Millisecond {
		t.Fatalf("waits %v after %v, want the first backoff", wait, err)
	}
	sleeping(t, clk)
	clk.Step(wait)
	ts.waitRequest(t, 1)
	if got := ts.request(1).lastEventID; got != "o2" {
		t.Errorf("resumed from %q, want the error frame's o2", got)
	}
	_ = stop()
}
