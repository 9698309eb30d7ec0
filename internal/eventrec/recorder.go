// Package eventrec records Kubernetes Events (events.k8s.io/v1) exactly as client-go's events
// broadcaster does (same names, fields and series), but keeps no copy of an Event once it is
// queued for writing: the broadcaster holds every Event for six minutes or more and a goroutine
// per Event, which at 10,000 bindings is megabytes of live heap. The Recorder holds a bounded
// queue, a fixed pool of writers and, per recent Event, a 16-byte key and a small entry.
package eventrec

import (
	"fmt"
	"maps"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/tools/record/util"
	"k8s.io/client-go/tools/reference"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/recorder"
)

const (
	// DefaultQueueSize is client-go's maxQueuedEvents.
	DefaultQueueSize = 1000
	// DefaultWorkers is the number of concurrent writers.
	DefaultWorkers = 4
	// DefaultMaxTracked bounds the series entries kept.
	DefaultMaxTracked = 4096

	dropLogEvery = time.Minute
)

// Options tune a Recorder; the zero value gives the defaults.
type Options struct {
	// Clock stamps Events, times series and paces retries; clock.RealClock by default.
	Clock clock.Clock
	// QueueSize bounds the Events waiting to be written (DefaultQueueSize), split evenly
	// between the workers; an Event whose worker's share is full is dropped.
	QueueSize int
	// Workers is the number of writers (DefaultWorkers).
	Workers int
	// MaxTracked bounds the recent Events remembered for series (DefaultMaxTracked); once it
	// is reached, the repeats of further Events are written as new Events, not as series.
	MaxTracked int
	// Logger receives drop and failure reports; controller-runtime's logger by default.
	Logger logr.Logger
}

// Recorder writes Events through a controller-runtime client. Eventf never blocks; the
// Events are written once Start runs (add the Recorder to the manager).
type Recorder struct {
	client     client.Client
	scheme     *runtime.Scheme
	controller string
	instance   string
	clock      clock.Clock
	log        logr.Logger

	// queues has one channel per worker; an Event goes to the worker its series key picks,
	// so the writes of one series never overtake each other.
	queues  []chan *eventsv1.Event
	started atomic.Bool
	dropped atomic.Uint64

	mu          sync.Mutex // guards series and the drop log
	series      *tracker
	unlogged    uint64
	lastDropLog time.Time
}

var (
	_ events.EventRecorder           = (*Recorder)(nil)
	_ events.AnnotatedEventRecorder  = (*Recorder)(nil)
	_ manager.Runnable               = (*Recorder)(nil)
	_ manager.LeaderElectionRunnable = (*Recorder)(nil)
	_ recorder.EventRecorder         = (*Recorder)(nil)
)

// New returns a Recorder whose Events name controller as their reportingController and
// controller-<hostname> as their reportingInstance, as client-go's broadcaster does.
func New(c client.Client, scheme *runtime.Scheme, controller string, opts Options) *Recorder {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	opts.Workers = min(opts.Workers, opts.QueueSize)
	if opts.MaxTracked <= 0 {
		opts.MaxTracked = DefaultMaxTracked
	}
	if opts.Logger.GetSink() == nil {
		opts.Logger = logf.Log.WithName("eventrec")
	}
	hostname, _ := os.Hostname()
	r := &Recorder{
		client: c, scheme: scheme, controller: controller, instance: controller + "-" + hostname,
		clock: opts.Clock, log: opts.Logger, series: newTracker(opts.MaxTracked),
	}
	r.queues = make([]chan *eventsv1.Event, opts.Workers)
	for i := range r.queues {
		// Split the capacity; the first queues take the remainder.
		size := opts.QueueSize / opts.Workers
		if i < opts.QueueSize%opts.Workers {
			size++
		}
		r.queues[i] = make(chan *eventsv1.Event, size)
	}
	return r
}

// Eventf records an Event about regarding; see events.EventRecorder.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	r.record(regarding, related, nil, eventtype, reason, action, note, args...)
}

