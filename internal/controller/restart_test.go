package controller

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func TestDecideRestart(t *testing.T) {
	now := restartEpoch
	req := func(name string, ago, interval time.Duration) restartRequest {
		return restartRequest{Binding: types.NamespacedName{Namespace: "team-a", Name: name}, At: now.Add(-ago), MinInterval: interval}
	}
	tests := []struct {
		name        string
		restartedAt time.Time
		requests    []restartRequest
		want        restartVerdict
		wantUntil   time.Time
		wantOwed    []string
	}{
		{name: "never restarted: at once", requests: []restartRequest{req("a", time.Second, 10*time.Minute)},
			want: restartNow, wantOwed: []string{"a"}},
		{name: "restarted after every change: served", restartedAt: now.Add(-2 * time.Second),
			requests: []restartRequest{req("a", 3*time.Second, 10*time.Minute), req("b", 4*time.Second, time.Minute)}, want: restartNothing},
		{name: "restarted longer ago than the interval: at once", restartedAt: now.Add(-11 * time.Minute),
			requests: []restartRequest{req("a", time.Second, 10*time.Minute)}, want: restartNow, wantOwed: []string{"a"}},
		{name: "restarted exactly one interval ago: at once", restartedAt: now.Add(-10 * time.Minute),
			requests: []restartRequest{req("a", time.Second, 10*time.Minute)}, want: restartNow, wantOwed: []string{"a"}},
		{name: "restarted within the interval: at its end", restartedAt: now.Add(-2 * time.Minute),
			requests: []restartRequest{req("a", time.Minute, 10*time.Minute)},
			want:     restartLater, wantUntil: now.Add(8 * time.Minute), wantOwed: []string{"a"}},
		{name: "the least interval of the owed requests counts", restartedAt: now.Add(-2 * time.Minute),
			requests: []restartRequest{req("a", time.Minute, 10*time.Minute), req("b", 30*time.Second, time.Minute)},
			want:     restartNow, wantOwed: []string{"a", "b"}},
		{name: "a served request's interval does not count", restartedAt: now.Add(-2 * time.Minute),
			requests: []restartRequest{req("a", 3*time.Minute, time.Minute), req("b", time.Minute, 10*time.Minute)},
			want:     restartLater, wantUntil: now.Add(8 * time.Minute), wantOwed: []string{"b"}},
		{name: "a restart scheduled after the change serves it", restartedAt: now.Add(time.Minute),
			requests: []restartRequest{req("a", time.Second, 10*time.Minute)}, want: restartNothing},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, until, owed := decideRestart(tc.restartedAt, tc.requests, now)
			var names []string
			for _, q := range owed {
				names = append(names, q.Binding.Name)
			}
			slices.Sort(names)
			if got != tc.want || !until.Equal(tc.wantUntil) || !slices.Equal(names, tc.wantOwed) {
				t.Errorf("decideRestart = %v, %v, %v; want %v, %v, %v", got, until, names, tc.want, tc.wantUntil, tc.wantOwed)
			}
		})
	}
}

