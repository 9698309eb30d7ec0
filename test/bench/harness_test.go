// Package bench_test holds the benchmarks that show the DESIGN's performance targets: a real
// kube-apiserver and etcd (envtest), the simulated Auth0 tenant (test/auth0sim) with its
// server-side rate limit, and the manager wired as cmd/main.go wires it, in this process.
//
// Run them with (after `make envtest-assets`; <version> is the Makefile's ENVTEST_K8S_VERSION,
// testenv.KubernetesVersion):
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s/<version>-linux-amd64 go test ./test/bench/ -run='^$' -bench=. -benchtime=1x -timeout=20m -v
//
// They print figures and never assert timings; they do assert correctness (every binding
// Ready, no failed sync). Without KUBEBUILDER_ASSETS they skip.
package bench_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

// The simulated tenant's M2M application and the Auth0Tenant that uses it.
const (
	m2mClientID     = "bench-m2m"
	m2mClientSecret = "sim_cs_bench-m2m-secret"
	tenantName      = "auth0"
	// freeTierRate is Auth0's free-tier Management API limit, enforced by the simulator and
	// configured on the Auth0Tenant (rateLimit {requestsPerSecond: 2, burst: 2}).
	freeTierRate = 2
)

// idpConn is a simulated IdP and the oauth2 connection through which Auth0 links it.
type idpConn struct {
	idp      string
	conn     string
	rotation auth0sim.RotationMode
	jwt      bool
}

var (
	googleLike    = idpConn{idp: "google", conn: "google-sim", rotation: auth0sim.RotationNone}
	microsoftLike = idpConn{idp: "microsoft", conn: "microsoft-sim", rotation: auth0sim.RotationRotate, jwt: true}
)

var (
	scheme     = k8sruntime.NewScheme()
	schemeOnce sync.Once
	logOnce    sync.Once
	mgrLogs    = &logTail{max: 200}
)

// assetsOrSkip returns KUBEBUILDER_ASSETS, skipping the benchmark when it is unset.
func assetsOrSkip(b *testing.B) string {
	b.Helper()
	d := os.Getenv("KUBEBUILDER_ASSETS")
	if d == "" {
		b.Skip("KUBEBUILDER_ASSETS is unset: these benchmarks run a real kube-apiserver and etcd; run `make envtest-assets`, then " +
			"KUBEBUILDER_ASSETS=" + testenv.DefaultAssetsDir() + " go test ./test/bench/ -run='^$' -bench=. -benchtime=1x -timeout=20m -v")
	}
	return d
}

// harness is one control plane, one simulated tenant and (once started) one manager.
type harness struct {
	b       *testing.B
	ctx     context.Context
	cancel  context.CancelFunc
	env     *envtest.Environment
	cfg     *rest.Config
	k8s     client.Client // direct, uncached: what the API server says
	sim     *auth0sim.Server
	reqs    *requestLog
	ns      string
	idps    []idpConn
	stopMgr func()
	once    sync.Once
}

type harnessOptions struct {
	idps     []idpConn
	lifetime time.Duration // of every IdP access token
}

