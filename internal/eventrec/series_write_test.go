package eventrec

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestRepeatsFormASeriesWithinSixMinutes(t *testing.T) {
	tests := []struct {
		name                     string
		gaps                     []time.Duration
		wantEvents               int
		wantCount                int32 // series count of the first Event; 0 for none
		wantCreates, wantPatches int32
	}{
		{"repeats patch the count to 2 then 3", []time.Duration{time.Minute, 2 * time.Minute}, 1, 3, 1, 2},
		{"a repeat just inside the window joins it", []time.Duration{seriesWindow - time.Microsecond}, 1, 2, 1, 1},
		{"a repeat six minutes later is a new event", []time.Duration{seriesWindow}, 2, 0, 2, 0},
		{"the window runs from the last repeat", []time.Duration{5 * time.Minute, 5 * time.Minute}, 1, 3, 1, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, interceptor.Funcs{}, Options{})
			f.start(t)
			record := func() {
				f.r.Eventf(pod("web"), nil, corev1.EventTypeWarning, "TokenExpired", "Refresh", "expired at %s", f.clock.Now())
			}
			record()
			f.waitFor(t, "the first event", func() bool { return f.writes() == 1 })
			first := f.events(t)[0].Name
			for i, gap := range tc.gaps {
				f.clock.Step(gap)
				record()
				f.waitFor(t, "the repeat", func() bool { return f.writes() == int32(i+2) })
			}
			if c, p := f.creates.Load(), f.patches.Load(); c != tc.wantCreates || p != tc.wantPatches {
				t.Errorf("creates, patches = %d, %d, want %d, %d", c, p, tc.wantCreates, tc.wantPatches)
			}
			evs := f.events(t)
			if len(evs) != tc.wantEvents {
				t.Fatalf("got %d events, want %d", len(evs), tc.wantEvents)
			}
			for _, ev := range evs {
				if ev.Name != first {
					continue
				}
				switch {
				case tc.wantCount == 0 && ev.Series != nil:
					t.Errorf("series = %+v, want none", ev.Series)
				case tc.wantCount != 0 && (ev.Series == nil || ev.Series.Count != tc.wantCount ||
					!ev.Series.LastObservedTime.Time.Equal(f.clock.Now())):
					t.Errorf("series = %+v, want count %d last observed %v", ev.Series, tc.wantCount, f.clock.Now())
				}
			}
		})
	}
}

func TestSeriesOfADeletedEventCreatesItAgain(t *testing.T) {
	f := newFixture(t, interceptor.Funcs{}, Options{})
	f.start(t)
	record := func() { f.r.Eventf(pod("web"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed") }
	record()
	f.waitFor(t, "the first event", func() bool { return f.writes() == 1 })
	first := f.events(t)[0]
	if err := f.c.Delete(context.Background(), &first); err != nil {
		t.Fatal(err)
	}
	f.clock.Step(time.Minute)
	record()
	f.waitFor(t, "the patch and the create", func() bool { return f.patches.Load() == 1 && f.creates.Load() == 2 })
	f.clock.Step(time.Minute)
	record()
	f.waitFor(t, "the second patch", func() bool { return f.patches.Load() == 2 })

	evs := f.events(t)
	if len(evs) != 1 || evs[0].Name != first.Name || evs[0].Series == nil || evs[0].Series.Count != 3 {
		t.Fatalf("events = %+v, want %s alone with series count 3", evs, first.Name)
	}
	if f.creates.Load() != 2 {
		t.Errorf("creates = %d, want 2", f.creates.Load())
	}
}

func TestSeriesPatchesAgainWhenItLosesTheCreateRace(t *testing.T) {
	var patches int
	f := newFixture(t, interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, o ...client.PatchOption) error {
			if patches++; patches == 1 {
				return apierrors.NewNotFound(eventsv1.Resource("events"), obj.GetName())
			}
			return c.Patch(ctx, obj, p, o...)
		},
	}, Options{})
	f.start(t)
	record := func() { f.r.Eventf(pod("web"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed") }
	record()
	f.waitFor(t, "the first event", func() bool { return f.writes() == 1 })
	record()
	f.waitFor(t, "the second patch", func() bool { return f.patches.Load() == 2 })
	evs := f.events(t)
	if len(evs) != 1 || evs[0].Series == nil || evs[0].Series.Count != 2 {
		t.Fatalf("events = %+v, want one with series count 2", evs)
	}
}

func TestUntrackedRepeatIsANewEvent(t *testing.T) {
	f := newFixture(t, interceptor.Funcs{}, Options{MaxTracked: 1})
	f.start(t)
	for _, name := range []string{"a", "b", "b"} {
		f.r.Eventf(pod(name), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed")
		f.clock.Step(time.Second)
	}
	f.waitFor(t, "three writes", func() bool { return f.writes() == 3 })
	if c := f.creates.Load(); c != 3 {
		t.Errorf("creates = %d, want 3: a repeat of an untracked event is written anew", c)
	}
}
