package main

// The restart row: the renewal row's workload with every binding's Secret templated and the
// bindings of the namespace sharing one rollout restart target, so that the table shows what a
// renewal costs in API-server writes when it also restarts a workload.

import (
	"cmp"
	"context"
	"crypto/subtle"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

const (
	// restartTargetName is the Deployment the bindings of a restart row name. envtest runs no
	// controller: it never has pods, and its restarts are only the patches that count here.
	restartTargetName = "bench-app"
	// restartMinInterval is the bindings' rolloutRestartMinInterval, its least allowed value.
	restartMinInterval = time.Minute
	// restartRowWindow follows the renewals for about 2.5 intervals: with 45 s tokens renewed
	// every 30 s, the first renewal (about 30 s in) restarts the target 5 s later (the
	// coalescing), then once a minute: three restarts, five renewals per identity.
	restartRowWindow = 155 * time.Second
	// operatorNamespace is a restart row's --cluster-resource-namespace. Without a namespace (no
	// flag, not in a pod) the manager has no key for status.secretMAC, keeps none, and so never
	// asks for a restart: the other rows run that way.
	operatorNamespace = "idptoken-system"
	// bearerKey is the template's key, rendered as "Bearer <access token>" (mergePolicy Merge:
	// access_token and the other default keys stay).
	bearerKey = "authorization"
)

// forRestarts is o for a restart row.
func (o clusterOptions) forRestarts() clusterOptions {
	o.restarts = true
	o.managerArgs = append(slices.Clone(o.managerArgs), "--cluster-resource-namespace="+operatorNamespace)
	return o
}

// templateAndRestart gives a binding's spec the restart row's template and restart target.
func templateAndRestart(spec *authv1alpha1.IdPTokenBindingSpec, target string) {
	spec.Secret.Template = &authv1alpha1.SecretTemplate{
		MergePolicy: authv1alpha1.MergePolicyMerge,
		Data:        map[string]authv1alpha1.TemplateText{bearerKey: "Bearer {{ .AccessToken }}"},
	}
	spec.RolloutRestartTargets = []authv1alpha1.RolloutRestartTarget{{Kind: authv1alpha1.RolloutRestartDeployment, Name: target}}
	spec.RolloutRestartMinInterval = &metav1.Duration{Duration: restartMinInterval}
}

// bearerRendered reports whether s holds the template's key for token (compared in constant
// time; neither is ever printed).
func bearerRendered(s *corev1.Secret, token string) bool {
	return token != "" && subtle.ConstantTimeCompare(s.Data[bearerKey], []byte("Bearer "+token)) == 1
}

// createRestartTarget creates the Deployment that the namespace's bindings restart.
func (c *cluster) createRestartTarget(ctx context.Context) error {
	labels := map[string]string{"app": restartTargetName}
	return c.k8s.Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: restartTargetName, Namespace: c.ns},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "registry.invalid/bench-app:1",
					VolumeMounts: []corev1.VolumeMount{{Name: "token", MountPath: "/var/run/token", ReadOnly: true}},
				}}, Volumes: []corev1.Volume{{Name: "token", VolumeSource: corev1.VolumeSource{
					Secret: &corev1.SecretVolumeSource{SecretName: bindingName(0) + "-token"}}}}},
			},
		},
	})
}

// writeBreakdown is the manager's writes sorted by what they did.
type writeBreakdown struct {
	secret      int // target Secrets and identities' state
	status      int // the reconciler's binding status writes
	lastRestart int // the Restarter's status patches of lastRolloutRestart alone
	events      map[string]int
	eventsAll   int
	deployment  int
	other       int
	conflicts   int // 409s among all of them
}

func breakdown(c requestCounts) writeBreakdown {
	b := writeBreakdown{events: map[string]int{}}
	for k, v := range c {
		f := strings.Fields(k)
		if len(f) != 3 || !isWrite(f[0]) {
			continue
		}
		if f[2] == "409" {
			b.conflicts += v
		}
		base := baseResource(f[1])
		switch {
		case base == "secrets":
			b.secret += v
		case base == "idptokenbindings/status" && tagOf(f[1]) == tagLastRestart:
			b.lastRestart += v
		case strings.HasSuffix(base, "/status"):
			b.status += v
		case base == "events":
			b.eventsAll += v
			b.events[cmp.Or(tagOf(f[1]), "untagged")] += v
		case base == "deployments":
			b.deployment += v
		default:
			b.other += v
		}
	}
	return b
}

