package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestOwnWritesFiltersOnlyEchoes(t *testing.T) {
	w := newOwnWrites(clocktesting.NewFakePassiveClock(time.Now()))
	secret := func(rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", ResourceVersion: rv}}
	}
	p := w.predicate()
	w.wrote(types.NamespacedName{Namespace: "ns", Name: "s"}, ptr.To("10"))

	if p.Create(event.CreateEvent{Object: secret("10")}) {
		t.Error("the echo of the operator's own create queued the binding")
	}
	if len(w.rv) != 0 {
		t.Errorf("the write is still kept after its echo: %v", w.rv)
	}
	w.wrote(types.NamespacedName{Namespace: "ns", Name: "s"}, ptr.To("10"))
	if p.Update(event.UpdateEvent{ObjectOld: secret("9"), ObjectNew: secret("10")}) {
		t.Error("the echo of the operator's own update queued the binding")
	}
	w.wrote(types.NamespacedName{Namespace: "ns", Name: "s"}, ptr.To("10"))
	if !p.Update(event.UpdateEvent{ObjectOld: secret("10"), ObjectNew: secret("11")}) {
		t.Error("an edit by someone else was filtered: the Secret would not be restored")
	}
	if !p.Delete(event.DeleteEvent{Object: secret("10")}) {
		t.Error("a deletion was filtered: the Secret would not be restored")
	}
	if !p.Create(event.CreateEvent{Object: secret("10")}) {
		t.Error("a deletion must forget the recorded write")
	}
}

// statusWritesFixture is a statusWrites on a fake clock, the key of binding ns/b, and that
// binding's object at a resourceVersion (a Secret stands in: only the metadata is read).
func statusWritesFixture() (*statusWrites, *clocktesting.FakePassiveClock, types.NamespacedName, func(rv string) *corev1.Secret) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	obj := func(rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "b", ResourceVersion: rv}}
	}
	return newStatusWrites(clk), clk, types.NamespacedName{Namespace: "ns", Name: "b"}, obj
}

func TestStatusWritesWaitOnlyForACacheBehindTheWrite(t *testing.T) {
	w, clk, key, obj := statusWritesFixture()

	w.wrote(key, "10", "11")
	if !w.behind(obj("10")) {
		t.Fatal("a pass starting from the object the status write replaced went ahead")
	}
	if w.behind(obj("11")) {
		t.Fatal("a pass starting from the written object waited")
	}
	if w.behind(obj("10")) {
		t.Fatal("the write was not forgotten once the cache had seen it")
	}

	w.wrote(key, "12", "12") // a write that changed nothing: no newer object will ever come
	if w.behind(obj("12")) {
		t.Fatal("a pass waited for a write that changed nothing")
	}

	w.wrote(key, "13", "14")
	clk.SetTime(clk.Now().Add(statusLagLimit + time.Second))
	if w.behind(obj("13")) {
		t.Fatal("a pass waited for a cache still behind after the limit")
	}

	w.wrote(key, "15", "16")
	p := w.observer()
	if p.Update(event.UpdateEvent{ObjectOld: obj("15"), ObjectNew: obj("16")}) {
		t.Fatal("the observer queued the binding for the echo of its own status write")
	}
	if w.behind(obj("15")) {
		t.Fatal("the observer did not forget a write the cache has seen")
	}
	w.wrote(key, "17", "18")
	if p.Delete(event.DeleteEvent{Object: obj("17")}) || w.behind(obj("17")) {
		t.Fatal("a deleted binding's write was kept, or its deletion queued by the observer")
	}

	// A write the observer saw before it was recorded is forgotten by the next sweep once
	// statusLagLimit has passed, not kept until its own binding's next pass.
	w.wrote(key, "19", "20")
	clk.SetTime(clk.Now().Add(statusLagLimit + time.Second))
	w.wrote(types.NamespacedName{Namespace: key.Namespace, Name: "other"}, "1", "2")
	w.sweep(clk.Now())
	if len(w.last) != 1 {
		t.Fatalf("kept %d writes, want only the new one", len(w.last))
	}
}

func TestOwnStatesStandInOnlyForACacheBehindTheWrite(t *testing.T) {
	o := newOwnStates(clocktesting.NewFakePassiveClock(time.Now()))
	key := types.NamespacedName{Namespace: "home", Name: "idptoken-state-0123456789abcdef"}
	state := func(rv, token string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, ResourceVersion: rv},
			Data:       map[string][]byte{"refresh_token": []byte(token)},
		}
	}

	if o.ahead(key, nil) != nil {
		t.Fatal("a Secret this manager never wrote was taken from memory: a miss must be confirmed")
	}
	o.wrote("", state("5", "rt-1")) // created
	got := o.ahead(key, nil)
	if got == nil || got.ResourceVersion != "5" || string(got.Data["refresh_token"]) != "rt-1" {
		t.Fatalf("a cache without the created Secret: got %v, want the write", got)
	}
	got.Data["refresh_token"] = []byte("changed")
	if again := o.ahead(key, nil); string(again.Data["refresh_token"]) != "rt-1" {
		t.Fatal("the kept write was changed through a copy handed out")
	}

	o.wrote("5", state("6", "rt-2")) // updated
	if o.ahead(key, state("5", "rt-1")) == nil {
		t.Fatal("a cache still at the replaced version: the write was not used")
	}
	if o.ahead(key, nil) != nil {
		t.Fatal("the cache shows no Secret after an update (deleted since?): taken from memory, not re-read")
	}
	if o.ahead(key, state("7", "rt-other")) != nil {
		t.Fatal("a cache at another version (someone else's write): taken from memory, not re-read")
	}

	o.seen(state("5", "rt-1")) // the old object of an update event
	if o.ahead(key, state("5", "rt-1")) == nil {
		t.Fatal("the write was forgotten on seeing the version it replaced")
	}
	o.seen(state("6", "rt-2"))
	if o.ahead(key, state("5", "rt-1")) != nil {
		t.Fatal("the write was kept after the cache showed it")
	}
}

