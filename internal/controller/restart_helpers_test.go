package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

var restartEpoch = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// restartEvent is an Event the Restarter recorded: on what, and what it said.
type restartEvent struct{ On, Type, Reason, Note string }

// restartEvents records Events; safe for concurrent use.
type restartEvents struct {
	mu     sync.Mutex
	events []restartEvent
}

func (l *restartEvents) Eventf(regarding, _ runtime.Object, eventtype, reason, _, note string, args ...any) {
	kind := "?"
	switch o := regarding.(type) {
	case *authv1alpha1.IdPTokenBinding:
		kind = "IdPTokenBinding"
	case *appsv1.Deployment:
		kind = "Deployment"
	case *appsv1.StatefulSet:
		kind = "StatefulSet"
	case *appsv1.DaemonSet:
		kind = "DaemonSet"
	case *unstructured.Unstructured:
		kind = o.GetKind()
	}
	name := ""
	if m, err := meta.Accessor(regarding); err == nil {
		name = m.GetName()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, restartEvent{On: kind + "/" + name, Type: eventtype, Reason: reason, Note: fmt.Sprintf(note, args...)})
}

// take returns the Events recorded since the last take.
func (l *restartEvents) take() []restartEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.events
	l.events = nil
	return out
}

func countEvents(evs []restartEvent, on, reason string) int {
	n := 0
	for _, e := range evs {
		if (on == "" || e.On == on) && e.Reason == reason {
			n++
		}
	}
	return n
}

// restartFixture is a Restarter on a fake client and a fake clock, counting workload patches.
type restartFixture struct {
	r       *Restarter
	c       client.Client
	clock   *clocktesting.FakeClock
	events  *restartEvents
	mu      sync.Mutex
	patches map[string]int // "Kind/name" → patches
	fail    func(obj client.Object) error
	// failList, when set, fails the LISTs of workloads.
	failList func() error
}

type restartOption func(*restartFixture, *fake.ClientBuilder, *meta.DefaultRESTMapper)

// withArgoRollouts makes the cluster serve argoproj.io/v1alpha1 Rollouts.
func withArgoRollouts(_ *restartFixture, _ *fake.ClientBuilder, m *meta.DefaultRESTMapper) {
	m.Add(RolloutGVK, meta.RESTScopeNamespace)
}

func newRestartFixture(t *testing.T, objs []client.Object, opts ...restartOption) *restartFixture {
	t.Helper()
	scheme := unitScheme(t)
	mapper := meta.NewDefaultRESTMapper(nil)
	for gvk := range scheme.AllKnownTypes() {
		mapper.Add(gvk, meta.RESTScopeNamespace)
	}
	f := &restartFixture{clock: clocktesting.NewFakeClock(restartEpoch), events: &restartEvents{}, patches: map[string]int{}}
	b := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objs...).WithStatusSubresource(&authv1alpha1.IdPTokenBinding{})
	for _, o := range opts {
		o(f, b, mapper)
	}
	f.c = b.WithRESTMapper(mapper).WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if _, isBinding := obj.(*authv1alpha1.IdPTokenBinding); !isBinding {
				if f.fail != nil {
					if err := f.fail(obj); err != nil {
						return err
					}
				}
				f.mu.Lock()
				f.patches[workloadKind(obj)+"/"+obj.GetName()]++
				f.mu.Unlock()
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
			if f.failList != nil {
				if err := f.failList(); err != nil {
					return err
				}
			}
			return c.List(ctx, list, opts...)
		},
	}).Build()
	f.r = &Restarter{Client: f.c, APIReader: f.c, Recorder: f.events, Clock: f.clock}
	return f
}

func workloadKind(o client.Object) string {
	switch o := o.(type) {
	case *appsv1.Deployment:
		return "Deployment"
	case *appsv1.StatefulSet:
		return "StatefulSet"
	case *appsv1.DaemonSet:
		return "DaemonSet"
	case *unstructured.Unstructured:
		return o.GetKind()
	}
	return fmt.Sprintf("%T", o)
}

func (f *restartFixture) patchCount(kindName string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.patches[kindName]
}

// step advances the clock and fires what is due, as Start would.
func (f *restartFixture) step(d time.Duration) {
	f.clock.Step(d)
	f.r.fireDue(context.Background())
}

func (f *restartFixture) binding(t *testing.T, name string) *authv1alpha1.IdPTokenBinding {
	t.Helper()
	b := &authv1alpha1.IdPTokenBinding{}
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: name}, b); err != nil {
		t.Fatal(err)
	}
	return b
}

func (f *restartFixture) restartedAt(t *testing.T, name string) string {
	t.Helper()
	d := &appsv1.Deployment{}
	if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: name}, d); err != nil {
		t.Fatal(err)
	}
	return d.Spec.Template.Annotations[RestartedAtAnnotation]
}

func restartBinding(name string, minInterval time.Duration, targets ...authv1alpha1.RolloutRestartTarget) *authv1alpha1.IdPTokenBinding {
	b := &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, UID: types.UID("uid-" + name)},
		Spec:       authv1alpha1.IdPTokenBindingSpec{RolloutRestartTargets: targets},
	}
	if minInterval > 0 {
		b.Spec.RolloutRestartMinInterval = &metav1.Duration{Duration: minInterval}
	}
	return b
}

func byName(kind authv1alpha1.RolloutRestartKind, name string) authv1alpha1.RolloutRestartTarget {
	return authv1alpha1.RolloutRestartTarget{Kind: kind, Name: name}
}

func bySelector(kind authv1alpha1.RolloutRestartKind, labels map[string]string) authv1alpha1.RolloutRestartTarget {
	return authv1alpha1.RolloutRestartTarget{Kind: kind, Selector: &metav1.LabelSelector{MatchLabels: labels}}
}

func deployment(name string, labels map[string]string, restartedAt string) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: name, Labels: labels}}
	if restartedAt != "" {
		d.Spec.Template.Annotations = map[string]string{RestartedAtAnnotation: restartedAt}
	}
	return d
}

// restartCount reads idptoken_rollout_restarts_total{namespace="team-a",kind} from the manager's registry.
func restartCount(t *testing.T, kind string) float64 {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range families {
		if fam.GetName() != metrics.RolloutRestartsTotal {
			continue
		}
		for _, m := range fam.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if got["namespace"] == "team-a" && got["kind"] == kind {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

var forbidden = apierrors.NewForbidden(schema.GroupResource{Group: "apps", Resource: "deployments"}, "api",
	errors.New(`user "system:serviceaccount:idptoken-system:idptoken" cannot patch resource "deployments"`))

var unavailable = apierrors.NewServiceUnavailable("etcd is catching up")

func pendingKeys(r *Restarter) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k := range r.pending {
		out = append(out, k.String())
	}
	return out
}

func hasNote(evs []restartEvent, reason, part string) bool {
	for _, e := range evs {
		if e.Reason == reason && strings.Contains(e.Note, part) {
			return true
		}
	}
	return false
}
