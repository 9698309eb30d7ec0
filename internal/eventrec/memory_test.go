package eventrec

import (
	"context"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

const (
	memoryObjects = 10000
	// heldBound is what 10,000 Events may leave behind. Client-go's broadcaster keeps ~8 MB.
	heldBound = 2 << 20
)

// countingSink is a client-go EventSink that keeps nothing.
type countingSink struct{ creates atomic.Int64 }

func (s *countingSink) Create(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	s.creates.Add(1)
	return ev, nil
}

func (s *countingSink) Update(_ context.Context, ev *eventsv1.Event) (*eventsv1.Event, error) {
	return ev, nil
}

func (s *countingSink) Patch(_ context.Context, ev *eventsv1.Event, _ []byte) (*eventsv1.Event, error) {
	return ev, nil
}

func heapAlloc() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// recordDistinct records one Event for each of memoryObjects pods, waiting every 500 Events
// until written() caught up, so that no queue overflows.
func recordDistinct(t *testing.T, rec events.EventRecorder, written func() int64) {
	t.Helper()
	for i := range memoryObjects {
		p := pod("binding-" + strconv.Itoa(i))
		rec.Eventf(p, nil, corev1.EventTypeNormal, "Issued", "Refresh", "Refreshed the token of %s", p.Name)
		if (i+1)%500 == 0 {
			deadline := time.Now().Add(30 * time.Second)
			for written() < int64(i+1) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d of %d events written", written(), i+1)
				}
				time.Sleep(time.Millisecond)
			}
		}
	}
}

func TestRecorderHoldsLittleAfter10000Events(t *testing.T) {
	var creates atomic.Int64
	c := fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			creates.Add(1) // the fake store would otherwise be what is measured
			return nil
		},
	}).Build()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	before := heapAlloc()
	r := New(c, scheme, testController, Options{Logger: logr.Discard()})
	go func() { _ = r.Start(ctx) }()
	recordDistinct(t, r, creates.Load)
	held := heapAlloc() - before
	runtime.KeepAlive(r)

	t.Logf("the Recorder holds %d KiB after %d events (%d tracked)", held>>10, memoryObjects, len(r.series.entries))
	if r.Dropped() != 0 {
		t.Fatalf("dropped %d events; the measure needs all of them", r.Dropped())
	}
	if held > heldBound {
		t.Errorf("the Recorder holds %d bytes after %d events, want at most %d", held, memoryObjects, heldBound)
	}
}

// TestClientGoHoldsMoreThanTheBound shows that the measure above sees an Event cache like
// client-go's: the same recording through its broadcaster stays above the bound.
func TestClientGoHoldsMoreThanTheBound(t *testing.T) {
	if testing.Short() {
		t.Skip("a control for the memory test")
	}
	sink := &countingSink{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	before := heapAlloc()
	b := events.NewBroadcaster(sink)
	defer b.Shutdown()
	if err := b.StartRecordingToSinkWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	recordDistinct(t, b.NewRecorder(scheme, testController), sink.creates.Load)
	held := heapAlloc() - before
	runtime.KeepAlive(b)

	t.Logf("client-go's broadcaster holds %d KiB after %d events", held>>10, memoryObjects)
	if held <= heldBound {
		t.Errorf("client-go's broadcaster holds %d bytes, not above %d: the memory test cannot fail", held, heldBound)
	}
}
