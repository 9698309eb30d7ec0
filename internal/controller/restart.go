package controller

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// Event reasons of rollout restarts, on the binding and (RolloutRestarted) on the workload.
const (
	// ReasonRolloutRestarted: the workload was restarted because the binding's Secret changed.
	ReasonRolloutRestarted = "RolloutRestarted"
	// ReasonRolloutRestartDeferred: the workload was restarted less than rolloutRestartMinInterval
	// ago; it is restarted again when the interval ends.
	ReasonRolloutRestartDeferred = "RolloutRestartDeferred"
	// ReasonRolloutRestartFailed: a target could not be read or restarted (not found, not
	// permitted, Argo Rollouts not installed, an invalid selector).
	ReasonRolloutRestartFailed = "RolloutRestartFailed"
)

const (
	// DefaultRestartCoalesce is how long a restart waits for the other bindings that name the
	// same workload: the bindings of one identity are renewed within a few seconds of each other.
	DefaultRestartCoalesce = 5 * time.Second
	// DefaultRestartMinInterval is rolloutRestartMinInterval's default, MinRestartMinInterval its
	// least value.
	DefaultRestartMinInterval = 10 * time.Minute
	MinRestartMinInterval     = time.Minute

	actionRolloutRestart = "RolloutRestart"
	restartRetryDelay    = 30 * time.Second
	restartMaxAttempts   = 3
	restartFireTimeout   = 2 * time.Minute
)

// Restarter restarts the workloads that bindings name in spec.rolloutRestartTargets, as
// `kubectl rollout restart` does, when their Secret changed: each workload at most once per
// rolloutRestartMinInterval, once for all the bindings that ask within Coalesce. A restart asked
// for within the interval is deferred to its end, not dropped. Selectors are resolved when the
// restart fires. It runs on the leader only (a manager.Runnable).
//
// The permissions on workloads are opt-in (the chart's rolloutRestart.enabled), so they have no
// +kubebuilder:rbac marker here: without them, a restart fails with a RolloutRestartFailed Event.
type Restarter struct {
	// Client patches workloads and bindings' status, and reads bindings (cached); its RESTMapper
	// tells whether Argo Rollouts are served.
	Client client.Client
	// APIReader reads workloads uncached, so that no informer holds every Deployment of the cluster.
	APIReader client.Reader
	Recorder  events.EventRecorder
	Clock     clock.Clock
	// Coalesce is how long a restart waits after its first request; 0 means DefaultRestartCoalesce.
	Coalesce time.Duration

	once    sync.Once
	mu      sync.Mutex
	pending map[restartKey]*pendingRestart
	// window: namespace → when its open batch fires. Every target of a namespace requested
	// within one window fires together, so that a workload named by several targets (a name
	// and a selector) is restarted once.
	window map[string]time.Time
	wake   chan struct{}
	// status: the binding reconciler's record of status writes, told of each restart's patch
	// so that a pass starting just before it waits for the cache instead of conflicting.
	status *statusWrites
}

// restartKey names one target of one namespace: a workload by name, or a label selector.
type restartKey struct {
	Namespace string
	Kind      authv1alpha1.RolloutRestartKind
	Name      string
	Selector  string // canonical form, when there is no Name
}

func (k restartKey) String() string {
	if k.Name != "" {
		return fmt.Sprintf("%s %s", k.Kind, k.Name)
	}
	return fmt.Sprintf("%s with labels %s", k.Kind, k.Selector)
}

// restartRequest is one binding's request: its newest Secret change and its least interval.
type restartRequest struct {
	Binding     types.NamespacedName
	UID         types.UID
	At          time.Time
	MinInterval time.Duration
	// Told: the binding was told (RolloutRestartDeferred) that this restart waits; it is not
	// told again for each later change that joins the same deferred restart.
	Told bool
}

type pendingRestart struct {
	selector labels.Selector // nil for a target by name
	due      time.Time
	requests map[types.NamespacedName]restartRequest
	attempts int
	// deferred: a workload found earlier (maybe by a selector) whose restart waits; if it is
	// gone by then, nothing is reported.
	deferred bool
}

func (r *Restarter) init() {
	r.once.Do(func() {
		r.pending = map[restartKey]*pendingRestart{}
		r.window = map[string]time.Time{}
		r.wake = make(chan struct{}, 1)
	})
}

