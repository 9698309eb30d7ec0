package eventrec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// maxAttempts bounds the writes of one Event that fail for a passing reason.
	maxAttempts    = 5
	requestTimeout = 10 * time.Second
)

// retryBackoff spaces the attempts: about 1, 2, 4 and 8 seconds, each jittered by up to half.
var retryBackoff = wait.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.5, Steps: maxAttempts}

// errRaced means the Event a series update found missing was created meanwhile: patch again.
var errRaced = errors.New("the event was created while its series was being written")

// NeedLeaderElection is false: every replica records its own Events, as client-go does.
func (r *Recorder) NeedLeaderElection() bool { return false }

// Start writes queued Events until ctx ends, then returns once every worker has stopped.
// Events still queued then are dropped, as the broadcaster drops them at shutdown.
func (r *Recorder) Start(ctx context.Context) error {
	if r.client == nil || r.scheme == nil {
		return fmt.Errorf("event recorder %q: client or scheme is nil", r.controller)
	}
	if !r.started.CompareAndSwap(false, true) {
		return fmt.Errorf("event recorder %q: already started", r.controller)
	}
	var wg sync.WaitGroup
	for _, q := range r.queues {
		wg.Go(func() { r.work(ctx, q) })
	}
	wg.Wait()
	return nil
}

func (r *Recorder) work(ctx context.Context, q <-chan *eventsv1.Event) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-q:
			r.write(ctx, ev)
		}
	}
}

// write writes ev, retrying transport errors, 429 and 5xx answers a few times.
func (r *Recorder) write(ctx context.Context, ev *eventsv1.Event) {
	backoff := retryBackoff
	for attempt := 1; ; attempt++ {
		err := r.writeOnce(ctx, ev)
		if err == nil {
			r.log.V(1).Info("Recorded an event", describe(ev)...)
			return
		}
		if ctx.Err() != nil {
			return
		}
		if !retriable(err) {
			r.log.Error(err, "Failed to write an event; dropped it", describe(ev)...)
			return
		}
		if attempt >= maxAttempts {
			r.log.Error(err, "Failed to write an event after retries; dropped it", describe(ev)...)
			return
		}
		t := r.clock.NewTimer(backoff.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// writeOnce patches the series of a repeated Event, and creates the Event when it is new or
// its earlier occurrence is gone (404), as client-go's recordEvent does.
func (r *Recorder) writeOnce(ctx context.Context, ev *eventsv1.Event) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	if ev.Series != nil {
		err := r.patchSeries(ctx, ev)
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	ev.ResourceVersion = ""
	err := r.client.Create(ctx, ev)
	if apierrors.IsAlreadyExists(err) {
		if ev.Series != nil {
			return errRaced
		}
		// A name is unique to its nanosecond: an earlier attempt went through.
		return nil
	}
	return err
}

// patchSeries sends the strategic-merge patch client-go computes for a series update.
func (r *Recorder) patchSeries(ctx context.Context, ev *eventsv1.Event) error {
	body, err := json.Marshal(struct {
		Series *eventsv1.EventSeries `json:"series"`
	}{ev.Series})
	if err != nil {
		return err
	}
	target := &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ev.Namespace, Name: ev.Name}}
	return r.client.Patch(ctx, target, client.RawPatch(types.StrategicMergePatchType, body))
}

// retriable tells passing failures (transport, 429, 5xx, a lost race) from rejections.
func retriable(err error) bool {
	if errors.Is(err, errRaced) {
		return true
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code := status.Status().Code
		return code == http.StatusTooManyRequests || code >= http.StatusInternalServerError
	}
	return !runtime.IsNotRegisteredError(err) && !errors.Is(err, context.Canceled)
}

// describe names an Event in logs; the note stays out of them.
func describe(ev *eventsv1.Event) []any {
	return []any{"type", ev.Type, "reason", ev.Reason, "kind", ev.Regarding.Kind,
		"namespace", ev.Regarding.Namespace, "name", ev.Regarding.Name}
}
