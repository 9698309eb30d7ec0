package auth0events

import (
	"context"
	"errors"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestSubscribeLeavesNothingBehind ends Subscribe in each of its states and checks that the
// server saw the connection end and that no goroutine of it is left.
func TestSubscribeLeavesNothingBehind(t *testing.T) {
	tests := map[string]struct {
		handler func(n int, w http.ResponseWriter, r *http.Request)
		// ready waits until Subscribe is in the state to end it in.
		ready func(ts *testServer, col *collector)
	}{
		"while streaming heartbeats": {
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				stream(w)
				send(w, eventFrame("user.updated", "evt_1", "o1", "u", t0))
				for {
					select {
					case <-r.Context().Done():
						return
					case <-time.After(5 * time.Millisecond):
						send(w, ": heartbeat\n\n")
					}
				}
			},
			ready: func(ts *testServer, _ *collector) { <-ts.arrived; time.Sleep(50 * time.Millisecond) },
		},
		"while waiting for the headers": {
			handler: func(_ int, _ http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			ready:   func(ts *testServer, _ *collector) { <-ts.arrived },
		},
		"while holding an event for reordering": {
			handler: func(_ int, w http.ResponseWriter, r *http.Request) {
				stream(w)
				send(w, eventFrame("user.updated", "evt_1", "o1", "u", t0))
				<-r.Context().Done()
			},
			ready: func(ts *testServer, _ *collector) { <-ts.arrived; time.Sleep(50 * time.Millisecond) },
		},
		"while backing off": {
			handler: func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) },
			ready:   func(ts *testServer, _ *collector) { <-ts.arrived; time.Sleep(50 * time.Millisecond) },
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, tc.handler)
			tr := ts.Client().Transport.(*http.Transport)
			before := runtime.NumGoroutine()
			col := newCollector()
			c := newTestClient(t, ts, func(c *Config) { c.ReorderWindow = time.Hour })
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() { errc <- c.Subscribe(ctx, From{}, col.handle, nil) }()
			tc.ready(ts, col)
			cancel()
			if err := waitErr(t, errc); !errors.Is(err, context.Canceled) {
				t.Fatalf("Subscribe = %v", err)
			}
			tr.CloseIdleConnections()
			deadline := time.Now().Add(5 * time.Second)
			for ts.active.Load() != 0 || ts.conns.Load() != 0 || runtime.NumGoroutine() > before {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("left behind: %d handlers, %d connections, %d goroutines (were %d)\n%s",
						ts.active.Load(), ts.conns.Load(), runtime.NumGoroutine(), before,
						ours(string(buf[:runtime.Stack(buf, true)])))
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

// ours keeps the goroutine dumps that mention this package.
func ours(dump string) string {
	var keep []string
	for _, g := range strings.Split(dump, "\n\n") {
		if strings.Contains(g, "auth0events") || strings.Contains(g, "net/http") {
			keep = append(keep, g)
		}
	}
	return strings.Join(keep, "\n\n")
}
