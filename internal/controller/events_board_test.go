package controller

import (
	"slices"
	"testing"
	"time"
)

func TestNoticeBoardPacesEachSubject(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	nb := newNoticeBoard()
	type step struct {
		at      time.Duration
		subject string
		deleted bool
		want    bool // noticed at once
	}
	steps := []step{
		{0, "user:a", false, true},
		{time.Second, "user:a", false, false},     // within the spacing: pending
		{2 * time.Second, "user:a", false, false}, // still one pending, not two
		{2 * time.Second, "user:b", false, true},  // another user is not held back
		{3 * time.Second, "user:a", true, true},   // a deletion is never held back
		{40 * time.Second, "user:a", false, true}, // the spacing has passed
		{41 * time.Second, "connection:c", false, true},
	}
	for _, s := range steps {
		if got := nb.record(s.subject, s.deleted, at(s.at)); got != s.want {
			t.Fatalf("record(%s, deleted=%v) at +%s = %v, want %v", s.subject, s.deleted, s.at, got, s.want)
		}
	}
	if n := nb.get("user:a"); !n.At.Equal(at(40*time.Second)) || n.Deleted {
		t.Fatalf("user:a notice = %+v, want the one at +40s, not deleted", n)
	}
	if due := nb.due(at(69 * time.Second)); len(due) != 0 {
		t.Fatalf("due before any spacing ended = %v", due)
	}
	nb.record("user:a", false, at(50*time.Second)) // pending until +70s
	if due := nb.due(at(69 * time.Second)); len(due) != 0 {
		t.Fatalf("due at +69s = %v, want nothing (spacing ends at +70s)", due)
	}
	if due := nb.due(at(70 * time.Second)); !slices.Equal(due, []string{"user:a"}) {
		t.Fatalf("due at +70s = %v, want [user:a]", due)
	}
	if n := nb.get("user:a"); !n.At.Equal(at(70 * time.Second)) {
		t.Fatalf("a pending event is noticed when the spacing ends: %+v", n)
	}
	if due := nb.due(at(200 * time.Second)); len(due) != 0 {
		t.Fatalf("a pending event was noticed twice: %v", due)
	}
}

func TestNoticeBoardForgetsOldNoticesAndStaysBounded(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	nb := newNoticeBoard()
	nb.record("user:old", false, t0)
	nb.due(t0.Add(noticeTTL + time.Second))
	if n := nb.get("user:old"); !n.At.IsZero() {
		t.Fatalf("a notice older than its TTL was kept: %+v", n)
	}
	for i := range maxNotices + 10 {
		nb.record(eventSubject("u"+time.Duration(i).String(), ""), false, t0.Add(time.Duration(i)*time.Millisecond))
	}
	if len(nb.subjects) > maxNotices {
		t.Fatalf("%d notices kept, want at most %d", len(nb.subjects), maxNotices)
	}
}
