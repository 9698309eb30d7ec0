// Command table is the benchmark a user can reproduce (`make bench`): it measures the built
// manager binary from outside, as a cluster would see it, and prints one table.
//
// For each workload it starts a fresh kube-apiserver and etcd (envtest; the API server keeps
// an audit log of the manager's requests), the simulated Auth0 tenant (test/auth0sim, in
// this process: a token bucket with Auth0's headers and 429s) and bin/manager as a child
// process with its own kubeconfig. It creates the tenant and the bindings and follows them
// with a watch until all are Ready, then reads:
//   - Auth0 Management API requests and 429s, from the simulator;
//   - the manager's API-server requests, from the audit log (writes per binding: Secret
//     writes, binding status writes, other writes such as Events; uncached Secret GETs);
//   - CPU (utime+stime of /proc/<pid>/stat) and peak RSS (VmHWM of /proc/<pid>/status) of the
//     manager and of kube-apiserver;
//   - create→Ready latency per binding (create returned → first seen Ready by the watch); a row
//     that paces its creates (100/s) has the latency target, p99 < 1 s;
//   - the API server's write floor: the same number of Secret creates and updates, made by as
//     many workers as the manager's --max-concurrent-reconciles after the manager stopped; and
//     every write of the run (the bindings' creates and the manager's writes) replayed likewise.
//
// Environment: KUBEBUILDER_ASSETS (kube-apiserver, etcd), BENCH_MANAGER (default bin/manager),
// BENCH_SCALE=small (default; about 10 minutes, with a renewal row, a row of 50,000 unrelated
// Secrets, a restart row, 1,000 bindings created at 100/s, a renewal row of templated Secrets
// with a rollout restart target, about 3 of the minutes, and a re-login row) or full (the table
// of issue 11, the two renewal rows, 3,000 bindings created at 100/s and a re-login row),
// BENCH_RESET=full (default: x-ratelimit-reset is when the bucket is full again, as
// Auth0 documents) or next (the next token), BENCH_MANAGER_ARGS (extra flags, space-separated),
// BENCH_ROWS (a comma list of the rows to run, e.g. 4), BENCH_DIR (logs, kubeconfig and audit
// log; default a temporary directory, kept on failure).
// The Auth0 events row (events.go; row 10 of small, 8 of full) runs only when BENCH_ROWS names
// it: about 7½ minutes, 5 of them stream cuts, which BENCH_EVENTS_CUT (a Go duration, default
// 5m) shortens, e.g. BENCH_ROWS=10 BENCH_EVENTS_CUT=1m (about 3½ minutes).
// The re-login row (relogin.go; row 11 of small, 9 of full) syncs 1,000 bindings of 100 users
// (10,000 of 1,000 in full) with spec.events on, then logs every user in again, 25 a second,
// and times each login to all of its user's Secrets holding a token of that login: about 40 s
// (4 minutes in full, 40 s of them the logins).
// BENCH_MANAGER_ENV (KEY=VALUE pairs, space-separated) is added to the manager's environment
// only, e.g. BENCH_MANAGER_ENV=GOMEMLIMIT=128MiB. GOMEMLIMIT or GOGC in the bench's own
// environment is refused: kube-apiserver and etcd would inherit it and every figure would skew.
//
// It exits non-zero only on a correctness failure (a binding never Ready, a Secret without a
// valid token, the manager exiting), never on a timing.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// workload is one row of the table.
type workload struct {
	bindings, users int
	rate            int           // the simulated tenant's Management API rate (and burst)
	tenantRate      int           // spec.rateLimit of the Auth0Tenant; 0 leaves the default (2/s)
	steady          time.Duration // a steady-state window after the sync; 0: none
	// renewals: the IdP's tokens live renewalLifetime, and after the sync the bench follows
	// the renewals for this long; 0: none (hour-long tokens).
	renewals time.Duration
	// unrelated: after the sync, this many 1 KiB Secrets without the operator's labels are
	// created (half in the bindings' namespace, half in another) and the manager's RSS compared.
	unrelated int
	// dueAfterRestart: the IdP's tokens live dueLifetime; after the sync the manager is stopped
	// until every lineage's renewal is due, then restarted, and a new binding is created at once.
	dueAfterRestart bool
	// createRate paces the binding creates at this many per second (a user's bindings one
	// after the other), for create→Ready latency with a free Auth0 budget; 0: as fast as the
	// API server takes them.
	createRate int
	// restarts (with renewals): every binding templates its Secret (an authorization key,
	// mergePolicy Merge) and names the one Deployment of its namespace as a rollout restart
	// target, at most once per restartMinInterval; the manager knows its namespace, so that it
	// keeps status.secretMAC (restarts.go).
	restarts bool
	// events: the events row (events.go): a tenant with spec.events and five measurements of
	// what Auth0's Events API does for the bindings; bindings and users are its own.
	events bool
	// relogin: the tenant has spec.events on, and after the sync every user logs in again,
	// BENCH_RELOGIN_RATE (default 10) a second, and the bench times each login to its user's Secrets (relogin.go).
	relogin bool
	// optIn: the row runs only when BENCH_ROWS names it.
	optIn bool
}

