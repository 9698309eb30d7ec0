package auth0events

import (
	"reflect"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func TestDedup(t *testing.T) {
	type seen struct {
		id   string
		at   time.Duration // after t0
		want bool
	}
	tests := map[string]struct {
		size   int
		window time.Duration
		steps  []seen
	}{
		"a repeated id is a duplicate": {
			size: 10, window: time.Minute,
			steps: []seen{{"a", 0, false}, {"b", 0, false}, {"a", time.Second, true}, {"b", 2 * time.Second, true}},
		},
		"an id older than the window is new again": {
			size: 10, window: time.Minute,
			steps: []seen{{"a", 0, false}, {"a", time.Minute, false}, {"a", time.Minute + time.Second, true}},
		},
		"the oldest id is forgotten past size": {
			size: 2, window: time.Hour,
			steps: []seen{{"a", 0, false}, {"b", 0, false}, {"c", 0, false}, {"a", 0, false}, {"c", 0, true}},
		},
		"no window keeps ids until pushed out": {
			size: 2, window: 0,
			steps: []seen{{"a", 0, false}, {"a", 24 * time.Hour, true}},
		},
		"an empty id is never a duplicate": {
			size: 2, window: time.Hour,
			steps: []seen{{"", 0, false}, {"", 0, false}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := NewDedup(tc.size, tc.window)
			for i, s := range tc.steps {
				if got := d.Seen(s.id, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d: Seen(%q) = %v, want %v", i, s.id, got, s.want)
				}
				if d.Len() > tc.size {
					t.Fatalf("step %d: %d ids kept, size %d", i, d.Len(), tc.size)
				}
			}
		})
	}
}

func TestReorder(t *testing.T) {
	ev := func(id string, happened time.Duration) Event { return Event{ID: id, Time: t0.Add(happened)} }
	type add struct {
		ev Event
		at time.Duration // arrival, after t0
	}
	type ready struct {
		at   time.Duration
		want []string
	}
	tests := map[string]struct {
		window time.Duration
		limit  int
		adds   []add
		checks []ready
	}{
		"in order, each after its window": {
			window: 2 * time.Second, limit: 10,
			adds:   []add{{ev("a", 0), 0}, {ev("b", time.Second), time.Second}},
			checks: []ready{{time.Second, nil}, {2 * time.Second, []string{"a"}}, {3 * time.Second, []string{"b"}}},
		},
		"a late arrival that happened first goes first": {
			window: 2 * time.Second, limit: 10,
			adds:   []add{{ev("b", time.Second), 0}, {ev("a", 0), 500 * time.Millisecond}},
			checks: []ready{{2 * time.Second, nil}, {2500 * time.Millisecond, []string{"a", "b"}}},
		},
		"equal times keep arrival order": {
			window: time.Second, limit: 10,
			adds:   []add{{ev("x", 0), 0}, {ev("y", 0), 0}, {ev("z", 0), 0}},
			checks: []ready{{time.Second, []string{"x", "y", "z"}}},
		},
		"zero window releases at once": {
			window: 0, limit: 10,
			adds:   []add{{ev("a", 5), 0}},
			checks: []ready{{0, []string{"a"}}},
		},
		"past the limit the earliest goes at once": {
			window: time.Hour, limit: 2,
			adds:   []add{{ev("c", 3), 0}, {ev("a", 1), 0}, {ev("b", 2), 0}},
			checks: []ready{{0, []string{"a"}}, {time.Minute, nil}},
		},
		"an event older than the window behind a held one waits for it": {
			window: 2 * time.Second, limit: 10,
			adds:   []add{{ev("b", 10), 0}, {ev("a", 0), 1500 * time.Millisecond}},
			checks: []ready{{2 * time.Second, nil}, {3500 * time.Millisecond, []string{"a", "b"}}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := NewReorder(tc.window, tc.limit)
			for _, a := range tc.adds {
				r.Add(a.ev, t0.Add(a.at))
			}
			for _, c := range tc.checks {
				var got []string
				for _, e := range r.Ready(t0.Add(c.at)) {
					got = append(got, e.ID)
				}
				if !reflect.DeepEqual(got, c.want) {
					t.Fatalf("Ready(+%v) = %v, want %v", c.at, got, c.want)
				}
			}
		})
	}
}

func TestReorderNextAndFlush(t *testing.T) {
	r := NewReorder(2*time.Second, 10)
	if _, ok := r.Next(); ok {
		t.Fatal("Next with nothing held")
	}
	r.Add(Event{ID: "b", Time: t0.Add(time.Second)}, t0)
	r.Add(Event{ID: "a", Time: t0}, t0.Add(time.Second))
	if at, ok := r.Next(); !ok || !at.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("Next = %v %v, want the held earliest's deadline t0+3s", at, ok)
	}
	got := r.Flush()
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" || r.Len() != 0 {
		t.Fatalf("Flush = %+v, left %d", got, r.Len())
	}
}

func TestCheckpoints(t *testing.T) {
	var c checkpoints
	c.add(1, "o1")
	c.add(2, "o2")
	c.add(3, "o3")
	if off, moved := c.advance(); moved || off != "" {
		t.Fatalf("nothing done: %q %v", off, moved)
	}
	c.finish(2)
	c.finish(3)
	if off, moved := c.advance(); moved || off != "" {
		t.Fatalf("the first still held: %q %v", off, moved)
	}
	c.finish(1)
	if off, moved := c.advance(); !moved || off != "o3" {
		t.Fatalf("all done: %q %v, want o3", off, moved)
	}
	c.add(4, "")
	c.finish(4)
	if off, _ := c.advance(); off != "o3" {
		t.Fatalf("a message without offset keeps the last: %q", off)
	}
}
