package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

// workloadRestart is one workload and every binding that asks for its restart in this round.
type workloadRestart struct {
	key         restartKey // by name
	object      client.Object
	restartedAt time.Time
	requests    map[types.NamespacedName]restartRequest
	attempts    int
}

// restartVerdict is what decideRestart says to do with one workload.
type restartVerdict int

const (
	// restartNothing: every request predates the workload's last restart, which served it.
	restartNothing restartVerdict = iota
	restartNow
	// restartLater: the last restart is within the least rolloutRestartMinInterval.
	restartLater
)

// decideRestart decides for a workload last restarted at restartedAt (zero: never). A request
// is served by any restart after it, ours or someone else's; the others are owed a restart, at
// once or when the least interval among them ends.
func decideRestart(restartedAt time.Time, requests []restartRequest, now time.Time) (restartVerdict, time.Time, []restartRequest) {
	var owed []restartRequest
	interval := time.Duration(0)
	for _, q := range requests {
		if restartedAt.IsZero() || q.At.After(restartedAt) {
			owed = append(owed, q)
			if interval == 0 || q.MinInterval < interval {
				interval = q.MinInterval
			}
		}
	}
	switch {
	case len(owed) == 0:
		return restartNothing, time.Time{}, nil
	case !restartedAt.IsZero() && now.Before(restartedAt.Add(interval)):
		return restartLater, restartedAt.Add(interval), owed
	default:
		return restartNow, time.Time{}, owed
	}
}

// fireDue restarts the workloads of the targets due now. Targets that resolve to one workload
// share its restart.
func (r *Restarter) fireDue(ctx context.Context) {
	now := r.Clock.Now()
	due := r.takeDue(now)
	if len(due) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, restartFireTimeout)
	defer cancel()
	bindings := map[types.NamespacedName]*authv1alpha1.IdPTokenBinding{}
	work := map[restartKey]*workloadRestart{}
	for key, p := range due {
		reqs := r.liveRequests(ctx, p.requests, bindings)
		if len(reqs) == 0 {
			continue
		}
		objs, err := r.resolve(ctx, key, p.selector)
		if err != nil {
			if !p.deferred || !apierrors.IsNotFound(err) {
				r.failed(key, p, reqs, bindings, err, now)
			}
			continue
		}
		for _, o := range objs {
			wk := restartKey{Namespace: key.Namespace, Kind: key.Kind, Name: o.GetName()}
			w := work[wk]
			if w == nil {
				w = &workloadRestart{key: wk, object: o, restartedAt: lastRestart(o), requests: map[types.NamespacedName]restartRequest{}}
				work[wk] = w
			}
			w.attempts = max(w.attempts, p.attempts)
			for _, q := range reqs {
				if old, ok := w.requests[q.Binding]; !ok || q.At.After(old.At) {
					w.requests[q.Binding] = q
				}
			}
		}
	}
	restarted := map[types.NamespacedName]bool{}
	for _, wk := range slices.SortedFunc(maps.Keys(work), func(a, b restartKey) int { return strings.Compare(a.String(), b.String()) }) {
		r.restartWorkload(ctx, work[wk], bindings, restarted, now)
	}
	r.reportRestarts(ctx, restarted, now)
}

// liveRequests drops the requests of bindings deleted, being deleted or replaced since, and
// keeps the bindings for Events.
func (r *Restarter) liveRequests(ctx context.Context, requests map[types.NamespacedName]restartRequest,
	bindings map[types.NamespacedName]*authv1alpha1.IdPTokenBinding) []restartRequest {
	var live []restartRequest
	for _, q := range requests {
		b, ok := bindings[q.Binding]
		if !ok {
			b = &authv1alpha1.IdPTokenBinding{}
			if err := r.Client.Get(ctx, q.Binding, b); apierrors.IsNotFound(err) {
				b = nil
			} else if err != nil {
				// Not known to be gone: restart, and name it in Events as it was.
				b = &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{Namespace: q.Binding.Namespace, Name: q.Binding.Name, UID: q.UID}}
			}
			bindings[q.Binding] = b
		}
		if b != nil && b.DeletionTimestamp.IsZero() && b.UID == q.UID {
			live = append(live, q)
		}
	}
	return live
}