// A write whose watch event came before the write was recorded is never seen again; it is
// forgotten after ownStateTTL all the same, so that the map does not keep one Secret per lineage.
func TestOwnStatesForgetAWriteTheCacheShowedBeforeItWasRecorded(t *testing.T) {
	clk := clocktesting.NewFakePassiveClock(time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC))
	o := newOwnStates(clk)
	state := func(name, rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "home", Name: name, ResourceVersion: rv}}
	}
	o.seen(state("a", "6")) // the event of the write, first
	o.wrote("5", state("a", "6"))
	if o.ahead(types.NamespacedName{Namespace: "home", Name: "a"}, state("a", "5")) == nil {
		t.Fatal("a fresh write was not used for a cache behind it")
	}
	clk.SetTime(clk.Now().Add(ownStateTTL))
	if o.ahead(types.NamespacedName{Namespace: "home", Name: "a"}, state("a", "5")) != nil {
		t.Fatal("a write older than ownStateTTL stood in for the cache")
	}
	o.wrote("", state("b", "9"))
	o.sweep(clk.Now())
	if _, kept := o.last[types.NamespacedName{Namespace: "home", Name: "a"}]; kept || len(o.last) != 1 {
		t.Fatalf("kept %d writes, want only the new one", len(o.last))
	}
}

// Every record of the manager's own writes forgets, at a sweep, the writes kept past their
// time, and only those; the sweeper runs the sweeps on its clock.
func TestTheSweeperForgetsOnlyWritesKeptPastTheirTime(t *testing.T) {
	start := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	writes, status, states := newOwnWrites(clk), newStatusWrites(clk), newOwnStates(clk)
	key := func(name string) types.NamespacedName { return types.NamespacedName{Namespace: "ns", Name: name} }
	record := func(name string) {
		writes.wrote(key(name), ptr.To("5"))
		status.wrote(key(name), "4", "5")
		states.wrote("4", &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name, ResourceVersion: "5"}})
	}
	waitForTimer := func() {
		for !clk.HasWaiters() {
			time.Sleep(time.Millisecond)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sweeper := &recordSweeper{clock: clk, every: sweepRecordsEvery,
		sweeps: []func(time.Time){writes.sweep, status.sweep, states.sweep}}
	done := make(chan error)
	go func() { done <- sweeper.Start(ctx) }()
	waitForTimer()

	record("old") // its echoes came before it was recorded: nothing else forgets it
	clk.Step(10 * time.Second)
	record("new")
	clk.Step(sweepRecordsEvery - 10*time.Second) // the sweep: 30 s after "old", 20 s after "new"
	waitForTimer()                               // waiting again: the sweep is over
	writes.mu.Lock()
	status.mu.Lock()
	states.mu.Lock()
	if _, ok := writes.rv[key("new")]; !ok || len(writes.rv) != 1 {
		t.Errorf("own writes kept %d, want only the one younger than ownWriteTTL", len(writes.rv))
	}
	if len(status.last) != 0 {
		t.Errorf("status writes kept %d, want none (both past statusLagLimit)", len(status.last))
	}
	if _, ok := states.last[key("new")]; !ok || len(states.last) != 1 {
		t.Errorf("own states kept %d, want only the one younger than ownStateTTL", len(states.last))
	}
	states.mu.Unlock()
	status.mu.Unlock()
	writes.mu.Unlock()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// The Restarter's unconditional patch of status.lastRolloutRestart knows only the version it
// produced: a pass waits until the cache shows that version (or statusLagLimit).
func TestStatusWritesWaitForARestartReportTheCacheHasNotShown(t *testing.T) {
	w, clk, key, obj := statusWritesFixture()
	w.wroteOver(key, "30")
	if !w.behind(obj("29")) {
		t.Fatal("a pass starting from the binding before the restart's patch went ahead: its status write would conflict")
	}
	if w.observer().Update(event.UpdateEvent{ObjectOld: obj("29"), ObjectNew: obj("30")}) || w.behind(obj("30")) {
		t.Fatal("the cache showed the patch, and a pass still waited (or the observer queued it)")
	}
	w.wroteOver(key, "40")
	clk.SetTime(clk.Now().Add(statusLagLimit + time.Second))
	if w.behind(obj("39")) {
		t.Fatal("a pass waited past statusLagLimit")
	}
}
