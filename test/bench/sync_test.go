package bench_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// BenchmarkInitialSync: 1000 bindings over 100 users on a free-tier tenant (2 req/s, enforced
// by the simulator with 429s). DESIGN targets: ≤ 1.05 × U Management API requests, one M2M
// token, no sync failed by a 429, all Ready within U ÷ rate × 1.1 + 2 s (57 s). Tokens live
// 1 h, so nothing is refreshed during the run. Also prints the manager's heap after the sync.
//
// The bindings are created in two orders: interleaved (consecutive bindings name different
// users) and grouped (a user's bindings are consecutive); the target holds for any order.
// Each run stops at a wall-time budget of 120 s and then prints a projection.
func BenchmarkInitialSync(b *testing.B) {
	for _, c := range []struct {
		order   bindingOrder
		workers int
	}{{interleaved, 4}, {grouped, 4}, {grouped, 16}} {
		b.Run(fmt.Sprintf("order=%s/workers=%d", c.order, c.workers), func(b *testing.B) {
			assetsOrSkip(b)
			for range b.N {
				initialSync(b, c.order, c.workers)
			}
		})
	}
}

func initialSync(b *testing.B, order bindingOrder, workers int) {
	const (
		n        = 1000
		users    = 100
		lifetime = time.Hour
		budget   = 120 * time.Second
	)
	b.StopTimer()
	h := newHarness(b, harnessOptions{idps: []idpConn{googleLike}, lifetime: lifetime})
	defer h.close()
	h.addUsers(users)
	errorsBefore := mgrLogs.errorCount()

	memBefore := sampleMem()
	h.startManager(workers)
	h.createTenant()
	st0 := h.sim.Stats()

	b.StartTimer()
	start := time.Now()
	h.createBindings(n, users, order)
	created := time.Since(start)
	elapsed, r := h.waitAllReady(n, budget, start)
	b.StopTimer()

	st1 := h.sim.Stats()
	memAfter := sampleMem()
	reqLog := h.reqs.since(start)
	warnings := h.warningEvents()

	apiReqs := st1.APIRequests - st0.APIRequests
	userReads := sumValues(st1.UserReads) - sumValues(st0.UserReads)
	rate := float64(freeTierRate)
	target := time.Duration(float64(users)/rate*1.1*float64(time.Second)).Round(time.Millisecond) + 2*time.Second
	ratio := float64(apiReqs) / float64(users)
	rateLimited := st1.RateLimited - st0.RateLimited
	projected := elapsed
	if r.ready > 0 && r.ready < n {
		projected = time.Duration(float64(elapsed) * float64(n) / float64(r.ready))
	}

	b.ReportMetric(elapsed.Seconds(), "s-elapsed")
	b.ReportMetric(float64(r.ready), "bindings-ready")
	b.ReportMetric(projected.Seconds(), "s-to-all-ready")
	b.ReportMetric(target.Seconds(), "s-target")
	b.ReportMetric(float64(apiReqs), "mgmt-api-reqs")
	b.ReportMetric(ratio, "reqs/users")
	b.ReportMetric(float64(st1.M2MTokensIssued), "m2m-tokens")
	b.ReportMetric(float64(rateLimited), "429s")
	b.ReportMetric(float64(len(r.everFailed)), "bindings-failed")
	b.ReportMetric(mib(memAfter.heapInuse), "MiB-heap-inuse")
	b.ReportMetric(deltaMiB(memAfter.heapInuse, memBefore.heapInuse), "MiB-heap-growth")
	b.ReportMetric(mib(memAfter.rss), "MiB-rss")

	b.Logf("InitialSync, order=%s, --max-concurrent-reconciles=%d: %d bindings over %d users, tenant and simulator at %d req/s",
		order, workers, n, users, freeTierRate)
	if r.ready == n {
		b.Logf("  all %d Ready after %.1fs (target U÷rate×1.1+2s = %.0fs: %s); creating the bindings took %.1fs",
			n, elapsed.Seconds(), target.Seconds(), verdict(elapsed <= target), created.Seconds())
	} else {
		b.Logf("  only %d/%d Ready after %.1fs (budget %s): projected ≈ %.0fs for all at this pace (target %.0fs: MISSED); creating the bindings took %.1fs",
			r.ready, n, elapsed.Seconds(), budget, projected.Seconds(), target.Seconds(), created.Seconds())
	}
	b.Logf("  Management API requests: %d for %d distinct users (ratio %.3f, target ≤ 1.05: %s; %.2f per Ready binding); user reads %d, connection reads %d",
		apiReqs, users, ratio, verdict(r.ready == n && ratio <= 1.05), float64(apiReqs)/float64(max(r.ready, 1)), userReads, st1.ConnectionReads)
	b.Logf("  M2M tokens issued: %d (target 1: %s); 429s received: %d; IdP refreshes: %d",
		st1.M2MTokensIssued, verdict(st1.M2MTokensIssued == 1), rateLimited, sumValues(st1.IdPRefreshes))
	b.Logf("  bindings ever seen with failedAttempts > 0: %d (target 0: %s); Warning events: %s; manager error log lines: %d",
		len(r.everFailed), verdict(len(r.everFailed) == 0), formatCounts(warnings), mgrLogs.errorCount()-errorsBefore)
	b.Logf("  requests by kind since the first binding: %s", formatCounts(pathCounts(reqLog)))
	b.Logf("  %s", userReadBreakdown(st1.UserReads, reqLog, start, 3))
	if gaps := rereadGaps(reqLog); len(gaps) > 0 {
		b.Logf("  %d re-reads of a user already read in this sync; time since that user's previous read: min %.1fs, median %.1fs "+
			"(controller.RecentUserTTL = %s; one pass over %d users at %d req/s takes %.0fs)",
			len(gaps), gaps[0].Seconds(), gaps[len(gaps)/2].Seconds(), controller.RecentUserTTL, users, freeTierRate, float64(users)/rate)
	}
	b.Logf("  memory (this process: manager + simulator + test client), after GC: heap in use %.1f → %.1f MiB (%+.1f MiB, %.1f KiB per binding), "+
		"Sys %.1f → %.1f MiB, RSS %.1f → %.1f MiB",
		mib(memBefore.heapInuse), mib(memAfter.heapInuse), deltaMiB(memAfter.heapInuse, memBefore.heapInuse),
		deltaMiB(memAfter.heapInuse, memBefore.heapInuse)*1024/n,
		mib(memBefore.sys), mib(memAfter.sys), mib(memBefore.rss), mib(memAfter.rss))

	// Correctness only: progress and no failed sync. The time budget is not a verdict.
	if r.stalled || r.ready == 0 {
		b.Errorf("no progress: %d of %d bindings Ready after %s; not Ready by status: %v\n%s", r.ready, n, elapsed.Round(time.Second), r.notReadyReason, mgrLogs.String())
	}
	if len(r.everFailed) > 0 {
		b.Errorf("%d bindings had failed syncs (failedAttempts > 0), e.g. %v", len(r.everFailed), firstKeys(r.everFailed, 5))
	}
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// rereadGaps returns, sorted, the time between each successful user read and the previous
// read of the same user.
func rereadGaps(log []loggedRequest) []time.Duration {
	last := map[string]time.Time{}
	var gaps []time.Duration
	for _, r := range log {
		if !strings.HasPrefix(r.path, "/api/v2/users/") || r.status != 200 {
			continue
		}
		if t, ok := last[r.path]; ok {
			gaps = append(gaps, r.at.Sub(t))
		}
		last[r.path] = r.at
	}
	slices.Sort(gaps)
	return gaps
}

// BenchmarkSteadyState: 100 bindings over 20 users with 45 s IdP tokens (half Google-like
// non-rotating, half Microsoft-like rotating JWTs), synced, then watched for two token
// lifetimes. DESIGN targets: zero Management API requests in steady state for identities with
// a refresh token (renewals go to the IdP); no Secret ever holds an expired token.
func BenchmarkSteadyState(b *testing.B) {
	assetsOrSkip(b)
	for range b.N {
		steadyState(b)
	}
}

func steadyState(b *testing.B) {
	const (
		n        = 100
		users    = 20
		lifetime = 45 * time.Second
		workers  = 4
	)
	b.StopTimer()
	h := newHarness(b, harnessOptions{idps: []idpConn{googleLike, microsoftLike}, lifetime: lifetime})
	defer h.close()
	h.startManager(workers)
	h.createTenant()
	h.addUsers(users) // tokens minted (last_login) just before the bindings arrive

	st0 := h.sim.Stats()
	start := time.Now()
	h.createBindings(n, users, interleaved)
	syncTime, r := h.waitAllReady(n, 90*time.Second, start)
	if r.ready != n {
		b.Fatalf("%d of %d bindings Ready after %s; not Ready by status: %v\n%s", r.ready, n, syncTime.Round(time.Second), r.notReadyReason, mgrLogs.String())
	}
	st1 := h.sim.Stats()
	syncReqs := st1.APIRequests - st0.APIRequests
	syncLog := h.reqs.since(start)

	// Steady state: two token lifetimes, observing every Secret and binding once a second.
	b.StartTimer()
	steadyStart := time.Now()
	obs := &secretObservations{minRemaining: time.Duration(1<<63 - 1)}
	wasReady := map[string]bool{}
	sr := &readiness{everFailed: map[string]int32{}}
	var stMid auth0sim.Stats
	midTaken := false
	for time.Since(steadyStart) < 2*lifetime {
		if !midTaken && time.Since(steadyStart) >= lifetime {
			stMid, midTaken = h.sim.Stats(), true
		}
		h.observeSecrets(obs)
		if err := h.pollBindings(sr, wasReady); err != nil {
			b.Logf("listing bindings: %v", err)
		}
		time.Sleep(time.Second)
	}
	b.StopTimer()
	st2 := h.sim.Stats()
	steadyLog := h.reqs.since(steadyStart)
	warnings := h.warningEvents()

	steadyReqs := st2.APIRequests - st1.APIRequests
	w1, w2 := stMid.APIRequests-st1.APIRequests, st2.APIRequests-stMid.APIRequests
	refreshes := sumValues(st2.IdPRefreshes) - sumValues(st1.IdPRefreshes)
	userReads := sumValues(st2.UserReads) - sumValues(st1.UserReads)
	connReads := st2.ConnectionReads - st1.ConnectionReads

	b.ReportMetric(float64(steadyReqs), "steady-mgmt-api-reqs")
	b.ReportMetric(float64(w2), "2nd-lifetime-mgmt-api-reqs")
	b.ReportMetric(float64(refreshes), "idp-refreshes")
	b.ReportMetric(obs.minRemaining.Seconds(), "s-min-remaining")
	b.ReportMetric(float64(obs.expired), "expired-observations")
	b.ReportMetric(float64(syncReqs), "sync-mgmt-api-reqs")

	b.Logf("SteadyState: %d bindings over %d users, %s IdP tokens, --max-concurrent-reconciles=%d, tenant and simulator at %d req/s",
		n, users, lifetime, workers, freeTierRate)
	b.Logf("  sync: all Ready after %.1fs with %d Management API requests (minimum: %d users; the %d connections are read at the first renewal): %s",
		syncTime.Seconds(), syncReqs, users, len(h.idps), formatCounts(pathCounts(syncLog)))
	b.Logf("  steady state (%.0fs = 2 lifetimes after the sync): %d Management API requests (target 0): %d in the 1st lifetime, %d in the 2nd; "+
		"user reads %d, connection reads %d, 429s %d, M2M tokens issued in all %d",
		time.Since(steadyStart).Seconds(), steadyReqs, w1, w2, userReads, connReads, st2.RateLimited-st1.RateLimited, st2.M2MTokensIssued)
	b.Logf("  steady-state requests by kind: %s", formatCounts(pathCounts(steadyLog)))
	b.Logf("  IdP refreshes: %d (%s); invalid_grant: %d; about %.0f expected (%d bindings × %.0fs ÷ ~30s between renewals)",
		refreshes, formatCounts(diffCounts(st2.IdPRefreshes, st1.IdPRefreshes)), st2.InvalidGrants-st1.InvalidGrants,
		float64(n)*(2*lifetime).Seconds()/30, n, (2 * lifetime).Seconds())
	b.Logf("  Secrets observed %d times (once a second each): minimum remaining lifetime %.1fs, %d observations of an expired token, %d of an unknown token",
		obs.count, obs.minRemaining.Seconds(), obs.expired, obs.unknown)
	b.Logf("  bindings: %d observations of a Ready binding turned not Ready; %d bindings with failedAttempts > 0; Warning events: %s",
		sr.notReadySeen, len(sr.everFailed), formatCounts(warnings))

	if steadyReqs > 0 {
		b.Logf("  note: the steady-state Management API requests were: %s", describeRequests(steadyLog, steadyStart))
	}
	if len(sr.everFailed) > 0 || obs.expired > 0 || sr.notReadySeen > 0 {
		b.Errorf("steady state was not clean: %d bindings failed, %d expired-token observations, %d not-Ready observations\n%s",
			len(sr.everFailed), obs.expired, sr.notReadySeen, mgrLogs.String())
	}
}

// secretObservations is what reading the target Secrets saw.
type secretObservations struct {
	count, expired, unknown int
	minRemaining            time.Duration
}

// observeSecrets reads every target Secret and asks the simulator when its token expires.
func (h *harness) observeSecrets(o *secretObservations) {
	list := &corev1.SecretList{}
	if err := h.k8s.List(h.ctx, list, client.InNamespace(h.ns), client.MatchingLabels{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue}); err != nil {
		h.b.Logf("listing Secrets: %v", err)
		return
	}
	now := time.Now()
	for i := range list.Items {
		s := &list.Items[i]
		if s.Labels[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState {
			continue
		}
		o.count++
		exp, valid := h.sim.AccessTokenValid(string(s.Data[authv1alpha1.SecretKeyAccessToken]))
		switch {
		case exp.IsZero():
			o.unknown++
		case !valid:
			o.expired++
		}
		if !exp.IsZero() {
			o.minRemaining = min(o.minRemaining, exp.Sub(now))
		}
	}
}

func describeRequests(log []loggedRequest, start time.Time) string {
	var parts []string
	for _, r := range log {
		if strings.HasPrefix(r.path, "/api/v2/") || r.path == "/oauth/token" {
			parts = append(parts, fmt.Sprintf("%.1fs %s %s %d", r.at.Sub(start).Seconds(), r.method, r.path, r.status))
		}
	}
	return strings.Join(parts, "; ")
}

func diffCounts(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func firstKeys(m map[string]int32, n int) []string {
	var out []string
	for k := range m {
		if len(out) == n {
			break
		}
		out = append(out, k)
	}
	return out
}