// Request asks for the restart of b's rolloutRestartTargets because b's Secret changed. It
// never blocks; the restart fires Coalesce later. A binding being deleted restarts nothing.
func (r *Restarter) Request(b *authv1alpha1.IdPTokenBinding) {
	if b == nil || !b.DeletionTimestamp.IsZero() || len(b.Spec.RolloutRestartTargets) == 0 {
		return
	}
	r.init()
	now := r.Clock.Now()
	req := restartRequest{Binding: client.ObjectKeyFromObject(b), UID: b.UID, At: now, MinInterval: restartMinInterval(b)}
	var invalid []string
	r.mu.Lock()
	due := r.window[b.Namespace]
	if !due.After(now) {
		due = now.Add(r.coalesce())
		r.window[b.Namespace] = due
	}
	for _, t := range b.Spec.RolloutRestartTargets {
		key, sel, err := restartKeyOf(b.Namespace, t)
		if err != nil {
			invalid = append(invalid, err.Error())
			continue
		}
		r.addLocked(key, sel, req, due, false, 0)
	}
	r.mu.Unlock()
	for _, msg := range invalid {
		r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, ReasonRolloutRestartFailed, actionRolloutRestart, "%s", msg)
	}
	r.poke()
}

// addLocked merges a request into the key's pending restart; the earliest due time wins.
func (r *Restarter) addLocked(key restartKey, sel labels.Selector, req restartRequest, due time.Time, deferred bool, attempts int) {
	p := r.pending[key]
	if p == nil {
		p = &pendingRestart{selector: sel, due: due, requests: map[types.NamespacedName]restartRequest{}, deferred: deferred}
		r.pending[key] = p
	} else {
		p.due = minTime(p.due, due)
		p.deferred = p.deferred && deferred
	}
	p.attempts = max(p.attempts, attempts)
	if old, ok := p.requests[req.Binding]; ok && old.UID == req.UID {
		if old.At.After(req.At) {
			req.At = old.At
		}
		req.Told = req.Told || old.Told
	}
	p.requests[req.Binding] = req
}

func (r *Restarter) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *Restarter) coalesce() time.Duration {
	if r.Coalesce > 0 {
		return r.Coalesce
	}
	return DefaultRestartCoalesce
}

// NeedLeaderElection makes the Restarter run on the leader only.
func (r *Restarter) NeedLeaderElection() bool { return true }

// Start fires the pending restarts as they fall due, until ctx ends.
func (r *Restarter) Start(ctx context.Context) error {
	if r.Client == nil || r.APIReader == nil || r.Recorder == nil || r.Clock == nil {
		return fmt.Errorf("rollout restarter: a dependency is nil")
	}
	r.init()
	for {
		r.fireDue(ctx)
		var timer clock.Timer
		var fire <-chan time.Time
		if next, ok := r.nextDue(); ok {
			wait := next.Sub(r.Clock.Now())
			if wait <= 0 {
				continue
			}
			timer = r.Clock.NewTimer(wait)
			fire = timer.C()
		}
		select {
		case <-ctx.Done():
		case <-r.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

func (r *Restarter) nextDue() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var next time.Time
	for _, p := range r.pending {
		if next.IsZero() || p.due.Before(next) {
			next = p.due
		}
	}
	return next, !next.IsZero()
}

// takeDue removes and returns the pending restarts due at now.
func (r *Restarter) takeDue(now time.Time) map[restartKey]*pendingRestart {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ns, w := range r.window {
		if !w.After(now) {
			delete(r.window, ns)
		}
	}
	due := map[restartKey]*pendingRestart{}
	for k, p := range r.pending {
		if !p.due.After(now) {
			due[k] = p
			delete(r.pending, k)
		}
	}
	return due
}

// restartKeyOf names a target of a binding in namespace; a selector is kept in canonical form.
func restartKeyOf(namespace string, t authv1alpha1.RolloutRestartTarget) (restartKey, labels.Selector, error) {
	key := restartKey{Namespace: namespace, Kind: t.Kind, Name: t.Name}
	switch {
	case t.Name != "":
		return key, nil, nil
	case t.Selector == nil:
		return key, nil, fmt.Errorf("a rollout restart target %s names neither a name nor a selector", t.Kind)
	}
	sel, err := metav1.LabelSelectorAsSelector(t.Selector)
	if err != nil {
		return key, nil, fmt.Errorf("rollout restart target %s has an invalid selector: %v", t.Kind, err)
	}
	key.Selector = sel.String()
	return key, sel, nil
}

// restartMinInterval is b's rolloutRestartMinInterval, defaulted and floored.
func restartMinInterval(b *authv1alpha1.IdPTokenBinding) time.Duration {
	if b.Spec.RolloutRestartMinInterval == nil {
		return DefaultRestartMinInterval
	}
	return max(b.Spec.RolloutRestartMinInterval.Duration, MinRestartMinInterval)
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}
