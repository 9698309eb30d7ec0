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
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const defaultHeartbeat = time.Second

// offsetPrefix makes offsets opaque-looking and recognisable; offset(k) means "after event k".
const offsetPrefix = "simoff:"

func encodeOffset(seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(offsetPrefix + strconv.FormatUint(seq, 10)))
}

func decodeOffset(s string) (uint64, bool) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), offsetPrefix) {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(b[len(offsetPrefix):]), 10, 64)
	return seq, err == nil
}

// serveEvents serves GET /api/v2/events (rate limit and authentication are done).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, scopes map[string]bool) {
	if !scopes[ScopeReadEvents] {
		insufficientScope(w, ScopeReadEvents)
		return
	}
	types := map[string]bool{}
	for _, t := range r.URL.Query()["event_type"] {
		if !eventTypes[t] {
			writeAPIError(w, http.StatusBadRequest, fmt.Sprintf("Event type %q is not supported", t), "invalid_query_string")
			return
		}
		types[t] = true
	}
	next, ok := s.openStream(w, r)
	if !ok {
		return
	}
	defer func() {
		s.events.mu.Lock()
		s.events.stats.StreamsOpen--
		s.events.mu.Unlock()
	}()
	s.streamEvents(w, r, next, types)
}

// openStream checks the starting point and the connection limits and, when they allow it,
// counts the stream open; it returns the seq of the first event to send.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request) (uint64, bool) {
	client := s.bearerClient(r)
	from := r.Header.Get("Last-Event-ID") // Auth0: the header wins over ?from=
	if from == "" {
		from = r.URL.Query().Get("from")
	}
	var since time.Time
	if ts := r.URL.Query().Get("from_timestamp"); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil || from != "" {
			writeAPIError(w, http.StatusBadRequest, "from_timestamp must be an RFC 3339 time, and not given with from", "invalid_query_string")
			return 0, false
		}
		since = t
	}
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(s.clk.Now())
	wall := time.Now()
	if o := l.opts; o.MaxStreams > 0 && l.stats.StreamsOpen >= o.MaxStreams ||
		o.MinReconnect > 0 && wall.Sub(l.lastOpen[client]) < o.MinReconnect {
		l.stats.Refused++
		wait := max(l.opts.MinReconnect-wall.Sub(l.lastOpen[client]), time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
		writeAPIError(w, http.StatusTooManyRequests, "Too many event stream connections", "too_many_requests")
		return 0, false
	}
	next := l.last + 1
	switch {
	case from != "":
		k, ok := decodeOffset(from)
		if !ok {
			writeAPIError(w, http.StatusBadRequest, "The offset is malformed", "invalid_offset")
			return 0, false
		}
		if k < l.pruned {
			l.stats.Expired++
			writeAPIError(w, http.StatusGone, "The offset has expired", "offset_expired")
			return 0, false
		}
		next = min(k, l.last) + 1
	case !since.IsZero():
		next = l.last + 1
		for _, rec := range l.records {
			if !rec.at.Before(since) {
				next = rec.seq
				break
			}
		}
	}
	if l.lastOpen == nil {
		l.lastOpen = map[string]time.Time{}
	}
	l.lastOpen[client] = wall
	l.stats.StreamsOpened++
	l.stats.StreamsOpen++
	return next, true
}

// bearerClient names the M2M client whose token the request carries ("" if unknown).
func (s *Server) bearerClient(r *http.Request) string {
	_, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.m2mTokens[strings.TrimSpace(tok)]; ok {
		return t.clientID
	}
	return ""
}

// streamEvents writes the stream from seq next until the client goes, the server closes, or
// CloseEvery ends it.
func (s *Server) streamEvents(w http.ResponseWriter, r *http.Request, next uint64, types map[string]bool) {
	l := &s.events
	l.mu.Lock()
	opts, gen := l.opts, l.failGen
	l.mu.Unlock()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	var b strings.Builder
	b.WriteString(":connected\n\n")
	if opts.Retry > 0 {
		fmt.Fprintf(&b, "retry: %d\n\n", opts.Retry.Milliseconds())
	}
	var cycle <-chan time.Time
	if opts.CloseEvery > 0 {
		t := time.NewTimer(opts.CloseEvery)
		defer t.Stop()
		cycle = t.C
	}
	beat := opts.Heartbeat
	if beat == 0 {
		beat = defaultHeartbeat
	}
	heartbeat := time.NewTicker(beat)
	defer heartbeat.Stop()
	for {
		changed, failed := s.writePending(&b, &next, &gen, types)
		if _, err := w.Write([]byte(b.String())); err != nil || rc.Flush() != nil || failed {
			return
		}
		b.Reset()
		select {
		case <-changed:
		case <-heartbeat.C:
			l.mu.Lock()
			if l.held != nil && time.Since(l.heldWall) >= beat {
				l.flushHeldLocked()
			}
			l.mu.Unlock()
			fmt.Fprintf(&b, ": heartbeat\n\nevent: offset-only\nid: %[1]s\ndata: {\"offset\":%[1]q}\n\n", encodeOffset(next-1))
		case <-cycle:
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// writePending renders the events from *next on into b and moves *next past them. failed is
// set, and an error frame rendered, after FailStreams.
func (s *Server) writePending(b *strings.Builder, next, gen *uint64, types map[string]bool) (changed <-chan struct{}, failed bool) {
	l := &s.events
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked(s.clk.Now())
	if l.failGen != *gen {
		if l.failCode == "cursor_expired" {
			l.stats.Expired++
		}
		fmt.Fprintf(b, "event: error\ndata: {\"error\":{\"code\":%q,\"message\":\"The stream failed\",\"offset\":%q}}\n\n",
			l.failCode, encodeOffset(*next-1))
		return nil, true
	}
	start := 0
	if len(l.records) > 0 && *next > l.records[0].seq {
		start = min(len(l.records), int(*next-l.records[0].seq)) // records are consecutive seqs
	}
	for _, rec := range l.records[start:] {
		*next = rec.seq + 1
		if len(types) > 0 && !types[rec.typ] {
			continue
		}
		off := encodeOffset(rec.seq)
		frame := fmt.Sprintf("event: %s\nid: %s\ndata: {\"offset\":%q,\"event\":%s}\n\n", rec.typ, off, off, rec.body)
		copies := 1
		if n := l.opts.DuplicateEvery; n > 0 && rec.seq%uint64(n) == 0 {
			copies = 2
		}
		for range copies {
			b.WriteString(frame)
			l.stats.Delivered++
		}
	}
	return l.changedLocked(), false
}
