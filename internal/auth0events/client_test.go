package auth0events

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func waitErr(t *testing.T, errc <-chan error) error {
	t.Helper()
	select {
	case err := <-errc:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Subscribe did not return")
		return nil
	}
}

func TestSubscribeResumesFromTheLastOffset(t *testing.T) {
	ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		switch n {
		case 0:
			send(w, ":connected\n\nretry: 10\n\n")
			send(w, eventFrame("user.updated", "evt_1", "o1", "github|1", t0))
			send(w, eventFrame("user.deleted", "evt_2", "o2", "github|2", t0))
			// Returning closes the stream, as Auth0 does every few minutes.
		default:
			send(w, eventFrame("user.updated", "evt_3", "o3", "github|3", t0))
			<-r.Context().Done()
		}
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, nil), From{}, col)
	col.waitEvents(t, 3)
	if err := stop(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Subscribe = %v, want context.Canceled", err)
	}
	if got := col.ids(); !reflect.DeepEqual(got, []string{"evt_1", "evt_2", "evt_3"}) {
		t.Fatalf("events %v", got)
	}
	first, second := ts.request(0), ts.request(1)
	if first.lastEventID != "" || first.query["from"] != nil || first.query["from_timestamp"] != nil {
		t.Errorf("the first connection asked for a position: %+v", first)
	}
	if !reflect.DeepEqual(first.query["event_type"], DefaultTypes) || first.auth != "Bearer "+testToken || first.accept != "text/event-stream" {
		t.Errorf("first request %+v", first)
	}
	if second.lastEventID != "o2" || !reflect.DeepEqual(second.query["from"], []string{"o2"}) {
		t.Errorf("the reconnect resumed with Last-Event-ID %q, from %v; want o2", second.lastEventID, second.query["from"])
	}
}

func TestSubscribeDropsDuplicatesAndOrdersByTime(t *testing.T) {
	ts := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		if n == 0 {
			send(w, eventFrame("user.updated", "evt_b", "o1", "u", t0.Add(time.Second)))
			send(w, eventFrame("user.updated", "evt_a", "o2", "u", t0))
			send(w, eventFrame("user.updated", "evt_b", "o3", "u", t0.Add(time.Second)))
			send(w, "retry: 0\n\n")
			return
		}
		// The reconnect replays the last event before the offset, as an at-least-once
		// stream may.
		send(w, eventFrame("user.updated", "evt_a", "o2", "u", t0))
		send(w, eventFrame("user.deleted", "evt_c", "o4", "u", t0.Add(2*time.Second)))
		<-r.Context().Done()
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, func(c *Config) { c.ReorderWindow = 300 * time.Millisecond }), From{}, col)
	col.waitEvents(t, 3)
	time.Sleep(400 * time.Millisecond) // time for a wrongly kept duplicate to show
	_ = stop()
	if got := col.ids(); !reflect.DeepEqual(got, []string{"evt_a", "evt_b", "evt_c"}) {
		t.Fatalf("events %v, want evt_a, evt_b, evt_c", got)
	}
}