// dueLifetime is the IdP access-token lifetime of a restart row: renewals fall due 80 s after
// the tokens were issued (a third of the lifetime remaining), 40 s before they expire.
const dueLifetime = 120 * time.Second

// renewalLifetime is the IdP access-token lifetime of a renewal row: renewed every 30 s, the
// minimum spacing of renewals, when a third of it remains.
const renewalLifetime = 45 * time.Second

func (w workload) String() string {
	if w.events {
		return fmt.Sprintf("Auth0 events (spec.events): re-login heal, deleted users, duplicates, stream cuts, events off; Auth0 at %d req/s", w.rate)
	}
	s := fmt.Sprintf("%s bindings / %s users, Auth0 at %d req/s", thousands(w.bindings), thousands(w.users), w.rate)
	if w.createRate > 0 {
		s += fmt.Sprintf(", created at %d/s", w.createRate)
	}
	if w.restarts {
		s += ", templated Secrets sharing 1 restart target"
	}
	if w.relogin {
		s += ", events on"
	}
	return s
}

// latencyTarget is the create→Ready p99 a paced row must meet.
const latencyTarget = time.Second

var scales = map[string][]workload{
	"small": {
		{bindings: 200, users: 20, rate: 2},
		{bindings: 200, users: 20, rate: 50, tenantRate: 50, steady: 30 * time.Second},
		{bindings: 500, users: 50, rate: 50, tenantRate: 50},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50},
		{bindings: 200, users: 20, rate: 50, tenantRate: 50, renewals: 95 * time.Second},
		{bindings: 200, users: 20, rate: 50, tenantRate: 50, unrelated: 50000},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50, dueAfterRestart: true},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50, createRate: 100},
		{bindings: 200, users: 20, rate: 50, tenantRate: 50, renewals: restartRowWindow, restarts: true},
		{rate: 50, tenantRate: 50, events: true, optIn: true},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50, relogin: true},
	},
	"full": {
		{bindings: 1000, users: 100, rate: 2},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50, steady: time.Minute},
		{bindings: 5000, users: 500, rate: 50, tenantRate: 50},
		{bindings: 10000, users: 1000, rate: 50, tenantRate: 50},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50, renewals: 95 * time.Second},
		{bindings: 3000, users: 300, rate: 50, tenantRate: 50, createRate: 100},
		{bindings: 1000, users: 100, rate: 50, tenantRate: 50, renewals: restartRowWindow, restarts: true},
		{rate: 50, tenantRate: 50, events: true, optIn: true},
		{bindings: 10000, users: 1000, rate: 50, tenantRate: 50, relogin: true},
	},
}

// stallAfter: no binding became Ready for this long: the run failed.
const stallAfter = 2 * time.Minute

func main() {
	ctrllog.SetLogger(logr.Discard()) // envtest's and the clients' logs; the manager logs to its file
	os.Exit(run())
}

