package demo

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// RestartedAtAnnotation is the pod template annotation a rollout restart sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

const (
	// restartWithin is how soon after a Secret's change the workloads its binding names must
	// have been restarted: the operator coalesces restart requests for 5 s.
	restartWithin = 15 * time.Second
	// restartSlack allows for restartedAt's whole seconds and the 1 s polls.
	restartSlack = 2 * time.Second
	// Of rolloutRestartMinInterval: the default when unset, and the least value.
	defaultMinInterval = 10 * time.Minute
	leastMinInterval   = time.Minute
)

// consumeOf reads what a sample binding says of consuming its token: its Secret's template and
// its rollout restart targets.
func consumeOf(o *unstructured.Unstructured, b *sampleBinding) {
	if data, ok, _ := unstructured.NestedStringMap(o.Object, "spec", "secret", "template", "data"); ok {
		b.templateKeys = slices.Sorted(maps.Keys(data))
		b.mergePolicy = authv1alpha1.MergePolicyReplace
		if p, _, _ := unstructured.NestedString(o.Object, "spec", "secret", "template", "mergePolicy"); p != "" {
			b.mergePolicy = authv1alpha1.MergePolicy(p)
		}
	}
	targets, _, _ := unstructured.NestedSlice(o.Object, "spec", "rolloutRestartTargets")
	for _, t := range targets {
		m, _ := t.(map[string]any)
		if kind, _ := m["kind"].(string); kind == string(authv1alpha1.RolloutRestartDeployment) {
			if name, _ := m["name"].(string); name != "" {
				b.restartTargets = append(b.restartTargets, name)
			}
		}
	}
	if s, ok, _ := unstructured.NestedString(o.Object, "spec", "rolloutRestartMinInterval"); ok {
		b.minInterval, _ = time.ParseDuration(s)
	}
}

// secretToken returns the access token of a target Secret, or "". A templated Secret may have
// no access_token key: its token is then the first simulator token found in its values, in the
// order of their keys.
func secretToken(s *corev1.Secret) string {
	if s == nil {
		return ""
	}
	if tok, ok := s.Data[authv1alpha1.SecretKeyAccessToken]; ok {
		return string(tok)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		if tok := auth0sim.TokenPattern.Find(s.Data[k]); tok != nil {
			return string(tok)
		}
	}
	return ""
}

// templateKeysProblem says how the keys of a templated Secret differ from what its template
// asks for, by key name only; "" when they do not. Replace: exactly the template's keys.
// Merge: the template's keys and the default ones (access_token among them).
func templateKeysProblem(b sampleBinding, keys []string) string {
	var missing, extra []string
	for _, k := range b.templateKeys {
		if !slices.Contains(keys, k) {
			missing = append(missing, k)
		}
	}
	if b.mergePolicy == authv1alpha1.MergePolicyMerge {
		if !slices.Contains(keys, authv1alpha1.SecretKeyAccessToken) {
			missing = append(missing, authv1alpha1.SecretKeyAccessToken)
		}
	} else {
		for _, k := range keys {
			if !slices.Contains(b.templateKeys, k) {
				extra = append(extra, k)
			}
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "missing "+strings.Join(missing, ", "))
	}
	if len(extra) > 0 {
		parts = append(parts, "not in the template "+strings.Join(extra, ", "))
	}
	return strings.Join(parts, "; ")
}

// followTemplate checks the keys of a templated binding's Secret at one poll.
func (w *watcher) followTemplate(t *track, s *corev1.Secret) {
	t.templatePolls++
	problem := templateKeysProblem(t.sampleBinding, slices.Sorted(maps.Keys(s.Data)))
	if problem == "" {
		return
	}
	t.templateBad++
	if problem != t.templateProblem {
		t.templateProblem = problem
		w.say("%-32s Secret %s does not hold the template's keys (mergePolicy %s): %s", t.key, t.secret, t.mergePolicy, problem)
	}
}

// checkTemplate checks, at the end of a run, a templated binding's Secret.
func (w *watcher) checkTemplate(t *track) {
	switch {
	case t.templatePolls == 0:
		w.fail("the templated Secret %s of binding %s was never seen", t.secret, t)
	case t.templateBad > 0:
		w.fail("Secret %s of binding %s did not hold the template's keys at %d of %d polls: %s",
			t.secret, t, t.templateBad, t.templatePolls, t.templateProblem)
	}
}

// restartTrack is what the watcher knows of one Deployment of the samples.
type restartTrack struct {
	key         types.NamespacedName
	bindings    []types.NamespacedName // the sample bindings naming it in rolloutRestartTargets
	minInterval time.Duration          // the least rolloutRestartMinInterval among them
	seen        bool
	value       string      // restartedAt as last seen
	restarts    []time.Time // each new value of restartedAt
}

// restartTracks lists the samples' Deployments and the bindings that name each.
func restartTracks(smp samples) []*restartTrack {
	var out []*restartTrack
	for _, d := range smp.deployments {
		r := &restartTrack{key: d}
		for _, b := range smp.bindings {
			if b.key.Namespace != d.Namespace || !slices.Contains(b.restartTargets, d.Name) {
				continue
			}
			r.bindings = append(r.bindings, b.key)
			iv := b.minInterval
			if iv == 0 {
				iv = defaultMinInterval
			}
			iv = max(iv, leastMinInterval)
			if r.minInterval == 0 || iv < r.minInterval {
				r.minInterval = iv
			}
		}
		out = append(out, r)
	}
	return out
}