func newHarness(b *testing.B, o harnessOptions) *harness {
	b.Helper()
	assets := assetsOrSkip(b)
	schemeOnce.Do(func() {
		if err := clientgoscheme.AddToScheme(scheme); err != nil {
			panic(err)
		}
		if err := authv1alpha1.AddToScheme(scheme); err != nil {
			panic(err)
		}
	})
	logOnce.Do(func() {
		// Production encoding (as cmd/main.go), into a small tail kept for failure reports.
		logf.SetLogger(zap.New(zap.WriteTo(mgrLogs)))
	})

	h := &harness{b: b, idps: o.idps, reqs: &requestLog{}}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	b.Cleanup(h.close) // also on failure; close is idempotent

	h.env = &envtest.Environment{
		CRDDirectoryPaths:     []string{testenv.CRDDir()},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	var err error
	if h.cfg, err = h.env.Start(); err != nil {
		b.Fatalf("starting envtest: %v", err)
	}
	if h.k8s, err = client.New(h.cfg, client.Options{Scheme: scheme}); err != nil {
		b.Fatalf("building the client: %v", err)
	}

	if h.sim, err = auth0sim.New(auth0sim.Options{RateLimitPerSecond: freeTierRate, Logf: h.reqs.logf}); err != nil {
		b.Fatalf("starting the simulated Auth0: %v", err)
	}
	h.sim.AddM2MClient(m2mClientID, m2mClientSecret, controller.RequiredScopes...)
	for _, p := range o.idps {
		h.sim.AddIdP(auth0sim.IdPOptions{Name: p.idp, ClientID: p.idp + "-client", ClientSecret: "sim_cs_" + p.idp,
			Rotation: p.rotation, AccessTokenLifetime: o.lifetime, JWT: p.jwt})
		h.sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_" + p.idp, Name: p.conn, Strategy: "oauth2", IdP: p.idp})
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := h.k8s.Create(h.ctx, ns); err != nil {
		b.Fatalf("creating the namespace: %v", err)
	}
	h.ns = ns.Name
	return h
}

// close stops the manager, the simulator and the control plane, in that order.
func (h *harness) close() {
	h.once.Do(func() {
		if h.stopMgr != nil {
			h.stopMgr()
		}
		if h.sim != nil {
			h.sim.Close()
		}
		h.cancel()
		if h.env != nil {
			if err := h.env.Stop(); err != nil {
				h.b.Errorf("stopping envtest: %v", err)
			}
		}
	})
}

// startManager runs the operator in this process as cmd/main.go wires it: the same cache
// options, the client-side API-server rate limiter disabled as ctrl.GetConfigOrDie does.
func (h *harness) startManager(workers int) {
	h.b.Helper()
	cfg := rest.CopyConfig(h.cfg)
	cfg.QPS, cfg.Burst = -1, 0
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.CacheOptions(nil, ""),
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}, // several managers per process
	})
	if err != nil {
		h.b.Fatalf("creating the manager: %v", err)
	}
	if err := controller.SetupWithManager(mgr, controller.Options{Clock: clock.RealClock{}, MaxConcurrentReconciles: workers}); err != nil {
		h.b.Fatalf("setting up the controllers: %v", err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	h.stopMgr = func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				h.b.Errorf("the manager stopped with an error: %v", err)
			}
		case <-time.After(time.Minute):
			h.b.Errorf("the manager did not stop within a minute")
		}
	}
}

// createTenant creates the credentials Secret and the Auth0Tenant (free-tier rate limit) and
// waits until the tenant has authenticated.
func (h *harness) createTenant() {
	h.b.Helper()
	must(h.b, h.k8s.Create(h.ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tenantName + "-m2m", Namespace: h.ns},
		StringData: map[string]string{"client_id": m2mClientID, "client_secret": m2mClientSecret},
	}), "creating the credentials Secret")
	t := &authv1alpha1.Auth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: tenantName, Namespace: h.ns},
		Spec: authv1alpha1.Auth0TenantSpec{
			Domain:               h.sim.Domain(),
			CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: tenantName + "-m2m"},
			CABundle:             h.sim.CAPEM(),
			RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: freeTierRate, Burst: freeTierRate},
		},
	}
	must(h.b, h.k8s.Create(h.ctx, t), "creating the Auth0Tenant")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := h.k8s.Get(h.ctx, client.ObjectKeyFromObject(t), t); err == nil && readyStatus(t.Status.Conditions) == "True/"+authv1alpha1.ReasonAuthenticated {
			return
		}
		if time.Now().After(deadline) {
			h.b.Fatalf("the Auth0Tenant did not become Ready in 30s: %v\n%s", t.Status.Conditions, mgrLogs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// userID is the Auth0 user_id of the i-th simulated user.
func userID(i int) string { return fmt.Sprintf("oauth2|bench-u%04d", i) }

// userConn is the connection of the i-th user: the harness's IdPs in turn.
func (h *harness) userConn(i int) idpConn { return h.idps[i%len(h.idps)] }

// addUsers creates users 0..n-1, each with one identity that has a refresh token; the
// identity's tokens are minted (and last_login set) now.
func (h *harness) addUsers(n int) {
	for i := range n {
		p := h.userConn(i)
		uid := fmt.Sprintf("bench-u%04d", i)
		h.sim.AddUser(userID(i), auth0sim.IdentitySpec{Connection: p.conn, Provider: "oauth2", UserID: uid, IdP: p.idp, OfflineAccess: true})
	}
}

// bindingName is the name of the i-th binding; its Secret is bindingName + "-token".
func bindingName(i int) string { return fmt.Sprintf("b-%05d", i) }

// bindingOrder says which user the i-th of n bindings over u users takes.
type bindingOrder string

const (
	// interleaved: binding i takes user i mod u, as bindings of many teams applied together
	// would; consecutive bindings name different users.
	interleaved bindingOrder = "interleaved"
	// grouped: the bindings of one user are consecutive (binding i takes user i÷(n÷u)).
	grouped bindingOrder = "grouped"
)

func (o bindingOrder) user(i, n, users int) int {
	if o == grouped {
		per := (n + users - 1) / users
		return i / per
	}
	return i % users
}

// createBindings creates n bindings over users in the given order, 8 at a time.
func (h *harness) createBindings(n, users int, order bindingOrder) {
	h.b.Helper()
	g, ctx := errgroup.WithContext(h.ctx)
	g.SetLimit(8)
	for i := range n {
		u := order.user(i, n, users)
		b := &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName(i), Namespace: h.ns},
			Spec: authv1alpha1.IdPTokenBindingSpec{
				TenantRef: authv1alpha1.TenantRef{Name: tenantName},
				User:      &authv1alpha1.UserSource{ID: userID(u), Connection: h.userConn(u).conn},
				Secret:    authv1alpha1.SecretTarget{Name: bindingName(i) + "-token"},
			},
		}
		g.Go(func() error { return h.k8s.Create(ctx, b) })
	}
	must(h.b, g.Wait(), "creating the bindings")
}