func run() int {
	scale := envOr("BENCH_SCALE", "small")
	rows, ok := scales[scale]
	if !ok {
		fmt.Fprintf(os.Stderr, "bench: BENCH_SCALE must be small or full, not %q\n", scale)
		return 2
	}
	reset := auth0sim.ResetWhenFull
	switch envOr("BENCH_RESET", "full") {
	case "full":
	case "next":
		reset = auth0sim.ResetNextToken
	default:
		fmt.Fprintln(os.Stderr, "bench: BENCH_RESET must be full or next")
		return 2
	}
	if only := os.Getenv("BENCH_ROWS"); only != "" {
		var picked []workload
		for f := range strings.SplitSeq(only, ",") {
			i, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || i < 1 || i > len(rows) {
				fmt.Fprintf(os.Stderr, "bench: BENCH_ROWS must list rows 1 to %d, like 1,3\n", len(rows))
				return 2
			}
			picked = append(picked, rows[i-1])
		}
		rows = picked
	} else {
		rows = slices.DeleteFunc(slices.Clone(rows), func(w workload) bool { return w.optIn })
	}
	for _, v := range []string{"GOMEMLIMIT", "GOGC"} {
		if _, set := os.LookupEnv(v); set {
			fmt.Fprintf(os.Stderr, "bench: %s is set: it would bind kube-apiserver and etcd too; give it to the manager alone with BENCH_MANAGER_ENV=\"%s=...\"\n", v, v)
			return 2
		}
	}
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "bench: KUBEBUILDER_ASSETS is unset (make bench sets it)")
		return 2
	}
	manager, _ := filepath.Abs(envOr("BENCH_MANAGER", "bin/manager"))
	if _, err := os.Stat(manager); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v (go build -o bin/manager ./cmd)\n", err)
		return 2
	}
	repo, _ := os.Getwd()
	dir := os.Getenv("BENCH_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "idptoken-bench-"); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
	}

	managerArgs, pprofAddr, err := withPprof(strings.Fields(os.Getenv("BENCH_MANAGER_ARGS")))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	progress("idptoken-operator benchmark, BENCH_SCALE=%s, x-ratelimit-reset = %s; manager %s; logs in %s",
		scale, map[auth0sim.ResetMode]string{auth0sim.ResetWhenFull: "bucket full again", auth0sim.ResetNextToken: "next token"}[reset], manager, dir)

	var results []*result
	failed := false
	for i, w := range rows {
		rowDir := filepath.Join(dir, fmt.Sprintf("row%d", i+1))
		if err := os.MkdirAll(rowDir, 0o700); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 2
		}
		progress("[%d/%d] %s", i+1, len(rows), w)
		r := measure(ctx, w, clusterOptions{
			assets: assets, repo: repo, manager: manager, dir: rowDir, rate: w.rate, reset: reset,
			lifetime: time.Hour, managerArgs: managerArgs, pprofAddr: pprofAddr,
			managerEnv: strings.Fields(os.Getenv("BENCH_MANAGER_ENV")),
		})
		results = append(results, r)
		for _, f := range r.failures {
			failed = true
			fmt.Fprintf(os.Stderr, "bench: FAILED: %s: %s (logs: %s)\n", w, f, rowDir)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if err := printTable(os.Stdout, scale, results); err != nil {
		fmt.Fprintln(os.Stderr, "bench: printing the table:", err)
	}
	if failed {
		return 1
	}
	if os.Getenv("BENCH_DIR") == "" {
		_ = os.RemoveAll(dir)
	}
	return 0
}

// result is what one workload measured.
// liveHeap is the table's live heap: the heap once the row's work was over, when its
// measurements ended. The heap at the moment all were Ready also holds what the passes and
// Events then in flight allocate while the forced GCs run: it measured 44–89 MB in rows whose
// later figure was 44–51 MB, so it says more about that moment than about what the manager keeps.
func (r *result) liveHeap() uint64 {
	if r.heapSettled.live > 0 {
		return r.heapSettled.live
	}
	return r.heapReady.live
}

type result struct {
	w                   workload
	failures            []string
	ready               int
	elapsed, createTook time.Duration
	floor               time.Duration
	// allWrites is every write of the run (the bindings' creates and the manager's writes),
	// replayed as Secret writes by the manager's number of workers; allWritesFloor is its time.
	allWrites              int
	allWritesFloor         time.Duration
	auth0Reqs, rateLimited int
	auth0First, auth0Span  time.Duration // first Management API request after the first create; first to last
	m2mTokens              int
	reqs                   requestCounts // the manager's API-server requests during the sync
	p50, p99               time.Duration
	mgr, api               usage // deltas of CPU over the sync; peaks at the end
	// heapReady, heapSettled: the manager's heap after a GC once all were Ready, and again when
	// the row's measurements ended (before the write floors).
	heapReady, heapSettled heapSample
	failedBindings         int
	steady                 *steadyResult
	renewals               *renewalResult
	unrelated              *unrelatedResult
	due                    *dueResult
	events                 *eventsResult
	relogin                *reloginResult
}