// restartSpacing is how far apart the patches of one Deployment came; the interval divided by
// their mean spacing is the patches per target per interval.
type restartSpacing struct {
	targets, patches int
	gaps             []time.Duration
}

func spacing(patched map[string][]time.Time) restartSpacing {
	s := restartSpacing{targets: len(patched)}
	for _, name := range slices.Sorted(maps.Keys(patched)) {
		ts := slices.SortedFunc(slices.Values(patched[name]), func(a, b time.Time) int { return a.Compare(b) })
		s.patches += len(ts)
		for i := 1; i < len(ts); i++ {
			s.gaps = append(s.gaps, ts[i].Sub(ts[i-1]))
		}
	}
	return s
}

// perInterval is the patches per target per restartMinInterval: the interval ÷ the mean gap.
func (s restartSpacing) perInterval() (float64, bool) {
	if len(s.gaps) == 0 {
		return 0, false
	}
	var sum time.Duration
	for _, g := range s.gaps {
		sum += g
	}
	return float64(restartMinInterval) / (float64(sum) / float64(len(s.gaps))), true
}

func (s restartSpacing) String() string {
	gaps := make([]string, 0, len(s.gaps))
	for _, g := range s.gaps {
		gaps = append(gaps, fmt.Sprintf("%.1f", g.Seconds()))
	}
	out := fmt.Sprintf("%d Deployment patches of %d target", s.patches, s.targets)
	if len(gaps) > 0 {
		out += fmt.Sprintf(", %s s apart", strings.Join(gaps, " and "))
	}
	if per, ok := s.perInterval(); ok {
		out += fmt.Sprintf(": %.2f per target per %s", per, shortDuration(restartMinInterval))
	}
	return out
}

func shortDuration(d time.Duration) string {
	return strings.TrimSuffix(strings.TrimSuffix(d.String(), "0s"), "0m")
}

// restartRenewalRow is a restart row's renewal line of the table.
func restartRenewalRow(r *result, rr *renewalResult) string {
	renewed := float64(rr.refreshes) * float64(r.w.bindings) / float64(r.w.users)
	b := breakdown(rr.reqs)
	per := func(n int) float64 { return float64(n) / renewed }
	all := b.secret + b.status + b.lastRestart + b.eventsAll + b.deployment + b.other
	return fmt.Sprintf("| renewals after %s, %s tokens, %s window, rolloutRestartMinInterval %s | %d not Ready, %d Secrets ever invalid | %d IdP refreshes (%.2f per identity per 30 s) | %d Auth0 requests | | %.2f per binding renewal (Secret %.2f, status %.2f, lastRolloutRestart status patch %.2f, Event %.2f, Deployment patch %.3f, other %.2f); %s | | | | %.2f ms per binding renewal | |\n",
		r.w, renewalLifetime, rr.window, shortDuration(restartMinInterval), rr.notReady, rr.badAll, rr.refreshes,
		float64(rr.refreshes)/float64(r.w.users)/(rr.window.Seconds()/30), rr.auth0Reqs,
		per(all), per(b.secret), per(b.status), per(b.lastRestart), per(b.eventsAll), per(b.deployment), per(b.other),
		spacing(rr.patched), 1000*rr.mgrCPU/renewed)
}

// restartDetails is a restart row's lines below the table: its Events by reason, its conflicts.
func restartDetails(r *result, rr *renewalResult) string {
	renewed := float64(rr.refreshes) * float64(r.w.bindings) / float64(r.w.users)
	b := breakdown(rr.reqs)
	parts := make([]string, 0, len(b.events))
	for _, tag := range slices.Sorted(maps.Keys(b.events)) {
		parts = append(parts, fmt.Sprintf("%s %.3f", tag, float64(b.events[tag])/renewed))
	}
	return fmt.Sprintf("  … restart row: %.0f binding renewals; Event writes (creates and series patches) per binding renewal, by the kind of object and reason: %s; %d write conflicts (409)\n",
		renewed, strings.Join(parts, ", "), b.conflicts)
}
