package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// defaultTenantRate is spec.rateLimit.requestsPerSecond's default (Auth0's free tier).
const defaultTenantRate = 2

func printTable(out io.Writer, scale string, results []*result) error {
	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	p("\nidptoken-operator, bin/manager as its own process (BENCH_SCALE=%s)\n\n", scale)
	if slices.ContainsFunc(results, func(r *result) bool { return !r.w.events }) {
		p("| workload | all Ready in | target | Auth0 requests (÷ users) | 429s | API-server writes per binding | Secret GETs per binding | create→Ready p50 / p99 | manager peak RSS / live heap | manager CPU | kube-apiserver CPU / peak RSS |\n")
		p("|---|---|---|---|---|---|---|---|---|---|---|\n")
	}
	for _, r := range results {
		w := r.w
		if w.events {
			continue // its own section, below
		}
		if len(r.failures) > 0 && r.ready == 0 {
			p("| %s | FAILED: %s | | | | | | | | | |\n", w, strings.Join(r.failures, "; "))
			continue
		}
		n := float64(w.bindings)
		sw, st, other := r.reqs.writes(isSecret), r.reqs.writes(isStatus), r.reqs.writes(isOther)
		p("| %s | %s | %s | %d (%.2f) | %d | %.2f (Secret %.2f, status %.2f, other %.2f) | %.2f | %s / %s | %.0f MiB / %s | %.1f s (%.1f ms per binding) | %.1f s / %.0f MiB |\n",
			w, secs(r.elapsed), target(r), r.auth0Reqs, float64(r.auth0Reqs)/float64(w.users), r.rateLimited,
			float64(sw+st+other)/n, float64(sw)/n, float64(st)/n, float64(other)/n,
			float64(r.reqs.gets("secrets"))/n,
			secs(r.p50), secs(r.p99), kib(r.mgr.peak), megabytes(r.liveHeap()), r.mgr.cpu, 1000*r.mgr.cpu/n, r.api.cpu, kib(r.api.peak))
	}
	for _, r := range results {
		if rr := r.renewals; rr != nil && rr.refreshes > 0 && r.w.restarts {
			p("%s", restartRenewalRow(r, rr))
		} else if rr != nil && rr.refreshes > 0 {
			// Every refresh at the IdP renews the Secrets of all the identity's bindings.
			renewed := float64(rr.refreshes) * float64(r.w.bindings) / float64(r.w.users)
			sw, st, other := rr.reqs.writes(isSecret), rr.reqs.writes(isStatus), rr.reqs.writes(isOther)
			p("| renewals after %s, %s tokens, %s window | %d not Ready, %d Secrets ever invalid | %d IdP refreshes (%.2f per identity per 30 s) | %d Auth0 requests | | %.2f per binding renewal (Secret %.2f, status %.2f, other %.2f) | | | | %.2f ms per binding renewal | |\n",
				r.w, renewalLifetime, rr.window, rr.notReady, rr.badAll, rr.refreshes,
				float64(rr.refreshes)/float64(r.w.users)/(rr.window.Seconds()/30), rr.auth0Reqs,
				float64(sw+st+other)/renewed, float64(sw)/renewed, float64(st)/renewed, float64(other)/renewed,
				1000*rr.mgrCPU/renewed)
		}
		if d := r.due; d != nil {
			order := "after"
			if d.newBeforeRenew {
				order = "before"
			}
			p("| restart of the manager after %s with all %s renewals due (%s tokens), a new binding created after the first refresh | new binding Ready %s after its create, %s the due refreshes finished; %d not Ready, %d Secrets invalid | %d IdP refreshes done %s after the restart, %s before the old tokens expired | | | | | | | | |\n",
				r.w, thousands(r.w.bindings), dueLifetime, secs(d.newReady), order, d.notReady, d.bad, d.refreshes, secs(d.refreshesDone), secs(d.beforeExpiry))
		}
		if u := r.unrelated; u != nil {
			p("| %s unrelated Secrets of 1 KiB after %s (created in %s) | %d not Ready | | | | | | | manager RSS %.0f → %.0f MiB (%+.1f MiB) | | |\n",
				thousands(u.secrets), r.w, secs(u.took), u.notReady, float64(u.rssBefore)/1024, float64(u.after)/1024,
				(float64(u.after)-float64(u.rssBefore))/1024)
		}
		if s := r.steady; s != nil {
			perMin := func(v float64) float64 { return v * float64(time.Minute) / float64(s.window) }
			writes := float64(s.reqs.writes(func(string) bool { return true }))
			p("| steady state after %s, %s window, no refresh due | %d not Ready | 0 Auth0 requests | %.1f per minute | %d | %.1f per minute in all | %.1f per minute | | | %.2f s per minute | |\n",
				r.w, s.window, s.notReady, perMin(float64(s.auth0Reqs)), s.rateLimited, perMin(writes),
				perMin(float64(s.reqs.gets("secrets"))), perMin(s.mgrCPU))
		}
		if r.relogin != nil {
			p("%s", reloginRow(r))
		}
	}
	for _, r := range results {
		if r.events != nil {
			p("%s", eventsSection(r))
		}
	}
	p("\n")
	for _, r := range results {
		p("%s:\n", r.w)
		for _, f := range r.failures {
			p("  FAILED: %s\n", f)
		}
		if r.ready == 0 {
			continue
		}
		p("  creating the bindings took %s; API-server write floor (%d Secret creates + %d updates): %s; M2M tokens issued: %d; bindings ever seen with failedAttempts > 0: %d\n",
			secs(r.createTook), r.w.bindings, r.w.bindings, secs(r.floor), r.m2mTokens, r.failedBindings)
		if r.heapReady.live > 0 {
			p("  manager heap after a GC (pprof): %s with %d goroutines once all were Ready (with the passes then in flight); %s with %d goroutines when the row's measurements ended, the table's live heap (profiles heap-ready.pb.gz, heap-settled.pb.gz)\n",
				megabytes(r.heapReady.live), r.heapReady.goroutines, megabytes(r.heapSettled.live), r.heapSettled.goroutines)
		}
		if r.allWritesFloor > 0 {
			p("  all %d writes of the run (the bindings' creates, the manager's Secrets, statuses and Events) replayed as Secret writes: %s; all Ready took %.2f× that\n",
				r.allWrites, secs(r.allWritesFloor), r.elapsed.Seconds()/r.allWritesFloor.Seconds())
		}
		if r.auth0Span > 0 {
			rate := effectiveRate(r.w)
			p("  Auth0: first request %s after the first create; the %d requests spanned %s (a full bucket of %d refilling at %d/s allows that many in %s)\n",
				secs(r.auth0First), r.auth0Reqs, secs(r.auth0Span), rate, rate,
				secs(time.Duration(float64(max(0, r.auth0Reqs-rate))/float64(rate)*float64(time.Second))))
		}
		p("  the manager's API-server requests during the sync (verb resource code: count): %s\n", r.reqs)
		if r.steady != nil {
			p("  … during the steady-state window: %s\n", r.steady.reqs)
		}
		if rr := r.renewals; rr != nil {
			p("  … during the renewal window: %s\n", rr.reqs)
			if r.w.restarts && rr.refreshes > 0 {
				p("%s", restartDetails(r, rr))
			}
		}
		if r.relogin != nil {
			p("%s", reloginDetails(r.relogin))
		}
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// target is the DESIGN's: 1.1 × max(users ÷ the tenant's rate, the API server's write floor) + 2 s.
//
// A row whose creates are paced has the latency target instead: create→Ready p99 < 1 s.
func target(r *result) string {
	if r.w.createRate > 0 {
		verdict := "met"
		if r.p99 >= latencyTarget {
			verdict = "missed"
		}
		return fmt.Sprintf("create→Ready p99 < %s (%s)", secs(latencyTarget), verdict)
	}
	rate := effectiveRate(r.w)
	budget := time.Duration(float64(r.w.users) / float64(rate) * float64(time.Second))
	t := time.Duration(1.1*float64(max(budget, r.floor))) + 2*time.Second
	verdict := "met"
	if r.elapsed > t {
		verdict = "missed"
	}
	if r.rateLimited > 0 {
		verdict += ", 429s"
	}
	return fmt.Sprintf("≤ %s (%s)", secs(t), verdict)
}

func isSecret(res string) bool { return baseResource(res) == "secrets" }
func isStatus(res string) bool { return strings.HasSuffix(baseResource(res), "/status") }
func isOther(res string) bool  { return !isSecret(res) && !isStatus(res) }

func secs(d time.Duration) string {
	switch {
	case d == 0:
		return "–"
	case d < 10*time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	default:
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
}

func kib(v uint64) float64 { return float64(v) / 1024 }

// megabytes is a byte count in MB (10^6, as pprof prints it); – when it was not measured.
func megabytes(v uint64) string {
	if v == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MB", float64(v)/1e6)
}

// effectiveRate is the Management API rate the operator may use: the tenant's rateLimit (its
// burst is the same) within the server's.
func effectiveRate(w workload) int {
	rate := w.tenantRate
	if rate == 0 {
		rate = defaultTenantRate
	}
	return min(rate, w.rate)
}
