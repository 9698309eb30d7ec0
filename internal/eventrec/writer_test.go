package eventrec

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestWriteRetriesPassingFailuresOnly(t *testing.T) {
	gr := eventsv1.Resource("events")
	unavailable := apierrors.NewServiceUnavailable("etcd is away")
	tests := []struct {
		name         string
		failures     []error // answers to the target's Creates, in order; then the fake client answers
		wantAttempts int32
		wantWritten  bool
	}{
		{"503 is retried", []error{unavailable, unavailable}, 3, true},
		{"429 is retried", []error{apierrors.NewTooManyRequests("slow down", 1)}, 2, true},
		{"500 is retried", []error{apierrors.NewInternalError(errors.New("boom"))}, 2, true},
		{"504 is retried", []error{apierrors.NewTimeoutError("took too long", 1)}, 2, true},
		{"a transport error is retried", []error{errors.New("dial tcp: connection refused")}, 2, true},
		{"a lasting 503 is given up", []error{unavailable, unavailable, unavailable, unavailable, unavailable, unavailable}, maxAttempts, false},
		{"400 is dropped", []error{apierrors.NewBadRequest("bad")}, 1, false},
		{"403 is dropped", []error{apierrors.NewForbidden(gr, "x", errors.New("no"))}, 1, false},
		{"422 is dropped", []error{apierrors.NewInvalid(eventsv1.SchemeGroupVersion.WithKind("Event").GroupKind(), "x",
			field.ErrorList{field.TooLong(field.NewPath("note"), "", 1024)})}, 1, false},
		{"AlreadyExists means an earlier attempt went through", []error{apierrors.NewAlreadyExists(gr, "x")}, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var attempts atomic.Int32
			f := newFixture(t, interceptor.Funcs{
				Create: func(ctx context.Context, c client.WithWatch, obj client.Object, o ...client.CreateOption) error {
					if !strings.HasPrefix(obj.GetName(), "target.") {
						return c.Create(ctx, obj, o...)
					}
					if n := int(attempts.Add(1)); n <= len(tc.failures) {
						return tc.failures[n-1]
					}
					return c.Create(ctx, obj, o...)
				},
			}, Options{Workers: 1})
			f.start(t)
			f.r.Eventf(pod("target"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed")
			// One worker: the sentinel is written once the target's retries are over.
			f.r.Eventf(pod("sentinel"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed")
			f.waitFor(t, "the sentinel event", func() bool {
				for _, ev := range f.events(t) {
					if ev.Regarding.Name == "sentinel" {
						return true
					}
				}
				return false
			})
			if n := attempts.Load(); n != tc.wantAttempts {
				t.Errorf("attempts = %d, want %d", n, tc.wantAttempts)
			}
			if written := len(f.events(t)) == 2; written != tc.wantWritten {
				t.Errorf("written = %v, want %v", written, tc.wantWritten)
			}
		})
	}
}

func TestRetryWaitsOnTheClockAndEndsWithTheContext(t *testing.T) {
	f := newFixture(t, interceptor.Funcs{
		Create: func(context.Context, client.WithWatch, client.Object, ...client.CreateOption) error {
			return apierrors.NewServiceUnavailable("away")
		},
	}, Options{Workers: 1})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Start(ctx) }()
	f.r.Eventf(pod("web"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed")
	deadline := time.Now().Add(5 * time.Second)
	for f.creates.Load() < 1 || !f.clock.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the worker never waited to retry")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	if n := f.creates.Load(); n != 1 {
		t.Errorf("creates = %d before the clock moved, want 1", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Start: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return while its worker waited to retry")
	}
}

func TestStartStopsEveryWorker(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFixture(t, interceptor.Funcs{}, Options{Workers: 8})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Start(ctx) }()
	f.r.Eventf(pod("web"), nil, corev1.EventTypeNormal, "Issued", "Refresh", "refreshed")
	f.waitFor(t, "the event", func() bool { return f.creates.Load() == 1 })
	if n := runtime.NumGoroutine(); n < before+8 {
		t.Fatalf("goroutines = %d while running, want at least %d: the count cannot show the workers", n, before+8)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Start did not return after its context ended")
	}
	f.waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestStartRefuses(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()

	f := newFixture(t, interceptor.Funcs{}, Options{})
	if err := f.r.Start(cancelled); err != nil {
		t.Fatalf("Start with an ended context: %v, want nil at once", err)
	}
	if err := f.r.Start(cancelled); err == nil {
		t.Error("a second Start succeeded")
	}
	if err := New(nil, scheme, testController, Options{}).Start(cancelled); err == nil {
		t.Error("Start without a client succeeded")
	}
	if err := New(f.c, nil, testController, Options{}).Start(cancelled); err == nil {
		t.Error("Start without a scheme succeeded")
	}
	if f.r.NeedLeaderElection() {
		t.Error("NeedLeaderElection = true; every replica must record its events")
	}
}
