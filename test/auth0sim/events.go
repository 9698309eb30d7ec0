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

package auth0sim

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// The Events API (GET /api/v2/events) is a Server-Sent Events stream, as Auth0 documents it
// ("Consume Events with the Events API"): a ":connected" comment, a retry: directive, one
// frame per event (event: <type>, id: <offset>, data: {"offset","event":{CloudEvent}}),
// ": heartbeat" comments with "event: offset-only" frames, and a terminal "event: error"
// frame. The offset is opaque; a client resumes with Last-Event-ID (which wins) or ?from=.
// Events are published by Login (user.updated), DeleteUser (user.deleted), AddConnection
// (connection.created, or connection.updated for an existing ID) and PublishEvent.

// ScopeReadEvents is the scope GET /api/v2/events requires.
const ScopeReadEvents = "read:events"

// Event types the simulator publishes.
const (
	EventUserCreated       = "user.created"
	EventUserUpdated       = "user.updated"
	EventUserDeleted       = "user.deleted"
	EventConnectionCreated = "connection.created"
	EventConnectionUpdated = "connection.updated"
	EventConnectionDeleted = "connection.deleted"
)

// eventTypes are the event_type values a stream accepts; any other answers 400.
var eventTypes = map[string]bool{
	EventUserCreated: true, EventUserUpdated: true, EventUserDeleted: true,
	EventConnectionCreated: true, EventConnectionUpdated: true, EventConnectionDeleted: true,
}

// EventsOptions shapes the simulated Events API. The zero value is a plain stream: no
// cycling, no duplicates, in order, everything kept. Durations marked "wall clock" are
// connection behaviour and use real time; Retention uses Options.Clock, like event times.
type EventsOptions struct {
	// CloseEvery closes each stream this long after it opened (wall clock), as Auth0 cycles
	// connections "every few minutes". 0: never.
	CloseEvery time.Duration
	// Retry is the retry: directive sent when a stream opens. 0: none.
	Retry time.Duration
	// Heartbeat is the interval of ": heartbeat" comments and offset-only frames (wall
	// clock). Default one second.
	Heartbeat time.Duration
	// MinReconnect answers 429 (Retry-After) to an M2M client that opens a stream sooner than
	// this after it last opened one (wall clock). 0: no check.
	MinReconnect time.Duration
	// MaxStreams answers 429 to a stream opened while this many are open (Auth0 limits
	// connections per plan: Free 1, self-service 4, Enterprise 8). 0: no limit.
	MaxStreams int
	// Retention drops events older than this (Options.Clock). Resuming from an offset before
	// a dropped event answers 410. 0: events are kept.
	Retention time.Duration
	// DuplicateEvery writes every Nth event twice in a row. 0: never.
	DuplicateEvery int
	// OutOfOrder logs events in swapped pairs: the later of two is streamed first, so stream
	// order differs from the order of time, as Auth0 allows. A lone first of a pair waits at
	// most one Heartbeat (or FlushEvents).
	OutOfOrder bool
}

// EventsStats are counters of the Events API.
type EventsStats struct {
	// Published counts events logged.
	Published int
	// StreamsOpened counts streams answered 200; StreamsOpen is how many are open now.
	StreamsOpened, StreamsOpen int
	// Delivered counts event frames written, duplicates included.
	Delivered int
	// Refused counts 429 answers of the events endpoint.
	Refused int
	// Expired counts 410 answers and cursor_expired frames (FailStreams).
	Expired int
}

// eventRecord is one logged event; seq is its position (the first is 1).
type eventRecord struct {
	seq  uint64
	typ  string
	at   time.Time // Options.Clock
	body []byte    // the CloudEvent JSON
}

// eventLog is the Events API's state. Its mutex is taken after Server.mu, never before.
type eventLog struct {
	mu       sync.Mutex
	opts     EventsOptions
	records  []eventRecord // kept events, by seq
	last     uint64        // seq of the newest event
	pruned   uint64        // seq of the newest dropped event
	held     []byte        // OutOfOrder: the first of a pair, not yet logged
	heldTyp  string
	heldAt   time.Time // Options.Clock time of the held event
	heldWall time.Time
	notify   chan struct{} // closed and replaced when records change
	lastOpen map[string]time.Time
	failCode string // of the last FailStreams
	failGen  uint64 // counts FailStreams calls
	stats    EventsStats
}

