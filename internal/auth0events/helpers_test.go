package auth0events

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testToken is the bearer token of the tests; no error or output may contain it.
const testToken = "tok-0123456789abcdefghijKLMNOP"

// seen is what the test server kept of one request.
type seen struct {
	query       map[string][]string
	lastEventID string
	auth        string
	accept      string
}

// testServer is an HTTPS server whose handler gets the request number (from 0).
type testServer struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []seen
	active  atomic.Int32 // handlers running
	conns   atomic.Int32 // connections open
	arrived chan int     // request numbers, as they arrive
}

func newTestServer(t *testing.T, handler func(n int, w http.ResponseWriter, r *http.Request)) *testServer {
	t.Helper()
	ts := &testServer{arrived: make(chan int, 1000)}
	ts.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts.active.Add(1)
		defer ts.active.Add(-1)
		ts.mu.Lock()
		n := len(ts.reqs)
		ts.reqs = append(ts.reqs, seen{
			query: r.URL.Query(), lastEventID: r.Header.Get("Last-Event-ID"),
			auth: r.Header.Get("Authorization"), accept: r.Header.Get("Accept"),
		})
		ts.mu.Unlock()
		ts.arrived <- n
		handler(n, w, r)
	}))
	ts.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			ts.conns.Add(1)
		case http.StateClosed, http.StateHijacked:
			ts.conns.Add(-1)
		}
	}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts
}

func (ts *testServer) request(n int) seen {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.reqs[n]
}

func (ts *testServer) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.reqs)
}

// waitRequest waits for request n to arrive.
func (ts *testServer) waitRequest(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case got := <-ts.arrived:
			if got >= n {
				return
			}
		case <-timeout:
			t.Fatalf("request %d did not arrive (%d so far)", n, ts.count())
		}
	}
}

// newTestClient builds a Client for ts; mutate may change the config.
func newTestClient(t *testing.T, ts *testServer, mutate func(*Config)) *Client {
	t.Helper()
	cfg := Config{
		Domain:        strings.TrimPrefix(ts.URL, "https://"),
		HTTPClient:    ts.Client(),
		Token:         func(context.Context) (string, error) { return testToken, nil },
		ReorderWindow: -1,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// stream starts an event stream answer.
func stream(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flush(w)
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }

// send writes raw SSE text and flushes it.
func send(w http.ResponseWriter, text string) {
	_, _ = fmt.Fprint(w, text)
	flush(w)
}

// eventFrame renders an Auth0 event message.
func eventFrame(typ, evtID, offset, userID string, happened time.Time) string {
	return fmt.Sprintf("event: %s\nid: %s\ndata: {\"offset\":%q,\"event\":{\"id\":%q,\"type\":%q,\"time\":%q,"+
		"\"data\":{\"object\":{\"user_id\":%q}}}}\n\n",
		typ, offset, offset, evtID, typ, happened.UTC().Format(time.RFC3339Nano), userID)
}

// collector records what Subscribe hands out, in order.
type collector struct {
	mu  sync.Mutex
	log []string
	evs []Event
	got chan struct{}
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1000)} }

func (c *collector) handle(ev Event) {
	c.mu.Lock()
	c.evs = append(c.evs, ev)
	c.log = append(c.log, "event "+ev.ID)
	c.mu.Unlock()
	c.got <- struct{}{}
}

func (c *collector) checkpoint(off string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.log = append(c.log, "checkpoint "+off)
}

func (c *collector) ids() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.evs {
		out = append(out, e.ID)
	}
	return out
}

func (c *collector) entries() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.log...)
}

// waitEvents waits until n events were handled.
func (c *collector) waitEvents(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-c.got:
		case <-timeout:
			t.Fatalf("%d of %d events handled: %v", i, n, c.ids())
		}
	}
}

// subscribe runs Subscribe in the background; the returned func cancels it and returns its error.
func subscribe(t *testing.T, c *Client, from From, col *collector) (stop func() error, done <-chan error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- c.Subscribe(ctx, from, col.handle, col.checkpoint) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-errc:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("Subscribe did not return after its context ended")
			return nil
		}
	}, errc
}