// AnnotatedEventf records an Event carrying annotations; see events.AnnotatedEventRecorder.
func (r *Recorder) AnnotatedEventf(regarding, related runtime.Object, annotations map[string]string,
	eventtype, reason, action, note string, args ...any) {
	r.record(regarding, related, annotations, eventtype, reason, action, note, args...)
}

// Dropped is the number of Events dropped because the queue was full.
func (r *Recorder) Dropped() uint64 { return r.dropped.Load() }

func (r *Recorder) record(regarding, related runtime.Object, annotations map[string]string,
	eventtype, reason, action, note string, args ...any) {
	now := r.clock.Now()
	ev, err := r.makeEvent(now, regarding, related, annotations, eventtype, reason, action, note, args...)
	if err != nil {
		r.log.Error(err, "Did not record an event", "type", eventtype, "reason", reason)
		return
	}
	r.enqueue(ev, now)
}

// makeEvent builds the Event client-go's recorder builds (events/event_recorder.go makeEvent).
func (r *Recorder) makeEvent(now time.Time, regarding, related runtime.Object, annotations map[string]string,
	eventtype, reason, action, note string, args ...any) (*eventsv1.Event, error) {
	refRegarding, err := reference.GetReference(r.scheme, regarding)
	if err != nil {
		return nil, fmt.Errorf("referring to the regarding object: %w", err)
	}
	if !util.ValidateEventType(eventtype) {
		return nil, fmt.Errorf("unsupported event type %q", eventtype)
	}
	var refRelated *corev1.ObjectReference
	if related != nil {
		// client-go records the Event without the related object when it has no reference.
		if ref, err := reference.GetReference(r.scheme, related); err == nil {
			refRelated = ref.DeepCopy() // the caller may hand in a reference it reuses
		}
	}
	namespace := refRegarding.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{
			Name:        util.GenerateEventName(refRegarding.Name, now.UnixNano()),
			Namespace:   namespace,
			Annotations: maps.Clone(annotations),
		},
		EventTime:           metav1.MicroTime{Time: now},
		ReportingController: r.controller,
		ReportingInstance:   r.instance,
		Action:              action,
		Reason:              reason,
		Regarding:           *refRegarding,
		Related:             refRelated,
		Note:                fmt.Sprintf(note, args...),
		Type:                eventtype,
	}, nil
}

// enqueue turns a repeat of a recent Event into a series update of that Event and queues it,
// dropping it when its queue is full. The series entry changes only if the Event was queued.
// Unlike client-go, which patches the first repeat and writes later counts on a timer from the
// Events it holds, every repeat is patched: holding nothing leaves nothing to write later.
func (r *Recorder) enqueue(ev *eventsv1.Event, now time.Time) {
	key := keyOf(ev)
	queue := r.queues[int(key[0])%len(r.queues)]
	r.mu.Lock()
	defer r.mu.Unlock()
	prev, repeat := r.series.get(key, now)
	if repeat {
		ev.Name, ev.Namespace = prev.name, prev.namespace
		ev.Series = &eventsv1.EventSeries{Count: prev.count + 1, LastObservedTime: metav1.MicroTime{Time: now}}
	}
	select {
	case queue <- ev:
	default:
		r.noteDrop(ev, now)
		return
	}
	next := entry{namespace: ev.Namespace, name: ev.Name, count: 1, lastObserved: now}
	if repeat {
		next.count = ev.Series.Count
	}
	r.series.put(key, next, now)
}

// noteDrop counts a dropped Event and reports the drops at most once a minute. Called with mu held.
func (r *Recorder) noteDrop(ev *eventsv1.Event, now time.Time) {
	r.dropped.Add(1)
	r.unlogged++
	if !r.lastDropLog.IsZero() && now.Sub(r.lastDropLog) < dropLogEvery {
		return
	}
	r.log.Info("Dropped events because the event queue was full", append([]any{"dropped", r.unlogged}, describe(ev)...)...)
	r.unlogged, r.lastDropLog = 0, now
}