// readiness is what polling the bindings saw.
type readiness struct {
	ready, total   int
	everFailed     map[string]int32 // bindings seen with status.failedAttempts > 0, with the highest count
	notReadyReason map[string]int   // at the last poll
	notReadySeen   int              // observations of a binding that had been Ready and was not
	budgetHit      bool             // waitAllReady stopped at its time budget
	stalled        bool             // waitAllReady stopped because nothing became Ready for a while
}

// pollBindings lists the bindings once (uncached) and folds what it saw into r.
func (h *harness) pollBindings(r *readiness, wasReady map[string]bool) error {
	list := &authv1alpha1.IdPTokenBindingList{}
	if err := h.k8s.List(h.ctx, list, client.InNamespace(h.ns)); err != nil {
		return err
	}
	r.ready, r.total = 0, len(list.Items)
	r.notReadyReason = map[string]int{}
	for i := range list.Items {
		b := &list.Items[i]
		if n := b.Status.FailedAttempts; n > 0 && n > r.everFailed[b.Name] {
			r.everFailed[b.Name] = n
		}
		if s := readyStatus(b.Status.Conditions); s == "True/"+authv1alpha1.ReasonSynced {
			r.ready++
			if wasReady != nil {
				wasReady[b.Name] = true
			}
		} else {
			r.notReadyReason[s]++
			if wasReady != nil && wasReady[b.Name] {
				r.notReadySeen++
			}
		}
	}
	return nil
}