// restartWorkload restarts one workload, defers its restart, or finds it served already.
func (r *Restarter) restartWorkload(ctx context.Context, w *workloadRestart,
	bindings map[types.NamespacedName]*authv1alpha1.IdPTokenBinding, restarted map[types.NamespacedName]bool, now time.Time) {
	verdict, until, owed := decideRestart(w.restartedAt, slices.Collect(maps.Values(w.requests)), now)
	switch verdict {
	case restartNothing:
		return
	case restartLater:
		for i, q := range owed {
			if !q.Told {
				r.Recorder.Eventf(bindings[q.Binding], w.object, corev1.EventTypeNormal, ReasonRolloutRestartDeferred, actionRolloutRestart,
					"%s was restarted at %s; it is restarted again at %s (rolloutRestartMinInterval)",
					w.key, w.restartedAt.UTC().Format(time.RFC3339), until.UTC().Format(time.RFC3339))
				owed[i].Told = true
			}
		}
		r.requeue(w.key, &pendingRestart{attempts: w.attempts, deferred: true}, owed, until)
		return
	}
	if err := r.patchRestart(ctx, w.object, w.key.Kind, now); err != nil {
		r.failed(w.key, &pendingRestart{attempts: w.attempts, deferred: true}, owed, bindings, err, now)
		return
	}
	metrics.ObserveRolloutRestart(w.key.Namespace, string(w.key.Kind))
	names := make([]string, 0, len(owed))
	for _, q := range owed {
		restarted[q.Binding] = true
		names = append(names, q.Binding.Name)
		r.Recorder.Eventf(bindings[q.Binding], w.object, corev1.EventTypeNormal, ReasonRolloutRestarted, actionRolloutRestart,
			"Restarted %s: the Secret changed", w.key)
	}
	slices.Sort(names)
	what := "the Secret of IdPTokenBinding"
	if len(names) > 1 {
		what = "the Secrets of IdPTokenBindings"
	}
	r.Recorder.Eventf(w.object, bindings[owed[0].Binding], corev1.EventTypeNormal, ReasonRolloutRestarted, actionRolloutRestart,
		"Restarted by %s: %s %s changed", EventSource, what, namesText(names))
	logf.FromContext(ctx).Info("Restarted a workload", "kind", w.key.Kind, "namespace", w.key.Namespace, "name", w.key.Name, "bindings", names)
}

// maxEventNames bounds the binding names an Event on a workload lists: an Event's note is at most
// 1 KiB, and one Deployment may serve hundreds of bindings.
const maxEventNames = 10

// namesText lists names, the first maxEventNames of them and how many more.
func namesText(names []string) string {
	if len(names) <= maxEventNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxEventNames], ", "), len(names)-maxEventNames)
}

// requeue puts requests back for key, due at due, with p's selector, attempts and deferred flag.
func (r *Restarter) requeue(key restartKey, p *pendingRestart, reqs []restartRequest, due time.Time) {
	r.mu.Lock()
	for _, q := range reqs {
		r.addLocked(key, p.selector, q, due, p.deferred, p.attempts)
	}
	r.mu.Unlock()
}

// failed reports a target that could not be read or restarted; a transient error is retried.
func (r *Restarter) failed(key restartKey, p *pendingRestart, reqs []restartRequest,
	bindings map[types.NamespacedName]*authv1alpha1.IdPTokenBinding, err error, now time.Time) {
	msg := fmt.Sprintf("Could not restart %s: %v", key, err)
	switch {
	case apierrors.IsForbidden(err):
		msg += ". The operator restarts workloads only when allowed to: set the Helm chart's rolloutRestart.enabled=true (kustomize: the config/rollout-restart component)"
	case errors.Is(err, errRolloutsNotServed) || permanentRestartError(err):
	case p.attempts+1 < restartMaxAttempts:
		r.requeue(key, &pendingRestart{selector: p.selector, attempts: p.attempts + 1, deferred: p.deferred}, reqs, now.Add(restartRetryDelay))
		msg += fmt.Sprintf("; retrying in %s", restartRetryDelay)
	}
	for _, q := range reqs {
		r.Recorder.Eventf(bindings[q.Binding], nil, corev1.EventTypeWarning, ReasonRolloutRestartFailed, actionRolloutRestart, "%s", msg)
	}
}

// permanentRestartError: retrying would fail the same way until someone changes something.
func permanentRestartError(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsMethodNotSupported(err)
}

// reportRestarts sets status.lastRolloutRestart of the bindings whose workloads were restarted,
// with a merge patch without resourceVersion: it never conflicts with the reconciler's writes,
// and the reconciler is told of it (statusWrites.wroteOver) so that its next write does not
// conflict with it either.
func (r *Restarter) reportRestarts(ctx context.Context, restarted map[types.NamespacedName]bool, now time.Time) {
	at := metav1.NewTime(now.Truncate(time.Second))
	raw, err := at.MarshalJSON()
	if err != nil {
		return
	}
	patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"status":{"lastRolloutRestart":%s}}`, raw))
	for nn := range restarted {
		b := &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{Namespace: nn.Namespace, Name: nn.Name}}
		if err := r.Client.Status().Patch(ctx, b, patch, client.FieldOwner(FieldManager)); client.IgnoreNotFound(err) != nil {
			logf.FromContext(ctx).Error(err, "Failed to record the rollout restart in the binding's status", "namespace", nn.Namespace, "name", nn.Name)
		} else if err == nil && r.status != nil {
			r.status.wroteOver(nn, b.ResourceVersion)
		}
	}
}