// Ten bindings of one identity, renewed within a few seconds, restart the Deployment they share
// once, whether they name it or select it.
func TestBindingsRenewedTogetherShareOneRestart(t *testing.T) {
	var bindings []client.Object
	for i := range 10 {
		target := byName(authv1alpha1.RolloutRestartDeployment, "api")
		if i%2 == 1 {
			target = bySelector(authv1alpha1.RolloutRestartDeployment, map[string]string{"app": "api"})
		}
		bindings = append(bindings, restartBinding(fmt.Sprintf("b%d", i), 0, target))
	}
	f := newRestartFixture(t, append(bindings, deployment("api", map[string]string{"app": "api"}, "")))
	before := restartCount(t, "Deployment")

	for _, b := range bindings {
		f.r.Request(b.(*authv1alpha1.IdPTokenBinding))
		f.step(400 * time.Millisecond)
	}
	if n := f.patchCount("Deployment/api"); n != 0 {
		t.Fatalf("restarted %d times within the coalescing window", n)
	}
	f.step(time.Second) // 5.0 s after the first request
	fired := restartEpoch.Add(5 * time.Second)
	if n := f.patchCount("Deployment/api"); n != 1 {
		t.Fatalf("Deployment api restarted %d times, want 1", n)
	}
	if got := f.restartedAt(t, "api"); got != rfc3339(fired) {
		t.Errorf("restartedAt = %q, want %q", got, rfc3339(fired))
	}
	if got := restartCount(t, "Deployment") - before; got != 1 {
		t.Errorf("idptoken_rollout_restarts_total{namespace=team-a,kind=Deployment} grew by %v, want 1", got)
	}
	evs := f.events.take()
	for _, b := range bindings {
		got := f.binding(t, b.GetName()).Status.LastRolloutRestart
		if got == nil || !got.Time.Equal(fired) {
			t.Errorf("%s: status.lastRolloutRestart = %v, want %v", b.GetName(), got, fired)
		}
		if countEvents(evs, "IdPTokenBinding/"+b.GetName(), ReasonRolloutRestarted) != 1 {
			t.Errorf("%s: no RolloutRestarted Event: %v", b.GetName(), evs)
		}
	}
	if countEvents(evs, "Deployment/api", ReasonRolloutRestarted) != 1 || !hasNote(evs, ReasonRolloutRestarted, "b0, b1, b2") {
		t.Errorf("no single Event on the Deployment naming the bindings: %v", evs)
	}
	f.step(time.Hour)
	if n := f.patchCount("Deployment/api"); n != 1 || len(pendingKeys(f.r)) != 0 {
		t.Errorf("restarted %d times, pending %v, after nothing more changed", n, pendingKeys(f.r))
	}
}

// A change within rolloutRestartMinInterval of the last restart is restarted when the interval
// ends, so that the app does get the new token; the pending restart is not repeated.
func TestAChangeWithinTheMinIntervalIsDeferredNotLost(t *testing.T) {
	b := restartBinding("alice", 10*time.Minute, byName(authv1alpha1.RolloutRestartDeployment, "api"))
	f := newRestartFixture(t, []client.Object{b, deployment("api", nil, "")})
	f.r.Request(b)
	f.step(5 * time.Second)
	// restartedAt is written in whole seconds, so it counts as up to a second later.
	first := restartEpoch.Add(6 * time.Second)
	f.events.take()

	f.step(time.Minute)
	f.r.Request(b)
	f.r.Request(b) // a third change before the restart joins it
	f.step(5 * time.Second)
	if n := f.patchCount("Deployment/api"); n != 1 {
		t.Fatalf("restarted %d times within the minimum interval, want 1", n)
	}
	evs := f.events.take()
	if !hasNote(evs, ReasonRolloutRestartDeferred, "restarted again at "+rfc3339(first.Add(10*time.Minute))) {
		t.Errorf("no RolloutRestartDeferred Event naming when: %v", evs)
	}
	f.clock.SetTime(first.Add(10*time.Minute - 2*time.Second))
	f.r.fireDue(context.Background())
	if n := f.patchCount("Deployment/api"); n != 1 {
		t.Fatalf("restarted before the interval ended")
	}
	f.step(2 * time.Second)
	if n := f.patchCount("Deployment/api"); n != 2 {
		t.Fatalf("the deferred restart did not happen: %d restarts", n)
	}
	if got := f.restartedAt(t, "api"); got != rfc3339(first.Add(10*time.Minute)) {
		t.Errorf("restartedAt = %q", got)
	}
	f.step(time.Hour)
	if n := f.patchCount("Deployment/api"); n != 2 {
		t.Errorf("%d restarts, want 2", n)
	}
}

