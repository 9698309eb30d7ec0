package controller

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites remembers the resourceVersion each of the operator's Secret writes produced, so
// that the watch event echoing a write does not queue its binding again. Without this, every
// renewal queued two needless passes ahead of other bindings' due renewals.
type ownWrites struct {
	mu    sync.Mutex
	clock clock.PassiveClock
	rv    map[types.NamespacedName]ownWrite
}

type ownWrite struct {
	rv string
	at time.Time // when; forgotten by sweep after ownWriteTTL, if its echo never came
}

// ownWriteTTL bounds how long a write waits for its echo: far longer than the watch takes.
const ownWriteTTL = 30 * time.Second

func newOwnWrites(c clock.PassiveClock) *ownWrites {
	return &ownWrites{clock: c, rv: map[types.NamespacedName]ownWrite{}}
}

// wrote records the resourceVersion returned by a write.
func (w *ownWrites) wrote(key types.NamespacedName, rv *string) {
	if rv == nil || *rv == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rv[key] = ownWrite{rv: *rv, at: w.clock.Now()}
}

// sweep forgets the writes whose echo came before they were recorded (or never came).
func (w *ownWrites) sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rv = keptOnly(w.rv, func(o ownWrite) bool { return now.Sub(o.at) < ownWriteTTL })
}

// isEcho tells whether o is exactly the object the operator's last write of it produced. An
// echo is seen once: the write is forgotten then, so that only writes in flight are kept.
func (w *ownWrites) isEcho(o client.Object) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := client.ObjectKeyFromObject(o)
	if last, ok := w.rv[key]; ok && last.rv == o.GetResourceVersion() {
		delete(w.rv, key)
		return true
	}
	return false
}

func (w *ownWrites) forget(o client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.rv, client.ObjectKeyFromObject(o))
}

// predicate lets through every Secret event but the echoes of the operator's own writes.
func (w *ownWrites) predicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.isEcho(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.isEcho(e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool {
			w.forget(e.Object)
			return true
		},
	}
}

// statusWrites remembers, per binding, the resourceVersion its last status write started from
// until the cache has seen that write. A pass that would start from the older object (a watch
// event or a scheduled renewal arriving just after the write) waits for the cache instead of
// acting on an old status and failing its own status write with a conflict.
type statusWrites struct {
	mu    sync.Mutex
	clock clock.PassiveClock
	last  map[types.NamespacedName]statusWrite
}

type statusWrite struct {
	// from is the resourceVersion the write replaced; "" for a write made without one (the
	// Restarter's patch of status.lastRolloutRestart), which knows only to.
	from, to string
	at       time.Time // when; a cache still behind after statusLagLimit is not waited for
}

// statusLagLimit bounds the wait for the cache: past it, a pass goes ahead (and a conflict on
// its status write is retried as before).
const statusLagLimit = 5 * time.Second

func newStatusWrites(c clock.PassiveClock) *statusWrites {
	return &statusWrites{clock: c, last: map[types.NamespacedName]statusWrite{}}
}

// wrote records that a status write replaced the object at resourceVersion from with to. A
// write that changed nothing (to == from) leaves nothing to wait for.
func (w *statusWrites) wrote(key types.NamespacedName, from, to string) {
	if from == "" || to == "" || from == to {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[key] = statusWrite{from: from, to: to, at: w.clock.Now()}
}

// sweep forgets the writes older than statusLagLimit: one whose watch event came before it was
// recorded is otherwise kept until the binding's next pass.
func (w *statusWrites) sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last = keptOnly(w.last, func(s statusWrite) bool { return now.Sub(s.at) <= statusLagLimit })
}

// wroteOver records a status write made without a resourceVersion precondition, which produced
// resourceVersion to: a pass waits until the cache shows to (the watch delivers it before any
// later version), or statusLagLimit. Without it, a pass starting from the object just before
// such a write fails its own optimistic status write with a conflict.
func (w *statusWrites) wroteOver(key types.NamespacedName, to string) {
	if to == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.last[key] = statusWrite{to: to, at: w.clock.Now()}
}

// behind tells whether o is the object a recent status write replaced: the cache has not seen
// the write yet.
func (w *statusWrites) behind(o client.Object) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	key := client.ObjectKeyFromObject(o)
	last, ok := w.last[key]
	if !ok {
		return false
	}
	rv := o.GetResourceVersion()
	seen := rv == last.to || (last.from != "" && rv != last.from)
	if seen || w.clock.Since(last.at) > statusLagLimit {
		delete(w.last, key)
		return false
	}
	return true
}

