package eventrec

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

const testController = "idptoken-operator"

// t0 is whole microseconds, so an EventTime read back from the API equals it.
var t0 = time.Date(2026, 5, 1, 12, 0, 0, 123456000, time.UTC)

var scheme = clientgoscheme.Scheme

// fixture is a Recorder over a fake client that counts the Creates and Patches it answered.
type fixture struct {
	r       *Recorder
	c       client.WithWatch
	clock   *clocktesting.FakeClock
	logs    *logLines
	creates atomic.Int32
	patches atomic.Int32
}

// newFixture builds a Recorder; funcs may fail requests, the fixture counts them after they end.
func newFixture(t *testing.T, funcs interceptor.Funcs, opts Options) *fixture {
	t.Helper()
	f := &fixture{clock: clocktesting.NewFakeClock(t0), logs: &logLines{}}
	inner := funcs
	funcs.Create = func(ctx context.Context, c client.WithWatch, obj client.Object, o ...client.CreateOption) error {
		defer f.creates.Add(1)
		if inner.Create != nil {
			return inner.Create(ctx, c, obj, o...)
		}
		return c.Create(ctx, obj, o...)
	}
	funcs.Patch = func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, o ...client.PatchOption) error {
		defer f.patches.Add(1)
		if inner.Patch != nil {
			return inner.Patch(ctx, c, obj, p, o...)
		}
		return c.Patch(ctx, obj, p, o...)
	}
	f.c = fake.NewClientBuilder().WithScheme(scheme).WithInterceptorFuncs(funcs).Build()
	opts.Clock = f.clock
	if opts.Logger.GetSink() == nil {
		opts.Logger = f.logs.logger()
	}
	f.r = New(f.c, scheme, testController, opts)
	return f
}

// start runs the Recorder until the test ends.
func (f *fixture) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Start did not return after its context ended")
		}
	})
}

func (f *fixture) writes() int32 { return f.creates.Load() + f.patches.Load() }

func (f *fixture) events(t *testing.T) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	if err := f.c.List(context.Background(), &list); err != nil {
		t.Fatalf("listing events: %v", err)
	}
	return list.Items
}

// waitFor polls cond for a few seconds, stepping the fake clock whenever something sleeps on
// it, so that retries run at once.
func (f *fixture) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		if f.clock.HasWaiters() {
			f.clock.Step(time.Minute)
		}
		time.Sleep(time.Millisecond)
	}
}

func pod(name string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
		Namespace: "apps", Name: name, UID: types.UID("uid-" + name), ResourceVersion: "7",
	}}
}

// logLines collects log lines; the tests read them to check what is logged and what is not.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, strings.TrimSpace(prefix+" "+args))
	}, funcr.Options{Verbosity: 1})
}

func (l *logLines) matching(s string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.lines)
}