// A `kubectl rollout restart` after the change already gave the pods the new token.
func TestARestartAfterTheChangeServesIt(t *testing.T) {
	b := restartBinding("alice", 0, byName(authv1alpha1.RolloutRestartDeployment, "api"))
	f := newRestartFixture(t, []client.Object{b, deployment("api", nil, rfc3339(restartEpoch.Add(2*time.Second)))})
	f.clock.Step(time.Second)
	f.r.Request(b)
	f.step(5 * time.Second)
	if n := f.patchCount("Deployment/api"); n != 0 {
		t.Errorf("restarted %d times though someone restarted it after the change", n)
	}
	if evs := f.events.take(); len(evs) != 0 {
		t.Errorf("Events: %v", evs)
	}
}

// Selectors are resolved when the restart fires: a Deployment created after the request is restarted.
func TestSelectorsAreResolvedWhenTheRestartFires(t *testing.T) {
	b := restartBinding("alice", 0, bySelector(authv1alpha1.RolloutRestartDeployment, map[string]string{"uses-token": "alice"}))
	f := newRestartFixture(t, []client.Object{b})
	f.r.Request(b)
	for _, d := range []*appsv1.Deployment{
		deployment("late", map[string]string{"uses-token": "alice"}, ""),
		deployment("other", map[string]string{"uses-token": "bob"}, ""),
	} {
		if err := f.c.Create(context.Background(), d); err != nil {
			t.Fatal(err)
		}
	}
	f.step(5 * time.Second)
	if f.patchCount("Deployment/late") != 1 || f.patchCount("Deployment/other") != 0 {
		t.Errorf("restarts: %v, want Deployment/late only", f.patches)
	}
}

func TestEveryKindIsRestartedAsKubectlDoes(t *testing.T) {
	meta := metav1.ObjectMeta{Namespace: "team-a", Name: "w"}
	rollout := &unstructured.Unstructured{}
	rollout.SetGroupVersionKind(RolloutGVK)
	rollout.SetNamespace("team-a")
	rollout.SetName("w")
	for kind, obj := range map[authv1alpha1.RolloutRestartKind]client.Object{
		authv1alpha1.RolloutRestartDeployment:  &appsv1.Deployment{ObjectMeta: meta},
		authv1alpha1.RolloutRestartStatefulSet: &appsv1.StatefulSet{ObjectMeta: meta},
		authv1alpha1.RolloutRestartDaemonSet:   &appsv1.DaemonSet{ObjectMeta: meta},
		authv1alpha1.RolloutRestartRollout:     rollout,
	} {
		t.Run(string(kind), func(t *testing.T) {
			b := restartBinding("alice", 0, byName(kind, "w"))
			f := newRestartFixture(t, []client.Object{b, obj}, withArgoRollouts)
			before := restartCount(t, string(kind))
			f.r.Request(b)
			f.step(5 * time.Second)
			got, _, _ := newWorkload(kind)
			if err := f.c.Get(context.Background(), types.NamespacedName{Namespace: "team-a", Name: "w"}, got); err != nil {
				t.Fatal(err)
			}
			// Written in whole seconds, it reads back a second later: the interval is never cut short.
			if at := lastRestart(got); !at.Equal(restartEpoch.Add(6 * time.Second)) {
				t.Errorf("last restart read back as %v", at)
			}
			if n := restartCount(t, string(kind)) - before; n != 1 {
				t.Errorf("metric grew by %v, want 1", n)
			}
			if evs := f.events.take(); countEvents(evs, string(kind)+"/w", ReasonRolloutRestarted) != 1 {
				t.Errorf("no Event on the %s: %v", kind, evs)
			}
		})
	}
}