// SetEventsOptions sets the shapes of the Events API; open streams see them from their next
// frame.
func (s *Server) SetEventsOptions(o EventsOptions) {
	if o.CloseEvery < 0 || o.Retry < 0 || o.Heartbeat < 0 || o.MinReconnect < 0 || o.MaxStreams < 0 ||
		o.Retention < 0 || o.DuplicateEvery < 0 {
		panic("auth0sim: SetEventsOptions: negative option")
	}
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	s.events.opts = o
}

// EventsStats returns a snapshot of the Events API counters.
func (s *Server) EventsStats() EventsStats {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	return s.events.stats
}

// PublishEvent logs an event of the given type about object (data.object) and returns its
// event id. The type need not be one the simulator publishes itself.
func (s *Server) PublishEvent(eventType string, object map[string]any) string {
	return s.publish(eventType, object, s.clk.Now())
}

// FailStreams ends every open stream with an "event: error" frame of the given code, as Auth0
// does before it closes a stream: cursor_expired, invalid_cursor, timeout, payload_too_large,
// processing_error or connection_timeout. The frame carries the stream's offset.
func (s *Server) FailStreams(code string) {
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failCode = code
	l.failGen++
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
}

// FlushEvents logs an event that OutOfOrder holds back for its pair.
func (s *Server) FlushEvents() {
	s.events.mu.Lock()
	defer s.events.mu.Unlock()
	s.events.flushHeldLocked()
}

// publishUserLocked publishes an event about a user, rendered without tokens. Callers hold s.mu.
func (s *Server) publishUserLocked(eventType string, u *user, now time.Time) {
	s.publish(eventType, s.renderUserLocked(u, false), now)
}

// publishConnectionLocked publishes an event about a connection, rendered without secrets.
// Callers hold s.mu.
func (s *Server) publishConnectionLocked(eventType string, c *connection, now time.Time) {
	obj := map[string]any{}
	if b, err := json.Marshal(s.renderConnectionLocked(c, false)); err == nil {
		_ = json.Unmarshal(b, &obj)
	}
	s.publish(eventType, obj, now)
}

func (s *Server) publish(eventType string, object map[string]any, now time.Time) string {
	id := "evt_" + alnum(22)
	body, err := json.Marshal(map[string]any{
		"specversion": "1.0",
		"type":        eventType,
		"source":      "urn:auth0:" + s.domain,
		"id":          id,
		"time":        now.UTC().Format(time.RFC3339Nano),
		"data":        map[string]any{"object": object},
		"a0tenant":    "sim",
		"a0stream":    "est_sim",
	})
	if err != nil {
		panic(fmt.Sprintf("auth0sim: PublishEvent: %v", err))
	}
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stats.Published++
	if !l.opts.OutOfOrder {
		l.appendLocked(eventType, now, body)
		return id
	}
	if l.held == nil {
		l.held, l.heldTyp, l.heldAt, l.heldWall = body, eventType, now, time.Now()
		return id
	}
	l.appendLocked(eventType, now, body)
	l.flushHeldLocked()
	return id
}

func (l *eventLog) flushHeldLocked() {
	if l.held != nil {
		l.appendLocked(l.heldTyp, l.heldAt, l.held)
		l.held = nil
	}
}

func (l *eventLog) appendLocked(typ string, at time.Time, body []byte) {
	l.last++
	l.records = append(l.records, eventRecord{seq: l.last, typ: typ, at: at, body: body})
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
}

// pruneLocked drops the events older than the retention.
func (l *eventLog) pruneLocked(now time.Time) {
	if l.opts.Retention <= 0 {
		return
	}
	n := 0
	for n < len(l.records) && now.Sub(l.records[n].at) > l.opts.Retention {
		l.pruned = l.records[n].seq
		n++
	}
	l.records = append(l.records[:0], l.records[n:]...)
}

// changed returns a channel closed at the next append.
func (l *eventLog) changedLocked() <-chan struct{} {
	if l.notify == nil {
		l.notify = make(chan struct{})
	}
	return l.notify
}

const alnumChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// alnum returns n random letters and digits, the alphabet of Auth0's event ids.
func alnum(n int) string {
	b := make([]byte, n)
	limit := big.NewInt(int64(len(alnumChars)))
	for i := range b {
		v, err := rand.Int(rand.Reader, limit)
		if err != nil {
			panic(fmt.Sprintf("auth0sim: crypto/rand: %v", err))
		}
		b[i] = alnumChars[v.Int64()]
	}
	return string(b)
}
