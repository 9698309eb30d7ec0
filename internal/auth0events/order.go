package auth0events

import (
	"slices"
	"time"
)

// Dedup remembers the event ids seen recently, so that a redelivered event is dropped. It keeps
// at most size ids, each for at most window; it is not safe for concurrent use. Auth0 may
// deliver an event more than once (Events Best Practices: "Ignore duplicate events"), and a
// reconnect can replay the last events before the offset.
type Dedup struct {
	size   int
	window time.Duration
	seen   map[string]time.Time
	order  []dedupEntry // oldest first
}

type dedupEntry struct {
	id string
	at time.Time
}

// NewDedup returns a Dedup of at most size ids (at least 1) kept for window (0: until pushed
// out by size).
func NewDedup(size int, window time.Duration) *Dedup {
	return &Dedup{size: max(1, size), window: window, seen: map[string]time.Time{}}
}

// Seen reports whether id was seen within the window, and remembers it as seen at now. An
// empty id is never a duplicate: it cannot be told apart.
func (d *Dedup) Seen(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	d.expire(now)
	if _, ok := d.seen[id]; ok {
		return true
	}
	if len(d.order) == d.size {
		delete(d.seen, d.order[0].id)
		d.order = d.order[1:]
	}
	d.seen[id] = now
	d.order = append(d.order, dedupEntry{id, now})
	return false
}

// Len returns the number of ids remembered.
func (d *Dedup) Len() int { return len(d.order) }

func (d *Dedup) expire(now time.Time) {
	if d.window <= 0 {
		return
	}
	n := 0
	for n < len(d.order) && now.Sub(d.order[n].at) >= d.window {
		delete(d.seen, d.order[n].id)
		n++
	}
	if n > 0 {
		// Copy down so that the backing array does not grow without bound.
		d.order = append(d.order[:0], d.order[n:]...)
	}
}

// Reorder holds each event for a short window after it arrives and releases events in the order
// of their Time (ties: arrival order), so that events that arrive slightly out of order are
// handled in the order they happened. It holds at most limit events; past that the earliest is
// released at once. An event waits at most about two windows. It is not safe for concurrent use.
type Reorder struct {
	window time.Duration
	limit  int
	held   []heldEvent // sorted by (Time, seq)
	seq    uint64
}

type heldEvent struct {
	ev      Event
	arrived time.Time
}

// NewReorder returns a Reorder with the given window (0 releases at once) and limit (at least 1).
func NewReorder(window time.Duration, limit int) *Reorder {
	return &Reorder{window: max(0, window), limit: max(1, limit)}
}

// Add holds ev, which arrived at now.
func (r *Reorder) Add(ev Event, now time.Time) {
	r.seq++
	if ev.seq == 0 {
		ev.seq = r.seq
	}
	i, _ := slices.BinarySearchFunc(r.held, ev, func(h heldEvent, e Event) int {
		if c := h.ev.Time.Compare(e.Time); c != 0 {
			return c
		}
		return compareSeq(h.ev.seq, e.seq)
	})
	r.held = slices.Insert(r.held, i, heldEvent{ev, now})
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Ready removes and returns, in order, the events that may go at now: while the earliest
// held event has waited its window (or more than limit are held), it goes.
func (r *Reorder) Ready(now time.Time) []Event {
	var out []Event
	for len(r.held) > 0 && (len(r.held) > r.limit || !now.Before(r.held[0].arrived.Add(r.window))) {
		out = append(out, r.held[0].ev)
		r.held = r.held[1:]
	}
	if len(r.held) == 0 {
		r.held = nil // let the backing array go
	}
	return out
}

// Next returns when the earliest held event may go; ok is false when nothing is held.
func (r *Reorder) Next() (at time.Time, ok bool) {
	if len(r.held) == 0 {
		return time.Time{}, false
	}
	return r.held[0].arrived.Add(r.window), true
}

// Flush removes and returns every held event, in order.
func (r *Reorder) Flush() []Event {
	out := make([]Event, 0, len(r.held))
	for _, h := range r.held {
		out = append(out, h.ev)
	}
	r.held = nil
	return out
}

// Len returns the number of events held.
func (r *Reorder) Len() int { return len(r.held) }

// checkpoints tracks which received messages have been dealt with, in arrival order, so that
// the offset reported as safe to persist never passes a message still held.
type checkpoints struct {
	pending []pendingOffset // arrival order
	done    map[uint64]bool
	last    string
}

type pendingOffset struct {
	seq    uint64
	offset string
}

// add records a message that arrived with offset (seq increases with each call).
func (c *checkpoints) add(seq uint64, offset string) {
	c.pending = append(c.pending, pendingOffset{seq, offset})
}

// finish marks seq as dealt with.
func (c *checkpoints) finish(seq uint64) {
	if c.done == nil {
		c.done = map[uint64]bool{}
	}
	c.done[seq] = true
}

// advance returns the offset of the last message before the first one not dealt with, and
// whether it moved since the last call.
func (c *checkpoints) advance() (string, bool) {
	n := 0
	for n < len(c.pending) && c.done[c.pending[n].seq] {
		delete(c.done, c.pending[n].seq)
		if off := c.pending[n].offset; off != "" {
			c.last = off
		}
		n++
	}
	if n == 0 {
		return c.last, false
	}
	c.pending = append(c.pending[:0], c.pending[n:]...)
	return c.last, true
}
