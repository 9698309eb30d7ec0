package eventrec

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
)

const (
	// seriesWindow is client-go's finishTime: a repeat within it joins the earlier Event's series.
	seriesWindow = 6 * time.Minute
	// sweepEvery paces the removal of expired entries, which happens on insert.
	sweepEvery = 30 * time.Second
	// shrinkFloor is the peak size below which a swept map is not rebuilt.
	shrinkFloor = 64
)

// seriesKey is a truncated SHA-256 of the fields client-go's getKey compares, so that a
// tracked Event costs 16 bytes of key instead of a copy of those fields.
type seriesKey [16]byte

// entry is what is kept of a recent Event: where it is and how often it was seen.
type entry struct {
	namespace    string
	name         string
	count        int32
	lastObserved time.Time
}

// keyOf hashes type, action, reason, reporting controller and instance, regarding and related
// (a missing related counts as an empty reference, as in client-go). Each field is
// length-prefixed, so no two different field lists hash the same input.
func keyOf(ev *eventsv1.Event) seriesKey {
	h := sha256.New()
	for _, s := range []string{ev.Type, ev.Action, ev.Reason, ev.ReportingController, ev.ReportingInstance} {
		writeField(h, s)
	}
	writeRef(h, ev.Regarding)
	var related corev1.ObjectReference
	if ev.Related != nil {
		related = *ev.Related
	}
	writeRef(h, related)
	var k seriesKey
	copy(k[:], h.Sum(nil))
	return k
}

func writeRef(h hash.Hash, ref corev1.ObjectReference) {
	for _, s := range []string{ref.Kind, ref.Namespace, ref.Name, string(ref.UID), ref.APIVersion, ref.ResourceVersion, ref.FieldPath} {
		writeField(h, s)
	}
}

func writeField(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	_, _ = h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	_, _ = io.WriteString(h, s)
}

// tracker remembers recent Events for at most seriesWindow after they were last seen. It is
// not safe for concurrent use.
type tracker struct {
	max       int
	entries   map[seriesKey]entry
	peak      int
	lastSweep time.Time
}

func newTracker(maxEntries int) *tracker {
	return &tracker{max: maxEntries, entries: map[seriesKey]entry{}}
}

// get returns the entry of k if it was seen less than seriesWindow before now.
func (t *tracker) get(k seriesKey, now time.Time) (entry, bool) {
	e, ok := t.entries[k]
	if !ok || now.Sub(e.lastObserved) >= seriesWindow {
		return entry{}, false
	}
	return e, true
}

// put stores e under k. When the tracker is full a new key is not stored: its Event is still
// written, but a repeat of it cannot join a series and is written as a new Event.
func (t *tracker) put(k seriesKey, e entry, now time.Time) {
	if now.Sub(t.lastSweep) >= sweepEvery {
		t.sweep(now)
	}
	if _, ok := t.entries[k]; !ok && len(t.entries) >= t.max {
		return
	}
	t.entries[k] = e
	t.peak = max(t.peak, len(t.entries))
}

// sweep forgets expired entries and rebuilds the map once it is far below its peak, since a
// Go map keeps the room it once grew to.
func (t *tracker) sweep(now time.Time) {
	t.lastSweep = now
	for k, e := range t.entries {
		if now.Sub(e.lastObserved) >= seriesWindow {
			delete(t.entries, k)
		}
	}
	if t.peak >= shrinkFloor && len(t.entries) <= t.peak/4 {
		fresh := make(map[seriesKey]entry, len(t.entries))
		for k, e := range t.entries {
			fresh[k] = e
		}
		t.entries, t.peak = fresh, len(fresh)
	}
}