type dueResult struct {
	newReady       time.Duration // the new binding's create → Ready
	refreshesDone  time.Duration // restart → the last due lineage refreshed at the IdP
	beforeExpiry   time.Duration // how long before the old tokens' expiry that was
	refreshes      int
	notReady, bad  int
	newBeforeRenew bool
}

type unrelatedResult struct {
	secrets          int
	took             time.Duration
	rssBefore, after uint64 // KiB, VmRSS
	notReady         int
}

type renewalResult struct {
	window           time.Duration
	refreshes        int // at the IdP
	auth0Reqs        int
	reqs             requestCounts
	mgrCPU           float64
	notReady, badAll int
	// patched: when the manager patched each Deployment (a restart row), by name.
	patched map[string][]time.Time
}

type steadyResult struct {
	window                 time.Duration
	auth0Reqs, rateLimited int
	reqs                   requestCounts
	mgrCPU                 float64
	notReady               int
}

func measure(ctx context.Context, w workload, o clusterOptions) *result {
	if w.events {
		return measureEvents(ctx, w, o)
	}
	r := &result{w: w}
	fail := func(format string, args ...any) *result {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
		return r
	}
	if w.renewals > 0 {
		o.lifetime = renewalLifetime
	}
	if w.dueAfterRestart {
		o.lifetime = dueLifetime
	}
	if w.restarts {
		o = o.forRestarts()
	}
	c, err := startCluster(ctx, o)
	if err != nil {
		return fail("setting up: %v", err)
	}
	defer c.stop()
	if w.restarts {
		if err := c.createRestartTarget(ctx); err != nil {
			return fail("creating the restart target: %v", err)
		}
	}
	c.addUsers(0, w.users+1) // the last one is for a binding created after a restart
	issued := time.Now()
	if err := c.createRowTenant(ctx, w); err != nil {
		return fail("creating the tenant: %v", err)
	}
	if _, err := c.audit.read(); err != nil { // skip the manager's start-up
		return fail("reading the audit log: %v", err)
	}
	sim0, mgr0, api0 := c.sim.Stats(), sample(c.mgr.Pid()), sample(c.apiserver)
	c.apiSpan.take()

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	rw := c.watchReady(watchCtx)
	var created sync.Map
	start := time.Now()
	createErr := make(chan error, 1)
	go func() {
		err := c.createBindings(ctx, 0, w.bindings, 0, w.users, w.createRate, &created)
		r.createTook = time.Since(start)
		createErr <- err
	}()

	lastReady, lastProgress, lastLog := -1, time.Now(), time.Now()
	for {
		ready, _ := rw.counts()
		if ready == w.bindings {
			break
		}
		if ready != lastReady {
			lastReady, lastProgress = ready, time.Now()
		}
		if err := c.managerExited(); err != nil {
			return fail("%v after %d of %d bindings were Ready", err, ready, w.bindings)
		}
		if time.Since(lastProgress) > stallAfter {
			return fail("no binding became Ready for %s: %d of %d Ready", stallAfter, ready, w.bindings)
		}
		if ctx.Err() != nil {
			return fail("interrupted")
		}
		if time.Since(lastLog) > 15*time.Second {
			st := c.sim.Stats()
			progress("  … %5.1fs: %d/%d Ready, %d Auth0 requests, %d × 429", time.Since(start).Seconds(), ready, w.bindings,
				st.APIRequests-sim0.APIRequests, st.RateLimited-sim0.RateLimited)
			lastLog = time.Now()
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.elapsed = time.Since(start)
	mgr1, api1 := sample(c.mgr.Pid()), sample(c.apiserver)
	sim1 := c.sim.Stats()
	if err := <-createErr; err != nil {
		return fail("%v", err)
	}
	r.ready = w.bindings
	r.auth0Reqs, r.rateLimited = sim1.APIRequests-sim0.APIRequests, sim1.RateLimited-sim0.RateLimited
	r.m2mTokens = sim1.M2MTokensIssued
	r.mgr = usage{cpu: mgr1.cpu - mgr0.cpu, peak: mgr1.peak, rss: mgr1.rss}
	r.api = usage{cpu: api1.cpu - api0.cpu, peak: api1.peak, rss: api1.rss}
	r.p50, r.p99 = latencies(&created, rw)
	if r.heapReady, err = liveHeap(ctx, o.pprofAddr, o.dir, "heap-ready.pb.gz"); err != nil {
		progress("  live heap: %v", err)
	}
	if first, last := c.apiSpan.take(); !first.IsZero() {
		r.auth0First, r.auth0Span = first.Sub(start), last.Sub(first)
	}
	_, r.failedBindings = rw.counts()

	time.Sleep(3 * time.Second) // the last writes of the sync reach the audit log
	if r.reqs, err = c.audit.read(); err != nil {
		return fail("reading the audit log: %v", err)
	}
	if bad, err := c.checkSecrets(ctx, 0, w.bindings); err != nil {
		return fail("reading the Secrets: %v", err)
	} else if bad > 0 {
		fail("%d of %d target Secrets do not hold a valid access token", bad, w.bindings)
	}

	for _, f := range afterTheSync(ctx, c, w, o, rw, issued, r) {
		fail("%s", f)
	}
	if err := c.managerExited(); err != nil {
		return fail("%v", err)
	}

	if r.heapSettled, err = liveHeap(ctx, o.pprofAddr, o.dir, "heap-settled.pb.gz"); err != nil {
		progress("  live heap: %v", err)
	}
	c.stopManager()
	workers := managerWorkers(o.managerArgs)
	progress("  all Ready in %.1fs; measuring the API server's write floor (%d Secret creates + %d updates, %d workers)", r.elapsed.Seconds(), w.bindings, w.bindings, workers)
	if r.floor, err = writeFloor(ctx, c, "write-floor", w.bindings, w.bindings, workers); err != nil {
		progress("  write floor: %v", err)
	}
	r.allWrites = w.bindings + r.reqs.writes(func(string) bool { return true })
	progress("  replaying the run's %d writes (%d workers)", r.allWrites, workers)
	if r.allWritesFloor, err = writeFloor(ctx, c, "all-writes-floor", (r.allWrites+1)/2, r.allWrites/2, workers); err != nil {
		progress("  all-writes floor: %v", err)
	}
	return r
}

// measureRenewals follows the renewals of short-lived tokens for w.renewals, checking every
// second that every Secret holds a valid token.
func measureRenewals(ctx context.Context, c *cluster, w workload, rw *readyWatch) *renewalResult {
	progress("  renewals of %s tokens for %s", renewalLifetime, w.renewals)
	s0, m0 := c.sim.Stats(), sample(c.mgr.Pid())
	_, _ = c.audit.read()
	c.audit.takePatched()
	rr := &renewalResult{window: w.renewals}
	for end := time.Now().Add(w.renewals); time.Now().Before(end) && ctx.Err() == nil; time.Sleep(time.Second) {
		if bad, err := c.checkSecrets(ctx, 0, w.bindings); err == nil && bad > rr.badAll {
			rr.badAll = bad
		}
	}
	s1, m1 := c.sim.Stats(), sample(c.mgr.Pid())
	rr.reqs, _ = c.audit.read()
	rr.patched = c.audit.takePatched()
	rr.refreshes = s1.IdPRefreshes[idpName] - s0.IdPRefreshes[idpName]
	rr.auth0Reqs = s1.APIRequests - s0.APIRequests
	rr.mgrCPU = m1.cpu - m0.cpu
	ready, _ := rw.counts()
	rr.notReady = w.bindings - ready
	return rr
}

// afterTheSync runs the row's measurements that follow the sync (steady state, renewals, a
// restart with renewals due, unrelated Secrets, re-logins) and returns what went wrong.
func afterTheSync(ctx context.Context, c *cluster, w workload, o clusterOptions, rw *readyWatch, issued time.Time, r *result) []string {
	var failures []string
	fail := func(format string, args ...any) { failures = append(failures, fmt.Sprintf(format, args...)) }
	var err error
	if w.steady > 0 {
		r.steady = measureSteady(ctx, c, w, rw)
		if r.steady.notReady > 0 {
			fail("%d bindings were not Ready after the steady-state window", r.steady.notReady)
		}
	}
	if w.renewals > 0 {
		r.renewals = measureRenewals(ctx, c, w, rw)
		if r.renewals.notReady > 0 || r.renewals.badAll > 0 {
			fail("after the renewals: %d bindings not Ready, %d Secrets without a valid token", r.renewals.notReady, r.renewals.badAll)
		}
	}
	if w.dueAfterRestart {
		if r.due, err = measureDueAfterRestart(ctx, c, w, o, rw, issued); err != nil {
			fail("restart with renewals due: %v", err)
		} else if r.due.notReady > 0 || r.due.bad > 0 {
			fail("after the restart: %d bindings not Ready, %d Secrets without a valid token", r.due.notReady, r.due.bad)
		}
	}
	if w.unrelated > 0 {
		if r.unrelated, err = measureUnrelated(ctx, c, w, rw); err != nil {
			fail("unrelated Secrets: %v", err)
		} else if r.unrelated.notReady > 0 {
			fail("%d bindings were not Ready after the unrelated Secrets", r.unrelated.notReady)
		}
	}
	if w.relogin {
		var fs []string
		r.relogin, fs = measureRelogin(ctx, c, w)
		failures = append(failures, fs...)
	}
	return failures
}

// measureDueAfterRestart stops the manager until every lineage's renewal is due, restarts it,
// creates one new binding as soon as the first due refresh happened, and times the new
// binding's Ready against the due refreshes.
func measureDueAfterRestart(ctx context.Context, c *cluster, w workload, o clusterOptions, rw *readyWatch, issued time.Time) (*dueResult, error) {
	c.stopManager()
	dueAt := issued.Add(dueLifetime * 2 / 3).Add(2 * time.Second)
	progress("  manager stopped; restarting it in %s, when every renewal is due", time.Until(dueAt).Round(time.Second))
	time.Sleep(time.Until(dueAt))
	base := c.sim.Stats().IdPRefreshes[idpName]
	if err := c.restartManager(o.manager, o.managerArgs); err != nil {
		return nil, err
	}
	restarted := time.Now()
	// The new binding is created once the backlog is being worked on: created earlier, it would
	// be part of the manager's initial list, as old as the others.
	for c.sim.Stats().IdPRefreshes[idpName] == base && time.Since(restarted) < time.Minute {
		time.Sleep(5 * time.Millisecond)
	}
	var created sync.Map
	if err := c.createBindings(ctx, w.bindings, w.bindings+1, w.users, 1, 0, &created); err != nil {
		return nil, err
	}
	d := &dueResult{}
	newName := bindingName(w.bindings)
	for deadline := time.Now().Add(dueLifetime / 3); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		refreshed := c.sim.Stats().IdPRefreshes[idpName] - base
		if refreshed >= w.users && d.refreshesDone == 0 {
			d.refreshesDone, d.refreshes = time.Since(restarted), refreshed
		}
		rw.mu.Lock()
		at, ready := rw.ready[newName]
		rw.mu.Unlock()
		if ready && d.newReady == 0 {
			createdAt, _ := created.Load(newName)
			d.newReady = at.Sub(createdAt.(time.Time))
			d.newBeforeRenew = d.refreshesDone == 0
		}
		if d.refreshesDone > 0 && d.newReady > 0 {
			break
		}
	}
	if d.refreshesDone == 0 {
		d.refreshes = c.sim.Stats().IdPRefreshes[idpName] - base
		return d, fmt.Errorf("only %d of %d due lineages refreshed within %s of the restart", d.refreshes, w.users, dueLifetime/3)
	}
	d.beforeExpiry = issued.Add(dueLifetime).Sub(restarted.Add(d.refreshesDone))
	time.Sleep(2 * time.Second)
	var err error
	if d.bad, err = c.checkSecrets(ctx, 0, w.bindings+1); err != nil {
		return nil, err
	}
	ready, _ := rw.counts()
	d.notReady = w.bindings + 1 - ready
	return d, nil
}

// measureUnrelated creates w.unrelated Secrets the operator does not manage and compares the
// manager's resident memory before and after (settled for 10 s, after a GC cycle's worth of
// allocation has had time to happen).
func measureUnrelated(ctx context.Context, c *cluster, w workload, rw *readyWatch) (*unrelatedResult, error) {
	progress("  creating %d unrelated Secrets of 1 KiB", w.unrelated)
	time.Sleep(10 * time.Second)
	u := &unrelatedResult{secrets: w.unrelated}
	u.rssBefore, _ = procMemKiB(c.mgr.Pid(), "VmRSS")
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "unrelated"}}
	if err := c.k8s.Create(ctx, other); err != nil {
		return nil, err
	}
	payload := make([]byte, 1024)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range w.unrelated {
		ns := c.ns
		if i%2 == 1 {
			ns = other.Name
		}
		g.Go(func() error {
			return c.k8s.Create(gctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%06d", i), Namespace: ns, Labels: map[string]string{"app": "other"}},
				Data:       map[string][]byte{"password": payload},
			})
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	u.took = time.Since(start)
	time.Sleep(10 * time.Second)
	u.after, _ = procMemKiB(c.mgr.Pid(), "VmRSS")
	ready, _ := rw.counts()
	u.notReady = w.bindings - ready
	return u, nil
}

func measureSteady(ctx context.Context, c *cluster, w workload, rw *readyWatch) *steadyResult {
	progress("  steady state for %s", w.steady)
	s0, m0 := c.sim.Stats(), sample(c.mgr.Pid())
	_, _ = c.audit.read()
	select {
	case <-ctx.Done():
	case <-time.After(w.steady):
	}
	s1, m1 := c.sim.Stats(), sample(c.mgr.Pid())
	reqs, _ := c.audit.read()
	st := &steadyResult{window: w.steady, auth0Reqs: s1.APIRequests - s0.APIRequests, rateLimited: s1.RateLimited - s0.RateLimited,
		reqs: reqs, mgrCPU: m1.cpu - m0.cpu}
	ready, _ := rw.counts()
	st.notReady = w.bindings - ready
	return st
}

// writeFloor times creates Secret creates followed by updates updates of them by the given
// number of workers, in a namespace of its own. With creates = updates = bindings it is the
// operator's floor of one Secret write and one status write per binding.
func writeFloor(ctx context.Context, c *cluster, namespace string, creates, updates, workers int) (time.Duration, error) {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}
	if err := c.k8s.Create(ctx, ns); err != nil {
		return 0, err
	}
	secrets := make([]*corev1.Secret, creates)
	start := time.Now()
	for _, update := range []bool{false, true} {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(workers)
		n := creates
		if update {
			n = min(updates, creates)
		}
		for i := range n {
			g.Go(func() error {
				if update {
					s := secrets[i]
					s.Data["access_token"] = []byte(fmt.Sprintf("floor-%d-b", i))
					return c.k8s.Update(gctx, s)
				}
				s := &corev1.Secret{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("floor-%05d", i), Namespace: ns.Name},
					Data:       map[string][]byte{"access_token": []byte(fmt.Sprintf("floor-%d-a", i))},
				}
				secrets[i] = s
				return c.k8s.Create(gctx, s)
			})
		}
		if err := g.Wait(); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// managerWorkers is the manager's --max-concurrent-reconciles: from BENCH_MANAGER_ARGS, else
// its default.
func managerWorkers(args []string) int {
	workers := 16
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--max-concurrent-reconciles="); ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				workers = n
			}
		}
	}
	return workers
}

// latencies returns the median and 99th percentile of create→Ready.
func latencies(created *sync.Map, rw *readyWatch) (p50, p99 time.Duration) {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	var ds []time.Duration
	created.Range(func(k, v any) bool {
		if at, ok := rw.ready[k.(string)]; ok {
			ds = append(ds, max(0, at.Sub(v.(time.Time))))
		}
		return true
	})
	if len(ds) == 0 {
		return 0, 0
	}
	slices.Sort(ds)
	return ds[len(ds)/2], ds[min(len(ds)-1, len(ds)*99/100)]
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func thousands(n int) string {
	if n < 1000 {
		return fmt.Sprint(n)
	}
	return fmt.Sprintf("%d,%03d", n/1000, n%1000)
}
