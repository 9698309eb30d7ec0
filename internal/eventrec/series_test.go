package eventrec

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestKeyOfComparesWhatClientGoCompares(t *testing.T) {
	base := func() *eventsv1.Event {
		return &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "web.1"},
			EventTime:  metav1.MicroTime{Time: t0},
			Type:       corev1.EventTypeNormal, Action: "Refresh", Reason: "Issued", Note: "refreshed",
			ReportingController: "c", ReportingInstance: "c-host",
			Regarding: corev1.ObjectReference{Kind: "Pod", Namespace: "apps", Name: "web", UID: "u",
				APIVersion: "v1", ResourceVersion: "7", FieldPath: "spec"},
		}
	}
	tests := []struct {
		name     string
		change   func(*eventsv1.Event)
		wantSame bool
	}{
		{"name", func(e *eventsv1.Event) { e.Name = "web.2" }, true},
		{"note", func(e *eventsv1.Event) { e.Note = "other" }, true},
		{"event time", func(e *eventsv1.Event) { e.EventTime.Time = t0.Add(time.Hour) }, true},
		{"annotations", func(e *eventsv1.Event) { e.Annotations = map[string]string{"a": "b"} }, true},
		{"an empty related stands for none", func(e *eventsv1.Event) { e.Related = &corev1.ObjectReference{} }, true},
		{"type", func(e *eventsv1.Event) { e.Type = corev1.EventTypeWarning }, false},
		{"action", func(e *eventsv1.Event) { e.Action = "Rotate" }, false},
		{"reason", func(e *eventsv1.Event) { e.Reason = "Failed" }, false},
		{"reporting controller", func(e *eventsv1.Event) { e.ReportingController = "d" }, false},
		{"reporting instance", func(e *eventsv1.Event) { e.ReportingInstance = "c-other" }, false},
		{"regarding kind", func(e *eventsv1.Event) { e.Regarding.Kind = "Secret" }, false},
		{"regarding namespace", func(e *eventsv1.Event) { e.Regarding.Namespace = "other" }, false},
		{"regarding name", func(e *eventsv1.Event) { e.Regarding.Name = "api" }, false},
		{"regarding uid", func(e *eventsv1.Event) { e.Regarding.UID = "v" }, false},
		{"regarding apiVersion", func(e *eventsv1.Event) { e.Regarding.APIVersion = "v2" }, false},
		{"regarding resourceVersion", func(e *eventsv1.Event) { e.Regarding.ResourceVersion = "8" }, false},
		{"regarding fieldPath", func(e *eventsv1.Event) { e.Regarding.FieldPath = "status" }, false},
		{"related", func(e *eventsv1.Event) { e.Related = &corev1.ObjectReference{Kind: "Secret", Name: "s"} }, false},
		{"field boundaries", func(e *eventsv1.Event) { e.Regarding.Namespace, e.Regarding.Name = "appsw", "eb" }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev := base()
			tc.change(ev)
			if same := keyOf(ev) == keyOf(base()); same != tc.wantSame {
				t.Errorf("same key = %v, want %v", same, tc.wantSame)
			}
		})
	}
}

func TestTrackerIsBoundedAndForgets(t *testing.T) {
	key := func(i byte) seriesKey { return seriesKey{i} }
	tr := newTracker(3)
	for i := range byte(5) {
		tr.put(key(i), entry{name: "e", count: 1, lastObserved: t0}, t0)
	}
	if len(tr.entries) != 3 {
		t.Fatalf("tracked = %d, want the bound 3", len(tr.entries))
	}
	if _, ok := tr.get(key(4), t0); ok {
		t.Error("a key put while full is tracked")
	}
	if _, ok := tr.get(key(0), t0.Add(seriesWindow-time.Nanosecond)); !ok {
		t.Error("an entry is forgotten before six minutes")
	}
	if _, ok := tr.get(key(0), t0.Add(seriesWindow)); ok {
		t.Error("an entry is still a series after six minutes")
	}
	later := t0.Add(seriesWindow)
	tr.put(key(9), entry{name: "e", count: 1, lastObserved: later}, later)
	if len(tr.entries) != 1 {
		t.Errorf("tracked = %d after six minutes, want 1: expired entries stay", len(tr.entries))
	}
}

func TestTrackerShrinksAfterAPeak(t *testing.T) {
	tr := newTracker(DefaultMaxTracked)
	for i := range 1000 {
		tr.put(seriesKey{byte(i), byte(i >> 8)}, entry{lastObserved: t0}, t0)
	}
	later := t0.Add(seriesWindow)
	tr.put(seriesKey{0xff, 0xff}, entry{lastObserved: later}, later)
	if len(tr.entries) != 1 || tr.peak != 1 {
		t.Errorf("tracked, peak = %d, %d, want 1, 1: the map keeps the room of its peak", len(tr.entries), tr.peak)
	}
}
