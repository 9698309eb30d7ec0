package eventrec

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// captureSink is the EventSink of a client-go broadcaster; it hands over what it is asked to create.
type captureSink struct{ got chan *eventsv1.Event }

func (s *captureSink) Create(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	s.got <- ev.DeepCopy()
	return ev, nil
}

func (s *captureSink) Update(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return ev, nil
}

func (s *captureSink) Patch(_ context.Context, ev *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	return ev, nil
}

// clientGoEvent returns the Event client-go's events broadcaster writes for record.
func clientGoEvent(t *testing.T, record func(events.EventRecorder)) *eventsv1.Event {
	t.Helper()
	sink := &captureSink{got: make(chan *eventsv1.Event, 1)}
	b := events.NewBroadcaster(sink)
	defer b.Shutdown()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	record(b.NewRecorder(scheme, testController))
	select {
	case ev := <-sink.got:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("client-go wrote no event")
		return nil
	}
}

func TestEventHasClientGosFields(t *testing.T) {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "token", UID: "s-1", ResourceVersion: "3"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", UID: "n-1"}}
	ref := &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "apps", Name: "by-ref", UID: "r-1"}
	tests := []struct {
		name          string
		regardingName string
		record        func(events.EventRecorder)
	}{
		{"namespaced object with a related object and note arguments", "web", func(r events.EventRecorder) {
			r.Eventf(pod("web"), secret, corev1.EventTypeWarning, "TokenExpired", "Refresh", "Token of %s expired %d times", "web", 3)
		}},
		{"cluster-scoped object goes to the default namespace", "node-1", func(r events.EventRecorder) {
			r.Eventf(node, nil, corev1.EventTypeNormal, "Issued", "Refresh", "Refreshed")
		}},
		{"a reference stands for the object", "by-ref", func(r events.EventRecorder) {
			r.Eventf(ref, ref, corev1.EventTypeNormal, "Issued", "Refresh", "Refreshed")
		}},
		{"annotations are kept", "web", func(r events.EventRecorder) {
			r.(events.AnnotatedEventRecorder).AnnotatedEventf(pod("web"), nil, map[string]string{"idptoken.dev/trace": "abc"},
				corev1.EventTypeNormal, "Issued", "Refresh", "Refreshed %s", "web")
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := clientGoEvent(t, tc.record)
			f := newFixture(t, interceptor.Funcs{}, Options{})
			f.start(t)
			tc.record(f.r)
			f.waitFor(t, "the event", func() bool { return f.creates.Load() == 1 })
			evs := f.events(t)
			if len(evs) != 1 {
				t.Fatalf("got %d events, want 1", len(evs))
			}
			got := evs[0]

			if wantName := util.GenerateEventName(tc.regardingName, t0.UnixNano()); got.Name != wantName {
				t.Errorf("name = %q, want %q", got.Name, wantName)
			}
			stamp, ok := strings.CutPrefix(want.Name, tc.regardingName+".")
			if _, err := strconv.ParseInt(stamp, 16, 64); !ok || err != nil {
				t.Errorf("client-go's name %q is not <regarding>.<hex unixnano>; the test's premise is wrong", want.Name)
			}
			if !got.EventTime.Equal(&metav1.MicroTime{Time: t0}) || want.EventTime.IsZero() {
				t.Errorf("eventTime = %v (client-go: %v), want %v", got.EventTime, want.EventTime, t0)
			}
			fields := []struct {
				name        string
				got, wanted any
			}{
				{"namespace", got.Namespace, want.Namespace},
				{"annotations", got.Annotations, want.Annotations},
				{"series", got.Series, want.Series},
				{"reportingController", got.ReportingController, want.ReportingController},
				{"reportingInstance", got.ReportingInstance, want.ReportingInstance},
				{"action", got.Action, want.Action},
				{"reason", got.Reason, want.Reason},
				{"regarding", got.Regarding, want.Regarding},
				{"related", got.Related, want.Related},
				{"note", got.Note, want.Note},
				{"type", got.Type, want.Type},
				{"deprecatedSource", got.DeprecatedSource, want.DeprecatedSource},
				{"deprecatedCount", got.DeprecatedCount, want.DeprecatedCount},
				{"deprecatedFirstTimestamp", got.DeprecatedFirstTimestamp, want.DeprecatedFirstTimestamp},
				{"deprecatedLastTimestamp", got.DeprecatedLastTimestamp, want.DeprecatedLastTimestamp},
			}
			for _, fl := range fields {
				if !reflect.DeepEqual(fl.got, fl.wanted) {
					t.Errorf("%s = %#v, client-go writes %#v", fl.name, fl.got, fl.wanted)
				}
			}
		})
	}
}

func TestEventsClientGoRefusesAreNotWritten(t *testing.T) {
	tests := []struct {
		name   string
		record func(*Recorder)
	}{
		{"unknown type", func(r *Recorder) { r.Eventf(pod("a"), nil, "Critical", "Issued", "Refresh", "x") }},
		{"regarding has no kind in the scheme", func(r *Recorder) {
			r.Eventf(&struct{ corev1.Pod }{}, nil, corev1.EventTypeNormal, "Issued", "Refresh", "x")
		}},
		{"no regarding object", func(r *Recorder) { r.Eventf(nil, nil, corev1.EventTypeNormal, "Issued", "Refresh", "x") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, interceptor.Funcs{}, Options{Workers: 1})
			f.start(t)
			tc.record(f.r)
			f.r.Eventf(pod("sentinel"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "x")
			f.waitFor(t, "the sentinel event", func() bool { return f.creates.Load() >= 1 })
			if evs := f.events(t); len(evs) != 1 || evs[0].Regarding.Name != "sentinel" {
				t.Errorf("events = %+v, want the sentinel only", evs)
			}
		})
	}
}

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	f := newFixture(t, interceptor.Funcs{}, Options{QueueSize: 2, Workers: 1})
	const secretNote = "note-text-stays-out-of-logs"
	record := func(n int) {
		f.r.Eventf(pod("p"+strconv.Itoa(n)), nil, corev1.EventTypeWarning, "TokenExpired", "Refresh", secretNote)
	}
	done := make(chan struct{})
	go func() {
		for i := range 5 {
			record(i)
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Eventf blocked on a full queue")
	}
	if d := f.r.Dropped(); d != 3 {
		t.Errorf("dropped = %d, want 3", d)
	}
	if lines := f.logs.matching("Dropped events"); len(lines) != 1 || !strings.Contains(lines[0], `"dropped"=1`) {
		t.Errorf("drop logs = %q, want one reporting the first drop", lines)
	}
	f.clock.Step(dropLogEvery)
	record(5)
	if lines := f.logs.matching("Dropped events"); len(lines) != 2 || !strings.Contains(lines[1], `"dropped"=3`) {
		t.Errorf("drop logs = %q, want a second one a minute later counting 3", lines)
	}
	if len(f.r.series.entries) != 2 {
		t.Errorf("tracked = %d, want 2: a dropped event is not tracked", len(f.r.series.entries))
	}

	f.start(t)
	f.waitFor(t, "the queued events", func() bool { return f.creates.Load() == 2 })
	if evs := f.events(t); len(evs) != 2 || evs[0].Regarding.Name != "p0" || evs[1].Regarding.Name != "p1" {
		t.Errorf("events = %+v, want those of p0 and p1, queued before Start", evs)
	}
	if lines := f.logs.matching(secretNote); len(lines) != 0 {
		t.Errorf("logs carry the note: %q", lines)
	}
}
