package demo

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// TestTemplateKeysProblem: a Replace Secret holds exactly the template's keys; a Merge Secret
// holds them and the default ones. Differences are told by key name.
func TestTemplateKeysProblem(t *testing.T) {
	replace := sampleBinding{templateKeys: []string{".netrc", "authorization"}, mergePolicy: authv1alpha1.MergePolicyReplace}
	merge := sampleBinding{templateKeys: []string{"authorization"}, mergePolicy: authv1alpha1.MergePolicyMerge}
	cases := []struct {
		name string
		b    sampleBinding
		keys []string
		want string
	}{
		{"replace, exactly the template's keys", replace, []string{".netrc", "authorization"}, ""},
		{"replace, an access_token too", replace, []string{".netrc", "access_token", "authorization"}, "not in the template access_token"},
		{"replace, the default keys", replace, []string{"access_token", "expires_at"},
			"missing .netrc, authorization; not in the template access_token, expires_at"},
		{"replace, a key missing", replace, []string{"authorization"}, "missing .netrc"},
		{"merge, the template's and the default keys", merge, []string{"access_token", "authorization", "expires_at"}, ""},
		{"merge, no access_token", merge, []string{"authorization"}, "missing access_token"},
		{"merge, the template's key missing", merge, []string{"access_token", "expires_at"}, "missing authorization"},
	}
	for _, tc := range cases {
		if got := templateKeysProblem(tc.b, tc.keys); got != tc.want {
			t.Errorf("%s: templateKeysProblem = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestSecretToken finds the token of a default Secret under access_token, and that of a
// templated Secret inside its values.
func TestSecretToken(t *testing.T) {
	const tok = "sim_at_0123456789abcdefABCDEF"
	cases := []struct {
		name string
		data map[string]string
		want string
	}{
		{"default keys", map[string]string{"access_token": tok, "expires_at": "2030-01-02T03:04:05Z"}, tok},
		{"templated", map[string]string{".netrc": "machine api.github.com login x-access-token password " + tok + "\n",
			"authorization": "Bearer " + tok}, tok},
		{"templated, no token", map[string]string{"config": "{}"}, ""},
	}
	for _, tc := range cases {
		s := &corev1.Secret{Data: map[string][]byte{}}
		for k, v := range tc.data {
			s.Data[k] = []byte(v)
		}
		if got := secretToken(s); got != tc.want {
			t.Errorf("%s: secretToken = %q, want %q", tc.name, Fingerprint(got), Fingerprint(tc.want))
		}
	}
}

// TestRestartChecks feeds the watcher the restarts of a Deployment and the first change of the
// Secret of the binding naming it, and checks which runs fail and why.
func TestRestartChecks(t *testing.T) {
	bk := types.NamespacedName{Namespace: "idptoken-demo", Name: "carol-github-netrc"}
	b := sampleBinding{key: bk, templateKeys: []string{"authorization"}, restartTargets: []string{"git-mirror"}, minInterval: time.Minute}
	smp := samples{bindings: []sampleBinding{b}, deployments: []types.NamespacedName{{Namespace: "idptoken-demo", Name: "git-mirror"}}}
	never := -1
	cases := []struct {
		name     string
		change   int   // s after the start when the Secret first changed; never: not at all
		restarts []int // s after the start of each restart
		end      int
		notFound bool
		wantFail string // substring of a failure; "" means the checks pass
	}{
		{name: "restarted 5 s after the change", change: 30, restarts: []int{35}, end: 65},
		{name: "restarted on the same second as the change", change: 30, restarts: []int{30}, end: 65},
		{name: "no change, no restart", change: never, end: 65},
		{name: "change too late to check", change: 55, end: 65},
		{name: "not restarted", change: 30, end: 65, wantFail: "was not restarted within 15s after the Secret of carol-github-netrc changed at t+30s"},
		{name: "restarted at the first write", change: 30, restarts: []int{5, 35}, end: 65, wantFail: "the first write of a Secret restarts nothing"},
		{name: "restarted without any change", change: never, restarts: []int{20}, end: 65, wantFail: "the first write of a Secret restarts nothing"},
		{name: "restarted twice within the interval", change: 30, restarts: []int{35, 65}, end: 100, wantFail: "within its rolloutRestartMinInterval 1m0s"},
		{name: "restarted again after the interval", change: 30, restarts: []int{35, 95}, end: 100},
		{name: "Deployment never found", change: never, end: 65, notFound: true, wantFail: "was never found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now().Truncate(time.Second)
			w := &watcher{out: io.Discard, started: start, samples: smp,
				tracks: map[types.NamespacedName]*track{bk: {sampleBinding: b}}, restarts: restartTracks(smp)}
			if tc.change != never {
				w.tracks[bk].firstRefresh = start.Add(time.Duration(tc.change) * time.Second)
			}
			r := w.restarts[0]
			r.seen = !tc.notFound
			for _, s := range tc.restarts {
				at := start.Add(time.Duration(s) * time.Second)
				w.noteRestart(r, at.UTC().Format(time.RFC3339), at, true)
			}
			w.checkRestarts(start.Add(time.Duration(tc.end) * time.Second))
			switch {
			case tc.wantFail == "" && len(w.failures) > 0:
				t.Errorf("the checks failed: %v", w.failures)
			case tc.wantFail != "" && !slices.ContainsFunc(w.failures, func(f string) bool { return strings.Contains(f, tc.wantFail) }):
				t.Errorf("failures = %q, want one containing %q", w.failures, tc.wantFail)
			}
			if len(r.restarts) != len(tc.restarts) {
				t.Errorf("%d restarts counted, want %d", len(r.restarts), len(tc.restarts))
			}
		})
	}
}

// TestRestartTracksInterval: a target's interval is the least of the bindings naming it,
// defaulted and floored as the operator does.
func TestRestartTracksInterval(t *testing.T) {
	d := types.NamespacedName{Namespace: "ns", Name: "api"}
	named := func(name string, iv time.Duration) sampleBinding {
		return sampleBinding{key: types.NamespacedName{Namespace: "ns", Name: name}, restartTargets: []string{"api"}, minInterval: iv}
	}
	cases := []struct {
		name     string
		bindings []sampleBinding
		want     time.Duration
	}{
		{"unset", []sampleBinding{named("a", 0)}, 10 * time.Minute},
		{"below the least", []sampleBinding{named("a", 10*time.Second)}, time.Minute},
		{"the least of two", []sampleBinding{named("a", 5*time.Minute), named("b", 2*time.Minute)}, 2 * time.Minute},
		{"another namespace's binding", []sampleBinding{named("a", 5*time.Minute),
			{key: types.NamespacedName{Namespace: "other", Name: "b"}, restartTargets: []string{"api"}, minInterval: time.Minute}}, 5 * time.Minute},
	}
	for _, tc := range cases {
		rs := restartTracks(samples{bindings: tc.bindings, deployments: []types.NamespacedName{d}})
		if got := rs[0].minInterval; got != tc.want {
			t.Errorf("%s: minInterval = %s, want %s", tc.name, got, tc.want)
		}
	}
}
