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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

var eventIDPattern = regexp.MustCompile(`^evt_[a-zA-Z0-9]{22}$`)

// TestEventsForLoginDeleteAndConnectionChange checks the hooks and the documented frame shape:
// event: <type>, id: <offset> (= data.offset), a CloudEvent with id, type, time and
// data.object, and never a token or a client secret.
func TestEventsForLoginDeleteAndConnectionChange(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	seedUsers(s)
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_oauth2", Name: "my-oauth2", Strategy: "oauth2", IdP: "google"})
	es, r := openEvents(t, s, c, eventsToken(t, s, c), nil, nil)
	if es == nil || r.header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("open: %s, Content-Type %q", brief(r), r.header.Get("Content-Type"))
	}
	if f, _ := es.next(t, func(sseFrame) bool { return true }); len(f.comments) != 1 || f.comments[0] != "connected" {
		t.Errorf("the stream does not start with :connected: %+v", f)
	}

	clk.Step(time.Minute)
	s.Login("google-oauth2|123")
	s.DeleteUser("google-oauth2|123")
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_oauth2", Name: "my-oauth2", Strategy: "oauth2", IdP: "google"})
	s.DeleteUser("nobody") // no event for an unknown user

	want := []struct{ typ, key, value string }{
		{auth0sim.EventUserUpdated, "user_id", "google-oauth2|123"},
		{auth0sim.EventUserDeleted, "user_id", "google-oauth2|123"},
		{auth0sim.EventConnectionUpdated, "id", "con_oauth2"},
	}
	var lastOffset string
	for _, w := range want {
		f := es.nextEvent(t)
		m := f.message(t)
		if f.event != w.typ || m.Event.Type != w.typ || f.id == "" || m.Offset != f.id || f.id == lastOffset {
			t.Errorf("frame %q id %q: message type %q offset %q", f.event, f.id, m.Event.Type, m.Offset)
		}
		lastOffset = f.id
		if !eventIDPattern.MatchString(m.Event.ID) || m.Event.SpecVersion != "1.0" || !strings.HasPrefix(m.Event.Source, "urn:auth0:") {
			t.Errorf("CloudEvent fields: %+v", m.Event)
		}
		if got, err := time.Parse(time.RFC3339Nano, m.Event.Time); err != nil || !got.Equal(clk.Now()) {
			t.Errorf("time %q, want the simulator's clock %v", m.Event.Time, clk.Now())
		}
		if got, _ := m.Event.Data.Object[w.key].(string); got != w.value {
			t.Errorf("%s: data.object.%s = %q, want %q", w.typ, w.key, got, w.value)
		}
		if auth0sim.TokenPattern.MatchString(f.data) || strings.Contains(f.data, "g-secret") {
			t.Errorf("%s carries a token or a secret", w.typ)
		}
	}
	if m := es.nextEventOrNone(t, 200*time.Millisecond); m != nil {
		t.Errorf("an event for an unknown user's deletion: %+v", *m)
	}
}

// nextEventOrNone returns the next event frame within d, or nil.
func (es *eventStream) nextEventOrNone(t *testing.T, d time.Duration) *sseFrame {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-es.frames:
			if !ok {
				return nil
			}
			if f.event != "" && f.event != "offset-only" {
				return &f
			}
		case <-deadline:
			return nil
		}
	}
}

func TestEventsRefusals(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	tok := eventsToken(t, s, c)
	tests := map[string]struct {
		token  string
		query  url.Values
		header http.Header
		status int
		code   string
	}{
		"without read:events":       {token: m2mToken(t, s, c, auth0sim.ScopeReadUsers), status: 403, code: "insufficient_scope"},
		"an unknown event type":     {token: tok, query: url.Values{"event_type": {"user.updated", "user.exploded"}}, status: 400},
		"a malformed offset":        {token: tok, query: url.Values{"from": {"not-an-offset"}}, status: 400, code: "invalid_offset"},
		"a malformed Last-Event-ID": {token: tok, header: http.Header{"Last-Event-Id": {"%%%"}}, status: 400, code: "invalid_offset"},
		"a bad from_timestamp":      {token: tok, query: url.Values{"from_timestamp": {"yesterday"}}, status: 400},
		"an unknown token":          {token: "nope", status: 401},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			es, r := openEvents(t, s, c, tc.token, tc.query, tc.header)
			if es != nil || r.status != tc.status {
				t.Fatalf("status %d, want %d", r.status, tc.status)
			}
			if tc.code != "" {
				if got, _ := r.object(t)["errorCode"].(string); got != tc.code {
					t.Errorf("errorCode %q, want %q", got, tc.code)
				}
			}
		})
	}
}

func TestEventsResumeAndStartingPoints(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	tok := eventsToken(t, s, c)
	// Learn the offsets of three events from a stream.
	es, _ := openEvents(t, s, c, tok, nil, nil)
	ids := []string{s.PublishEvent("user.updated", map[string]any{"user_id": "a"})}
	clk.Step(time.Minute)
	ids = append(ids, s.PublishEvent("user.updated", map[string]any{"user_id": "b"}))
	clk.Step(time.Minute)
	ids = append(ids, s.PublishEvent("user.deleted", map[string]any{"user_id": "c"}))
	var offsets []string
	for range ids {
		offsets = append(offsets, es.nextEvent(t).id)
	}
	es.close()

	tests := map[string]struct {
		query  url.Values
		header http.Header
		want   []string // event ids, in order
	}{
		"from an offset":                    {query: url.Values{"from": {offsets[0]}}, want: ids[1:]},
		"Last-Event-ID":                     {header: http.Header{"Last-Event-Id": {offsets[1]}}, want: ids[2:]},
		"Last-Event-ID wins over from":      {query: url.Values{"from": {offsets[0]}}, header: http.Header{"Last-Event-Id": {offsets[1]}}, want: ids[2:]},
		"from_timestamp":                    {query: url.Values{"from_timestamp": {t0.Add(time.Minute).Format(time.RFC3339Nano)}}, want: ids[1:]},
		"filtered by type":                  {query: url.Values{"from": {offsets[0]}, "event_type": {"user.deleted"}}, want: ids[2:]},
		"without a position: only new ones": {want: nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			es, r := openEvents(t, s, c, tok, tc.query, tc.header)
			if es == nil {
				t.Fatalf("open: %s", brief(r))
			}
			var got []string
			for m := es.nextEventOrNone(t, 300*time.Millisecond); m != nil; m = es.nextEventOrNone(t, 300*time.Millisecond) {
				got = append(got, m.message(t).Event.ID)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("events %v, want %v", got, tc.want)
			}
		})
	}
}