// waitAllReady polls every 250 ms until n bindings are Ready=True/Synced. It gives up at the
// time budget (a benchmark's wall-time cap, not a verdict) or when no binding has become
// Ready for stallAfter (no progress: that is a failure).
func (h *harness) waitAllReady(n int, budget time.Duration, start time.Time) (time.Duration, *readiness) {
	h.b.Helper()
	const stallAfter = 45 * time.Second
	r := &readiness{everFailed: map[string]int32{}}
	lastLog, lastProgress, lastReady := time.Now(), time.Now(), -1
	for {
		if err := h.pollBindings(r, nil); err != nil {
			h.b.Logf("listing bindings: %v", err)
		} else if r.total == n && r.ready == n {
			return time.Since(start), r
		}
		if r.ready != lastReady {
			lastReady, lastProgress = r.ready, time.Now()
		}
		switch {
		case time.Since(start) > budget:
			r.budgetHit = true
			return time.Since(start), r
		case time.Since(lastProgress) > stallAfter:
			r.stalled = true
			return time.Since(start), r
		}
		if time.Since(lastLog) >= 15*time.Second {
			st := h.sim.Stats()
			h.b.Logf("  … %5.1fs: %d/%d Ready, sim: %d Management API requests, %d × 429", time.Since(start).Seconds(), r.ready, n, st.APIRequests, st.RateLimited)
			lastLog = time.Now()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// warningEvents counts Warning Events about bindings in the namespace, by reason.
func (h *harness) warningEvents() map[string]int {
	list := &eventsv1.EventList{}
	out := map[string]int{}
	if err := h.k8s.List(h.ctx, list, client.InNamespace(h.ns)); err != nil {
		h.b.Logf("listing events: %v", err)
		return out
	}
	for _, e := range list.Items {
		if e.Type != corev1.EventTypeWarning || e.Regarding.Kind != "IdPTokenBinding" {
			continue
		}
		n := 1
		if e.Series != nil && e.Series.Count > 1 {
			n = int(e.Series.Count)
		}
		out[e.Reason] += n
	}
	return out
}

// ---- memory ----

// memSample is the process's memory after a full GC. The manager runs in this process, next
// to the simulator and the test's client; the deltas between samples are what the manager
// added.
type memSample struct {
	heapInuse, heapAlloc, sys, rss uint64
}

func sampleMem() memSample {
	runtime.GC()
	debug.FreeOSMemory() // a second GC, and the scavenger returns what it can, so RSS means something
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return memSample{heapInuse: m.HeapInuse, heapAlloc: m.HeapAlloc, sys: m.Sys, rss: readRSS()}
}

// readRSS is VmRSS from /proc/self/status, or 0 where there is none.
func readRSS() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

func mib(v uint64) float64 { return float64(v) / (1 << 20) }

func deltaMiB(after, before uint64) float64 { return (float64(after) - float64(before)) / (1 << 20) }

// ---- the simulator's request log ----

// requestLog keeps the simulator's per-request lines (method, path, status; never tokens) with
// the time they were logged, to explain where requests went.
type requestLog struct {
	mu    sync.Mutex
	lines []loggedRequest
}

type loggedRequest struct {
	at     time.Time
	method string
	path   string
	status int
}

func (l *requestLog) logf(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	// "auth0sim: GET /api/v2/users/x -> 200 (1ms)"
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "auth0sim:" || f[3] != "->" {
		return
	}
	status, _ := strconv.Atoi(f[4])
	l.mu.Lock()
	l.lines = append(l.lines, loggedRequest{at: time.Now(), method: f[1], path: f[2], status: status})
	l.mu.Unlock()
}

// since returns the requests logged at or after t.
func (l *requestLog) since(t time.Time) []loggedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedRequest
	for _, r := range l.lines {
		if !r.at.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// userReadBreakdown summarises how often each user was read (sim Stats) and, for users read
// more than once, when (seconds after start, from the request log).
func userReadBreakdown(reads map[string]int, log []loggedRequest, start time.Time, show int) string {
	hist := map[int]int{}
	var repeated []string
	for u, n := range reads {
		hist[n]++
		if n > 1 {
			repeated = append(repeated, u)
		}
	}
	var counts []int
	for n := range hist {
		counts = append(counts, n)
	}
	slices.Sort(counts)
	var sb strings.Builder
	sb.WriteString("users by number of reads:")
	for _, n := range counts {
		fmt.Fprintf(&sb, " %d×%d", hist[n], n)
	}
	sort.Slice(repeated, func(i, j int) bool {
		if reads[repeated[i]] != reads[repeated[j]] {
			return reads[repeated[i]] > reads[repeated[j]]
		}
		return repeated[i] < repeated[j]
	})
	for _, u := range repeated[:min(show, len(repeated))] {
		var at []string
		esc := "/api/v2/users/" + strings.ReplaceAll(u, "|", "%7C")
		for _, r := range log {
			if r.path == esc || r.path == "/api/v2/users/"+u {
				at = append(at, fmt.Sprintf("%.1fs(%d)", r.at.Sub(start).Seconds(), r.status))
			}
		}
		fmt.Fprintf(&sb, "\n      %s read %d× at %s", u, reads[u], strings.Join(at, ", "))
	}
	return sb.String()
}

// pathCounts counts Management API requests by kind and status.
func pathCounts(log []loggedRequest) map[string]int {
	out := map[string]int{}
	for _, r := range log {
		var kind string
		switch {
		case strings.HasPrefix(r.path, "/api/v2/users/"):
			kind = "GET users"
		case strings.HasPrefix(r.path, "/api/v2/connections"):
			kind = "GET connections"
		case r.path == "/oauth/token":
			kind = "POST oauth/token"
		case strings.HasPrefix(r.path, "/idp/"):
			kind = "POST " + r.path
		default:
			kind = r.method + " " + r.path
		}
		out[fmt.Sprintf("%s %d", kind, r.status)]++
	}
	return out
}

func formatCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func sumValues(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// ---- small helpers ----

// logTail keeps the last lines the manager logged and counts its error lines.
type logTail struct {
	mu     sync.Mutex
	max    int
	lines  []string
	errors int
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		if strings.Contains(line, `"level":"error"`) {
			l.errors++
		}
		l.lines = append(l.lines, line)
	}
	if over := len(l.lines) - l.max; over > 0 {
		l.lines = append(l.lines[:0:0], l.lines[over:]...)
	}
	return len(p), nil
}

func (l *logTail) errorCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errors
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return "last manager log lines:\n" + strings.Join(l.lines[max(0, len(l.lines)-30):], "\n")
}

func readyStatus(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == authv1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "none"
}

func must(b *testing.B, err error, what string) {
	b.Helper()
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
}