// Targets that cannot be restarted say why on the binding, and never stop the others.
func TestFailedTargetsSayWhyAndTheOthersRestart(t *testing.T) {
	tests := map[string]struct {
		target   authv1alpha1.RolloutRestartTarget
		fail     error
		opts     []restartOption
		wantNote string
		retried  bool
	}{
		"missing workload": {target: byName(authv1alpha1.RolloutRestartDeployment, "gone"), wantNote: `Could not restart Deployment gone: deployments.apps "gone" not found`},
		"not permitted": {target: byName(authv1alpha1.RolloutRestartStatefulSet, "db"), fail: forbidden,
			wantNote: "set the Helm chart's rolloutRestart.enabled=true"},
		"Argo Rollouts not installed": {target: byName(authv1alpha1.RolloutRestartRollout, "canary"),
			wantNote: "Argo Rollouts is not installed"},
		"API server unavailable": {target: byName(authv1alpha1.RolloutRestartStatefulSet, "db"), fail: unavailable,
			wantNote: "retrying in 30s", retried: true},
		"invalid selector": {target: authv1alpha1.RolloutRestartTarget{Kind: authv1alpha1.RolloutRestartDeployment,
			Selector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Near"}}}},
			wantNote: "invalid selector"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := restartBinding("alice", 0, tc.target, byName(authv1alpha1.RolloutRestartDeployment, "api"))
			db := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "db"}}
			f := newRestartFixture(t, []client.Object{b, deployment("api", nil, ""), db}, tc.opts...)
			failures := 0
			f.fail = func(o client.Object) error {
				if o.GetName() == "db" && tc.fail != nil {
					failures++
					if failures == 1 || tc.fail == forbidden {
						return tc.fail
					}
				}
				return nil
			}
			f.r.Request(b)
			f.step(5 * time.Second)
			evs := f.events.take()
			if !hasNote(evs, ReasonRolloutRestartFailed, tc.wantNote) {
				t.Errorf("no RolloutRestartFailed Event saying %q: %v", tc.wantNote, evs)
			}
			if f.patchCount("Deployment/api") != 1 || f.binding(t, "alice").Status.LastRolloutRestart == nil {
				t.Errorf("the other target was not restarted: %v", f.patches)
			}
			if pending := pendingKeys(f.r); tc.retried != (len(pending) == 1) {
				t.Errorf("pending after the failure: %v", pending)
			}
			f.step(30 * time.Second)
			if tc.retried && f.patchCount("StatefulSet/db") != 1 {
				t.Errorf("not restarted on retry: %v", f.patches)
			}
		})
	}
}

// A transient failure is retried a few times, then given up with an Event.
func TestTransientFailuresAreRetriedAFewTimes(t *testing.T) {
	b := restartBinding("alice", 0, byName(authv1alpha1.RolloutRestartDeployment, "api"))
	f := newRestartFixture(t, []client.Object{b, deployment("api", nil, "")})
	attempts := 0
	f.fail = func(client.Object) error { attempts++; return unavailable }
	f.r.Request(b)
	f.step(5 * time.Second)
	for range 5 {
		f.step(restartRetryDelay)
	}
	if attempts != restartMaxAttempts || len(pendingKeys(f.r)) != 0 {
		t.Errorf("%d attempts, pending %v; want %d attempts and nothing pending", attempts, pendingKeys(f.r), restartMaxAttempts)
	}
	if f.binding(t, "alice").Status.LastRolloutRestart != nil {
		t.Error("status.lastRolloutRestart set though nothing was restarted")
	}
}

// A selector that could not be listed is listed again on retry.
func TestASelectorIsRetriedAfterAFailedList(t *testing.T) {
	b := restartBinding("alice", 0, bySelector(authv1alpha1.RolloutRestartDeployment, map[string]string{"app": "api"}))
	f := newRestartFixture(t, []client.Object{b, deployment("api", map[string]string{"app": "api"}, "")})
	lists := 0
	f.failList = func() error {
		if lists++; lists == 1 {
			return unavailable
		}
		return nil
	}
	f.r.Request(b)
	f.step(5 * time.Second)
	f.step(restartRetryDelay)
	if n := f.patchCount("Deployment/api"); n != 1 {
		t.Errorf("Deployment api restarted %d times after a failed list, want 1: %v", n, f.events.take())
	}
}