// observer forgets a write once the cache has seen a newer object, or the binding is gone.
// It never queues anything: status writes are the operator's own.
func (w *statusWrites) observer() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(e event.UpdateEvent) bool { w.behind(e.ObjectNew); return false },
		DeleteFunc:  func(e event.DeleteEvent) bool { w.forget(e.Object); return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func (w *statusWrites) forget(o client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.last, client.ObjectKeyFromObject(o))
}

// ownStates keeps each refresh-state Secret as this manager last wrote it, until the cache holds
// that write. A binding that needs the identity's token just after another binding of the
// identity wrote it (bindings of one user created together) takes it from here instead of
// re-reading the API server: while the cache still shows what the write replaced, or nothing
// for a Secret the write created, the write is the newest state there is (one manager writes
// lineages: leader election). Anything else the cache shows is re-read as before.
//
// A write is forgotten when the cache shows it (seen), or ownStateTTL after it: the watch event
// of a write can arrive before the write is recorded, and nothing would forget it then.
type ownStates struct {
	mu    sync.Mutex
	clock clock.PassiveClock
	last  map[types.NamespacedName]ownState
}

type ownState struct {
	from    string // the resourceVersion the write replaced; "" for a create
	written *corev1.Secret
	at      time.Time
}

// ownStateTTL bounds how long a write is kept: far longer than the cache takes to see it.
const ownStateTTL = 30 * time.Second

func newOwnStates(c clock.PassiveClock) *ownStates {
	return &ownStates{clock: c, last: map[types.NamespacedName]ownState{}}
}

// wrote records a state write that replaced resourceVersion from ("" for a create).
func (o *ownStates) wrote(from string, s *corev1.Secret) {
	if s.ResourceVersion == "" {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last[client.ObjectKeyFromObject(s)] = ownState{from: from, written: s.DeepCopy(), at: o.clock.Now()}
}

// sweep forgets the writes older than ownStateTTL.
func (o *ownStates) sweep(now time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.last = keptOnly(o.last, func(w ownState) bool { return now.Sub(w.at) < ownStateTTL })
}

// ahead returns this manager's last write of the Secret key when the cache, which shows cached
// (nil: nothing), has not caught up with it; nil otherwise.
func (o *ownStates) ahead(key types.NamespacedName, cached *corev1.Secret) *corev1.Secret {
	if o == nil {
		return nil
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	w, ok := o.last[key]
	if !ok {
		return nil
	}
	cachedRV := ""
	if cached != nil {
		cachedRV = cached.ResourceVersion
	}
	if cachedRV != w.from || o.clock.Since(w.at) >= ownStateTTL {
		return nil
	}
	return w.written.DeepCopy()
}

// seen forgets a write once the cache shows anything but what it replaced: the write itself,
// or a later change.
func (o *ownStates) seen(s client.Object) {
	if o == nil {
		return
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	key := client.ObjectKeyFromObject(s)
	if w, ok := o.last[key]; ok && w.from != s.GetResourceVersion() {
		delete(o.last, key)
	}
}

// sweepRecordsEvery spaces the sweeps of the records above.
const sweepRecordsEvery = 30 * time.Second

// recordSweeper sweeps the records of the manager's own writes every sweepRecordsEvery. A write
// whose watch event came before it was recorded is never seen by its record again: without a
// sweep it would stay until its binding's next write. Each sweep also gives back the memory a
// burst grew a record to, since a Go map never shrinks: after a sync of 10,000 bindings the
// three records held about 1.2 MB (entries kept past their time and the buckets of a map sized
// for 10,000 writes in flight), and hold about nothing a sweep later.
type recordSweeper struct {
	clock  clock.Clock
	every  time.Duration
	sweeps []func(now time.Time)
}

// Start sweeps until ctx is done.
func (s *recordSweeper) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.clock.After(s.every):
			now := s.clock.Now()
			for _, sweep := range s.sweeps {
				sweep(now)
			}
		}
	}
}

// NeedLeaderElection is false: every replica keeps its records, and a sweep writes nothing.
func (s *recordSweeper) NeedLeaderElection() bool { return false }

// keptOnly returns a map of m's entries that keep: a new map of their size, so that the memory
// of entries forgotten since the last sweep is given back.
func keptOnly[V any](m map[types.NamespacedName]V, keep func(V) bool) map[types.NamespacedName]V {
	n := 0
	for _, v := range m {
		if keep(v) {
			n++
		}
	}
	out := make(map[types.NamespacedName]V, n)
	for k, v := range m {
		if keep(v) {
			out[k] = v
		}
	}
	return out
}
