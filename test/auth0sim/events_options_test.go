/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func TestEventsCloseEveryAndRetry(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.SetEventsOptions(auth0sim.EventsOptions{CloseEvery: 300 * time.Millisecond, Retry: 150 * time.Millisecond})
	es, r := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
	if es == nil {
		t.Fatalf("open: %s", brief(r))
	}
	f, _ := es.next(t, func(f sseFrame) bool { return f.retry != "" })
	if f.retry != "150" {
		t.Errorf("retry: %q, want 150", f.retry)
	}
	start := time.Now()
	es.ended(t, 5*time.Second)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("the stream ended after %v, want about 300ms", d)
	}
}

func TestEventsHeartbeatCarriesTheOffset(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.SetEventsOptions(auth0sim.EventsOptions{Heartbeat: 50 * time.Millisecond})
	s.PublishEvent("user.updated", map[string]any{"user_id": "a"})
	// The stream starts before a, which its filter passes over.
	es, _ := openEvents(t, s, c, eventsToken(t, s, c), url.Values{"event_type": {"user.deleted"}, "from_timestamp": {t0.Format(time.RFC3339Nano)}}, nil)
	es.next(t, func(f sseFrame) bool { return len(f.comments) == 1 && f.comments[0] == "heartbeat" })
	f, _ := es.next(t, func(f sseFrame) bool { return f.event == "offset-only" })
	// Resuming from that offset must not replay the filtered event's position.
	s.PublishEvent("user.deleted", map[string]any{"user_id": "b"})
	es2, r := openEvents(t, s, c, eventsToken(t, s, c), url.Values{"from": {f.id}}, nil)
	if es2 == nil {
		t.Fatalf("resume from the heartbeat's offset: %s", brief(r))
	}
	if m := es2.nextEvent(t).message(t); m.Event.Data.Object["user_id"] != "b" {
		t.Errorf("resumed at %+v", m.Event)
	}
	if f.id == "" || f.id != f.message(t).Offset {
		t.Errorf("heartbeat frame %+v", f)
	}
}

func TestEventsConnectionLimits(t *testing.T) {
	t.Run("reconnecting too fast", func(t *testing.T) {
		s, _ := newSim(t, auth0sim.Options{})
		c := clientFor(t, s)
		tok := eventsToken(t, s, c)
		s.SetEventsOptions(auth0sim.EventsOptions{MinReconnect: 700 * time.Millisecond})
		es, _ := openEvents(t, s, c, tok, nil, nil)
		es.close()
		if es2, r := openEvents(t, s, c, tok, nil, nil); es2 != nil || r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") != "1" {
			t.Fatalf("an immediate reconnect: %s, Retry-After %q; want 429 with Retry-After 1", brief(r), r.header.Get("Retry-After"))
		}
		time.Sleep(time.Second)
		if es3, r := openEvents(t, s, c, tok, nil, nil); es3 == nil {
			t.Fatalf("after Retry-After: %s", brief(r))
		}
		if got := s.EventsStats().Refused; got != 1 {
			t.Errorf("Refused %d, want 1", got)
		}
	})
	t.Run("too many streams", func(t *testing.T) {
		s, _ := newSim(t, auth0sim.Options{})
		c := clientFor(t, s)
		s.SetEventsOptions(auth0sim.EventsOptions{MaxStreams: 1})
		es, _ := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
		if _, r := openEvents(t, s, c, eventsToken(t, s, c, auth0sim.ScopeReadUsers), nil, nil); r.status != http.StatusTooManyRequests {
			t.Fatalf("a second stream: %s, want 429", brief(r))
		}
		es.close()
		deadline := time.Now().Add(5 * time.Second)
		for s.EventsStats().StreamsOpen != 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if es2, r := openEvents(t, s, c, eventsToken(t, s, c), nil, nil); es2 == nil {
			t.Fatalf("after the first closed: %s", brief(r))
		}
	})
}

func TestEventsRetention(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	tok := eventsToken(t, s, c)
	s.SetEventsOptions(auth0sim.EventsOptions{Retention: time.Hour})
	es, _ := openEvents(t, s, c, tok, nil, nil)
	s.PublishEvent("user.updated", map[string]any{"user_id": "a"})
	s.PublishEvent("user.updated", map[string]any{"user_id": "b"})
	afterA, afterB := es.nextEvent(t).id, es.nextEvent(t).id
	es.close()
	clk.Step(2 * time.Hour)
	s.PublishEvent("user.updated", map[string]any{"user_id": "c"})

	if _, r := openEvents(t, s, c, tok, url.Values{"from": {afterA}}, nil); r.status != http.StatusGone {
		t.Fatalf("resuming before a dropped event: %s, want 410", brief(r))
	}
	es2, r := openEvents(t, s, c, tok, url.Values{"from": {afterB}}, nil)
	if es2 == nil {
		t.Fatalf("resuming after the last dropped event: %s", brief(r))
	}
	if got := es2.nextEvent(t).message(t).Event.Data.Object["user_id"]; got != "c" {
		t.Errorf("resumed at user %v, want c", got)
	}
	if got := s.EventsStats().Expired; got != 1 {
		t.Errorf("Expired %d, want 1", got)
	}
}

func TestEventsDuplicatesAndDisorder(t *testing.T) {
	t.Run("DuplicateEvery", func(t *testing.T) {
		s, _ := newSim(t, auth0sim.Options{})
		c := clientFor(t, s)
		s.SetEventsOptions(auth0sim.EventsOptions{DuplicateEvery: 2})
		es, _ := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
		for _, u := range []string{"a", "b", "c", "d"} {
			s.PublishEvent("user.updated", map[string]any{"user_id": u})
		}
		var got []string
		for range 6 {
			got = append(got, es.nextEvent(t).message(t).Event.Data.Object["user_id"].(string))
		}
		if want := "a b b c d d"; join(got) != want {
			t.Errorf("stream %q, want %q", join(got), want)
		}
	})
	t.Run("OutOfOrder", func(t *testing.T) {
		s, clk := newSim(t, auth0sim.Options{})
		c := clientFor(t, s)
		s.SetEventsOptions(auth0sim.EventsOptions{OutOfOrder: true, Heartbeat: 50 * time.Millisecond})
		es, _ := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
		for _, u := range []string{"a", "b", "c"} {
			s.PublishEvent("user.updated", map[string]any{"user_id": u})
			clk.Step(time.Second)
		}
		var got []string
		var times []time.Time
		for range 3 { // c is alone: a heartbeat later it comes on its own
			m := es.nextEvent(t).message(t)
			got = append(got, m.Event.Data.Object["user_id"].(string))
			at, _ := time.Parse(time.RFC3339Nano, m.Event.Time)
			times = append(times, at)
		}
		if join(got) != "b a c" || !times[1].Before(times[0]) {
			t.Errorf("stream %q with times %v, want b a c with a before b", join(got), times)
		}
	})
}

func TestEventsFailStreams(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	es, _ := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
	s.PublishEvent("user.updated", map[string]any{"user_id": "a"})
	last := es.nextEvent(t)
	s.FailStreams("cursor_expired")
	f := es.nextEvent(t)
	m := f.message(t)
	if f.event != "error" || m.Error == nil || m.Error.Code != "cursor_expired" || m.Error.Offset != last.id {
		t.Fatalf("error frame %+v", f)
	}
	es.ended(t, 5*time.Second)
}

func TestEventsCloseWithAStreamOpen(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	es, _ := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return with a stream open")
	}
	es.ended(t, 5*time.Second)
}

func join(s []string) string { return strings.Join(s, " ") }