// pollRestarts reads the samples' Deployments and notes each new restartedAt.
func (w *watcher) pollRestarts(ctx context.Context, now time.Time, headless bool) {
	for _, r := range w.restarts {
		var d appsv1.Deployment
		if err := w.c.Get(ctx, r.key, &d); apierrors.IsNotFound(err) {
			continue
		} else if err != nil {
			w.pollError(err)
			continue
		}
		r.seen = true
		w.noteRestart(r, d.Spec.Template.Annotations[RestartedAtAnnotation], now, headless)
	}
}

// noteRestart records restartedAt's value v as seen at now.
func (w *watcher) noteRestart(r *restartTrack, v string, now time.Time, headless bool) {
	if v == "" || v == r.value {
		return
	}
	r.value = v
	at, err := time.Parse(time.RFC3339, v)
	if err != nil {
		at = now
	}
	r.restarts = append(r.restarts, at)
	if headless {
		w.say("%-32s Deployment restarted (%s t+%ds), for %s", r.key, RestartedAtAnnotation, w.offset(at), bindingNames(r.bindings))
	}
}

// firstChange is when the watcher first saw the token change in the Secret of a binding that
// names r; zero when none did.
func (w *watcher) firstChange(r *restartTrack) time.Time {
	var first time.Time
	for _, k := range r.bindings {
		if t := w.tracks[k]; t != nil && !t.firstRefresh.IsZero() && (first.IsZero() || t.firstRefresh.Before(first)) {
			first = t.firstRefresh
		}
	}
	return first
}

// checkRestarts checks, at the end of a run, each Deployment of the samples: no restart before
// the Secret of a binding naming it changed (a first write restarts nothing), no two restarts
// within its rolloutRestartMinInterval, and a restart within restartWithin of the first change.
func (w *watcher) checkRestarts(end time.Time) {
	for _, r := range w.restarts {
		if !r.seen {
			w.fail("Deployment %s of the samples was never found", r.key)
			continue
		}
		first := w.firstChange(r)
		for i, at := range r.restarts {
			if first.IsZero() || at.Before(first.Add(-restartSlack)) {
				w.fail("Deployment %s was restarted at t+%ds, before the Secret of %s changed: the first write of a Secret restarts nothing",
					r.key, w.offset(at), bindingNames(r.bindings))
			}
			if i > 0 && at.Sub(r.restarts[i-1]) < r.minInterval-restartSlack {
				w.fail("Deployment %s was restarted at t+%ds and again at t+%ds, within its rolloutRestartMinInterval %s",
					r.key, w.offset(r.restarts[i-1]), w.offset(at), r.minInterval)
			}
		}
		if first.IsZero() || end.Sub(first) < restartWithin {
			continue
		}
		if !slices.ContainsFunc(r.restarts, func(at time.Time) bool { return !at.Before(first.Add(-restartSlack)) }) {
			w.fail("Deployment %s was not restarted within %s after the Secret of %s changed at t+%ds",
				r.key, restartWithin, bindingNames(r.bindings), w.offset(first))
		}
	}
}

// restartLines describe the Deployments of the samples and their restarts, for the summary.
func (w *watcher) restartLines() []string {
	var out []string
	for _, r := range w.restarts {
		var at []string
		for _, t := range r.restarts {
			at = append(at, fmt.Sprintf("t+%ds", w.offset(t)))
		}
		line := fmt.Sprintf("restarts: Deployment %s (a rollout restart target of %s, at most once per %s): %d restart(s)",
			r.key, bindingNames(r.bindings), fmtInterval(r.minInterval), len(r.restarts))
		if len(at) > 0 {
			line += " at " + strings.Join(at, ", ")
		}
		if first := w.firstChange(r); !first.IsZero() {
			line += fmt.Sprintf("; its token first changed at t+%ds", w.offset(first))
		} else {
			line += "; its token never changed"
		}
		out = append(out, line)
	}
	return out
}

// templateLines describe the templated bindings' Secrets, for the summary.
func (w *watcher) templateLines() []string {
	var out []string
	for _, sb := range w.samples.bindings {
		t := w.tracks[sb.key]
		if len(sb.templateKeys) == 0 {
			continue
		}
		want := "exactly the template's keys (" + strings.Join(sb.templateKeys, ", ") + "), no " + authv1alpha1.SecretKeyAccessToken
		if sb.mergePolicy == authv1alpha1.MergePolicyMerge {
			want = "the template's keys (" + strings.Join(sb.templateKeys, ", ") + ") and the default ones"
		}
		held := fmt.Sprintf("held %s, at %d of %d polls", want, t.templatePolls-t.templateBad, t.templatePolls)
		out = append(out, fmt.Sprintf("template: %s: Secret %s (mergePolicy %s) %s", sb.key, sb.secretName, sb.mergePolicy, held))
	}
	return out
}

// consumePassed is what a passed run says of the templated Secrets and the restarts, "" when
// the samples have neither.
func (w *watcher) consumePassed() string {
	var out string
	if len(w.templateLines()) > 0 {
		out += "; templated Secrets held their templates' keys"
	}
	if len(w.restarts) > 0 {
		out += fmt.Sprintf("; Deployments were restarted only after their tokens changed, within %s", restartWithin)
	}
	return out
}

// offset is at in seconds since the watcher started.
func (w *watcher) offset(at time.Time) int {
	return int(at.Sub(w.started).Round(time.Second).Seconds())
}

func bindingNames(keys []types.NamespacedName) string {
	if len(keys) == 0 {
		return "no binding"
	}
	names := make([]string, 0, len(keys))
	for _, k := range keys {
		names = append(names, k.Name)
	}
	return strings.Join(names, ", ")
}

// fmtInterval shows whole minutes as "1m", anything else as fmtDur does.
func fmtInterval(d time.Duration) string {
	if d > 0 && d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmtDur(d)
}