func TestSubscribeCheckpointNeverPassesAHeldEvent(t *testing.T) {
	ts := newTestServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		send(w, eventFrame("user.updated", "evt_1", "o1", "u", t0))
		send(w, "event: offset-only\nid: o2\ndata: {\"offset\":\"o2\"}\n\n")
		<-r.Context().Done()
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, func(c *Config) { c.ReorderWindow = 300 * time.Millisecond }), From{}, col)
	col.waitEvents(t, 1)
	time.Sleep(100 * time.Millisecond)
	_ = stop()
	if got, want := col.entries(), []string{"event evt_1", "checkpoint o2"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSubscribeOffsetOnlyAdvancesTheCheckpoint(t *testing.T) {
	ts := newTestServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		send(w, "event: offset-only\nid: o7\ndata: {\"offset\":\"o7\"}\n\n: heartbeat\n\n")
		send(w, "event: offset-only\ndata: {\"offset\":\"o8\"}\n\n")
		<-r.Context().Done()
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, nil), From{Offset: "o6"}, col)
	deadline := time.Now().Add(5 * time.Second)
	for len(col.entries()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	_ = stop()
	if got, want := col.entries(), []string{"checkpoint o7", "checkpoint o8"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if r := ts.request(0); r.lastEventID != "o6" || r.query["from"][0] != "o6" {
		t.Errorf("did not start from the given offset: %+v", r)
	}
}

func TestSubscribeFailuresThatWaitingCannotHelp(t *testing.T) {
	tests := map[string]struct {
		status  int
		body    string
		frame   string // instead of a status: an error frame in a stream
		expired bool
		notAuth bool
	}{
		"410 Gone":             {status: 410, body: `{"statusCode":410,"error":"Gone","message":"offset expired"}`, expired: true},
		"cursor_expired frame": {frame: `{"error":{"code":"cursor_expired","message":"expired","offset":"o5"}}`, expired: true},
		"invalid_cursor frame": {frame: `{"error":{"code":"invalid_cursor","message":"bad"}}`, expired: true},
		"401 echoing the token": {status: 401, notAuth: true,
			body: `{"statusCode":401,"error":"Unauthorized","message":"Invalid token ` + testToken + `","errorCode":"invalid_token"}`},
		"403 without read:events": {status: 403, notAuth: true,
			body: `{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:events","errorCode":"insufficient_scope"}`},
		"400 unsupported type": {status: 400, body: `{"statusCode":400,"error":"Bad Request","message":"event_type not supported"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tc.frame != "" {
					stream(w)
					send(w, "event: error\ndata: "+tc.frame+"\n\n")
					return
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			})
			retried := false
			c := newTestClient(t, ts, func(c *Config) { c.OnRetry = func(error, time.Duration) { retried = true } })
			_, errc := subscribe(t, c, From{Offset: "o1"}, newCollector())
			err := waitErr(t, errc)
			if errors.Is(err, ErrOffsetExpired) != tc.expired || IsNotAuthorized(err) != tc.notAuth {
				t.Errorf("err %v: expired %v, not authorized %v", err, errors.Is(err, ErrOffsetExpired), IsNotAuthorized(err))
			}
			if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), "0123456789abcdefghij") {
				t.Errorf("the error holds the token: %v", err)
			}
			if retried || ts.count() != 1 {
				t.Errorf("retried (%v) or sent %d requests", retried, ts.count())
			}
		})
	}
}

func TestSubscribeReturnsTheTokenError(t *testing.T) {
	errNoToken := errors.New("no token for you")
	ts := newTestServer(t, func(int, http.ResponseWriter, *http.Request) {})
	c := newTestClient(t, ts, func(c *Config) {
		c.Token = func(context.Context) (string, error) { return "", errNoToken }
	})
	_, errc := subscribe(t, c, From{}, newCollector())
	if err := waitErr(t, errc); !errors.Is(err, errNoToken) || ts.count() != 0 {
		t.Fatalf("Subscribe = %v after %d requests, want the token error and none", err, ts.count())
	}
}

func TestSubscribeIncompleteEvent(t *testing.T) {
	ts := newTestServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		send(w, "event: user.updated\nid: o1\ndata: {\"event\":{\"id\":\"evt_big\",\"x\":\""+strings.Repeat("x", 2<<20)+"\"}}\n\n")
		send(w, eventFrame("user.updated", "evt_2", "o2", "u2", t0))
		<-r.Context().Done()
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, func(c *Config) { c.MaxEventBytes = 64 << 10 }), From{}, col)
	col.waitEvents(t, 2)
	_ = stop()
	want := []Event{{Type: "user.updated", Offset: "o1", Incomplete: true}, {ID: "evt_2", Type: "user.updated", Time: t0, UserID: "u2", Offset: "o2"}}
	col.mu.Lock()
	defer col.mu.Unlock()
	for i := range col.evs {
		col.evs[i].seq = 0
	}
	if !reflect.DeepEqual(col.evs, want) {
		t.Fatalf("got  %+v\nwant %+v", col.evs, want)
	}
}

// A frame without an event object is a position marker, whatever it is called: it must not
// reach the handler as an Incomplete event (which would make the caller re-read everything).
func TestSubscribeMarkersWithoutAnEventAreNotEvents(t *testing.T) {
	ts := newTestServer(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		stream(w)
		send(w, "id: o1\ndata: {\"offset\":\"o1\"}\n\n")
		send(w, "event: keepalive\nid: o2\ndata: {\"offset\":\"o2\"}\n\n")
		send(w, eventFrame("user.updated", "evt_3", "o3", "u", t0))
		<-r.Context().Done()
	})
	col := newCollector()
	stop, _ := subscribe(t, newTestClient(t, ts, nil), From{}, col)
	col.waitEvents(t, 1)
	_ = stop()
	if got, want := col.entries(), []string{"checkpoint o1", "checkpoint o2", "event evt_3", "checkpoint o3"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