func TestNothingIsRestartedForABindingBeingDeletedOrReplaced(t *testing.T) {
	target := byName(authv1alpha1.RolloutRestartDeployment, "api")
	deleting := restartBinding("deleting", 0, target)
	deleting.DeletionTimestamp = &metav1.Time{Time: restartEpoch}
	deleting.Finalizers = []string{authv1alpha1.GroupVersion.Group + "/finalizer"}
	deleted := restartBinding("deleted", 0, target)
	replaced := restartBinding("replaced", 0, target)
	f := newRestartFixture(t, []client.Object{deleting, deleted, replaced, deployment("api", nil, "")})

	f.r.Request(deleting)
	if p := pendingKeys(f.r); len(p) != 0 {
		t.Fatalf("a binding being deleted asked for %v", p)
	}
	f.r.Request(deleted)
	f.r.Request(replaced)
	ctx := context.Background()
	if err := f.c.Delete(ctx, deleted); err != nil {
		t.Fatal(err)
	}
	if err := f.c.Delete(ctx, replaced); err != nil {
		t.Fatal(err)
	}
	again := restartBinding("replaced", 0, target)
	again.UID = "uid-new"
	if err := f.c.Create(ctx, again); err != nil {
		t.Fatal(err)
	}
	f.step(5 * time.Second)
	if n := f.patchCount("Deployment/api"); n != 0 {
		t.Errorf("restarted %d times for bindings that are gone", n)
	}
}

// Start fires restarts on its own, and Request is safe from many goroutines (go test -race).
func TestStartFiresAndRequestIsSafeForConcurrentUse(t *testing.T) {
	var objs []client.Object
	for i := range 8 {
		objs = append(objs, restartBinding(fmt.Sprintf("b%d", i), 0, byName(authv1alpha1.RolloutRestartDeployment, "api")))
	}
	f := newRestartFixture(t, append(objs, deployment("api", nil, "")))
	if !f.r.NeedLeaderElection() {
		t.Error("the Restarter must run on the leader only")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.r.Start(ctx) }()
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() { f.r.Request(objs[i%len(objs)].(*authv1alpha1.IdPTokenBinding)) })
	}
	wg.Wait()
	f.clock.Step(5 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for f.patchCount("Deployment/api") == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start: %v", err)
	}
	if n := f.patchCount("Deployment/api"); n != 1 {
		t.Errorf("Deployment api restarted %d times, want 1", n)
	}
	if err := (&Restarter{}).Start(context.Background()); err == nil {
		t.Error("Start ran without its dependencies")
	}
}

func TestAWorkloadEventNamesAtMostTenBindings(t *testing.T) {
	names := make([]string, 200)
	for i := range names {
		names[i] = fmt.Sprintf("binding-with-a-long-name-%03d", i)
	}
	got := namesText(names)
	if !strings.HasSuffix(got, "and 190 more") || len(got) > 400 {
		t.Errorf("namesText of 200 names = %d bytes %q: want 10 names and a count, well under an Event's 1 KiB", len(got), got)
	}
	if namesText(names[:2]) != names[0]+", "+names[1] {
		t.Error("a few names are all listed")
	}
}

func TestADeferredRestartIsToldOncePerBinding(t *testing.T) {
	b := restartBinding("alice", 10*time.Minute, byName(authv1alpha1.RolloutRestartDeployment, "api"))
	f := newRestartFixture(t, []client.Object{b, deployment("api", nil, "")})
	f.r.Request(b)
	f.step(5 * time.Second)
	f.events.take()
	for range 3 { // three renewals within the interval
		f.step(time.Minute)
		f.r.Request(b)
		f.step(5 * time.Second)
	}
	if n := countEvents(f.events.take(), "IdPTokenBinding/alice", ReasonRolloutRestartDeferred); n != 1 {
		t.Errorf("%d RolloutRestartDeferred Events for one deferred restart, want 1", n)
	}
}
