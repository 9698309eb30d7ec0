package demo

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// TestReloginExcused: the re-login binding may be TokenExpired with its expired token until it
// heals, at most HealWithin after the new login, and never once the step has failed.
func TestReloginExcused(t *testing.T) {
	login := time.Now()
	cases := []struct {
		name  string
		times reloginTimes
		at    time.Time
		want  bool
	}{
		{"before the login", reloginTimes{}, login.Add(-time.Minute), true},
		{"just after the login", reloginTimes{loginAt: login}, login.Add(time.Second), true},
		{"at the end of HealWithin", reloginTimes{loginAt: login}, login.Add(HealWithin), true},
		{"past HealWithin without a heal", reloginTimes{loginAt: login}, login.Add(HealWithin + time.Second), false},
		{"a poll that began before the heal", reloginTimes{loginAt: login, healedAt: login.Add(time.Second)}, login.Add(time.Second / 2), true},
		{"after the heal", reloginTimes{loginAt: login, healedAt: login.Add(time.Second)}, login.Add(2 * time.Second), false},
		{"the step failed before the login", reloginTimes{failed: true}, login.Add(-time.Minute), false},
	}
	for _, tc := range cases {
		if got := tc.times.excused(tc.at); got != tc.want {
			t.Errorf("%s: excused = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReloginChecks feeds the watcher the polls of the re-login binding and checks what counts
// as not Ready or expired, and which runs fail.
func TestReloginChecks(t *testing.T) {
	key := types.NamespacedName{Namespace: "idptoken-demo", Name: ReloginBinding}
	expiredPoll := poll{"False", authv1alpha1.ReasonTokenExpired}
	cases := []struct {
		name         string
		polls        []poll
		heldExpired  bool // its Secret held its expired token at the TokenExpired polls
		times        reloginTimes
		failure      string
		wantNotReady int
		wantExpired  int
		wantFail     string // substring of a failure; "" means the check passes
	}{
		{name: "healed", polls: []poll{readyPoll, expiredPoll, expiredPoll, readyPoll}, heldExpired: true,
			times: reloginTimes{loginAt: time.Now(), healedAt: time.Now().Add(time.Hour)}},
		{name: "another reason is not excused", polls: []poll{readyPoll, {"False", authv1alpha1.ReasonRefreshFailed}, readyPoll},
			times: reloginTimes{loginAt: time.Now(), healedAt: time.Now().Add(time.Hour)}, wantNotReady: 1},
		{name: "the step failed", polls: []poll{readyPoll, expiredPoll}, heldExpired: true,
			times: reloginTimes{failed: true}, failure: "binding idptoken-demo/grace-brief was not Ready with the new token",
			wantNotReady: 1, wantExpired: 1, wantFail: "was not Ready with the new token"},
		{name: "the run ended before the heal", polls: []poll{readyPoll, expiredPoll}, heldExpired: true,
			wantExpired: 1, wantFail: "did not heal"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rl := &relogin{key: key, times: tc.times, failure: tc.failure}
			w := &watcher{out: io.Discard, started: time.Now(), relogin: rl}
			tr := &track{sampleBinding: sampleBinding{key: key, relogin: true}, expired: map[string]bool{}}
			for _, p := range tc.polls {
				tr.ready, tr.reason = p.status, p.reason
				now := time.Now()
				w.followReady(now, true, tr)
				if tc.heldExpired && p == expiredPoll && !w.excuseExpired(tr, now, "0badf00d") {
					tr.expired["0badf00d"] = true
				}
			}
			if !tc.times.healedAt.IsZero() {
				// The heal is seen by the step after the polls above.
				rl.times.healedAt = time.Now()
			}
			w.checkRelogin(tr)
			if tr.notReadyPolls != tc.wantNotReady || len(tr.expired) != tc.wantExpired {
				t.Errorf("not-ready polls %d, expired %d; want %d, %d", tr.notReadyPolls, len(tr.expired), tc.wantNotReady, tc.wantExpired)
			}
			switch {
			case tc.wantFail == "" && len(w.failures) > 0:
				t.Errorf("the check failed: %v", w.failures)
			case tc.wantFail != "" && !slices.ContainsFunc(w.failures, func(f string) bool { return strings.Contains(f, tc.wantFail) }):
				t.Errorf("failures = %q, want one containing %q", w.failures, tc.wantFail)
			}
		})
	}
}
