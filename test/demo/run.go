package demo

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// Config configures Run.
type Config struct {
	// RepoDir is the repository root (config/crd/bases, config/samples/demo).
	RepoDir string
	// StateDir receives the kubeconfig, logs and the simulator's CA and credentials. Default
	// RepoDir/.demo.
	StateDir string
	// Assets holds kube-apiserver and etcd (and kubectl, for the printed commands).
	Assets string
	// Manager is the manager binary.
	Manager string
	// ManagerArgs are appended to the manager's flags.
	ManagerArgs []string
	// For > 0 runs headless for that long and checks the run; 0 shows the live view until ctx ends.
	For time.Duration
	// TokenLifetime of the simulated IdPs' access tokens.
	TokenLifetime time.Duration
	// Out receives progress, the live view and the summary. Default os.Stdout.
	Out io.Writer
	// TTY redraws the live view in place.
	TTY bool
}

// Summary is the outcome of a run.
type Summary struct {
	Bindings, Refreshes, Expired int
	// Restarts counts the rollout restarts of the samples' Deployments (new values of their pod
	// template's restartedAt annotation).
	Restarts int
	// Refused counts the bindings refused as the samples expect (annotation ExpectAnnotation).
	Refused int
	// Failures say why a headless run failed; empty means it passed.
	Failures []string
	// Interrupted: ctx ended before the headless run's time was up.
	Interrupted bool
}

// LastLine is the summary line a headless run ends with: "demo: <N> bindings, <R> refreshes,
// <E> expired, <K> restarts".
func (s *Summary) LastLine() string {
	return fmt.Sprintf("demo: %d bindings, %d refreshes, %d expired, %d restarts", s.Bindings, s.Refreshes, s.Expired, s.Restarts)
}

// OK tells whether the run passed.
func (s *Summary) OK() bool { return len(s.Failures) == 0 && !s.Interrupted }

// Run starts the control plane, the simulated tenant and the manager, applies
// config/samples/demo, then shows the live view or runs the headless check, and stops
// everything it started before it returns, whatever happens.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	var report strings.Builder
	sum, err := run(ctx, cfg, &report)
	// The report comes after "Stopped everything", so that a headless run's last line is
	// the summary line.
	_, _ = io.WriteString(cfg.Out, report.String())
	return sum, err
}

func run(ctx context.Context, cfg Config, report io.Writer) (sum *Summary, err error) {
	if cfg.Out == nil {
		cfg.Out = os.Stdout
	}
	if cfg.RepoDir == "" {
		cfg.RepoDir = "."
	}
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(cfg.RepoDir, ".demo")
	}
	if cfg.TokenLifetime <= 0 {
		cfg.TokenLifetime = 2 * time.Minute
		if cfg.For > 0 {
			cfg.TokenLifetime = 45 * time.Second
		}
	}
	for _, p := range []*string{&cfg.RepoDir, &cfg.StateDir, &cfg.Assets, &cfg.Manager} {
		if *p != "" {
			if *p, err = filepath.Abs(*p); err != nil {
				return nil, err
			}
		}
	}
	// envtest and client-go log through these; the demo has its own output.
	ctrllog.SetLogger(logr.Discard())
	klog.SetLogger(logr.Discard())

	start := time.Now()
	say := func(format string, args ...any) {
		_, _ = fmt.Fprintf(cfg.Out, "[%5.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, err
	}
	pids := pidFile{path: filepath.Join(cfg.StateDir, "pids")}
	if err := pids.reclaim(say); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Manager); err != nil {
		return nil, fmt.Errorf("manager binary: %w (run `go build -o bin/manager ./cmd`)", err)
	}

	// Everything started is stopped in reverse order, also on panic.
	var stops []func()
	defer func() {
		if len(stops) > 0 {
			say("Stopping ...")
		}
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
		pids.remove()
		if len(stops) > 0 {
			say("Stopped everything.")
		}
	}()
	me := self()

	say("Starting kube-apiserver and etcd from %s ...", relPath(cfg.Assets))
	cp, err := startControlPlane(cfg.Assets, filepath.Join(cfg.RepoDir, "config", "crd", "bases"), cfg.StateDir)
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() {
		if err := cp.stop(); err != nil {
			say("Stopping the control plane: %v", err)
		}
	})
	_ = pids.write(me, children())
	kubeconfig := filepath.Join(cfg.StateDir, "kubeconfig")
	if err := writePrivate(kubeconfig, cp.kubeconfig); err != nil {
		return nil, err
	}
	say("Control plane up at %s; CRDs installed; kubeconfig %s", cp.cfg.Host, relPath(kubeconfig))
	if ctx.Err() != nil {
		return &Summary{Interrupted: true}, nil
	}

	simLog, err := os.Create(filepath.Join(cfg.StateDir, "auth0-sim.log"))
	if err != nil {
		return nil, err
	}
	tenant, err := StartTenant(TenantOptions{
		TokenLifetime: cfg.TokenLifetime, RateLimitPerSecond: 10,
		Logf: func(format string, args ...any) {
			_, _ = fmt.Fprintf(simLog, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		},
	})
	if err != nil {
		_ = simLog.Close()
		return nil, err
	}
	stops = append(stops, func() { tenant.Close(); _ = simLog.Close() })
	files, err := tenant.WriteFiles(filepath.Join(cfg.StateDir, "auth0-sim"))
	if err != nil {
		return nil, err
	}
	say("Simulated Auth0 tenant at %s (IdP access tokens live %s); CA %s", tenant.Sim.URL(), cfg.TokenLifetime, relPath(files.CA))
	if cfg.TokenLifetime <= expiry.MinRenewalSpacing+5*time.Second {
		say("WARNING: the operator renews a token at most every %s, so tokens living %s will expire in their Secrets",
			expiry.MinRenewalSpacing, cfg.TokenLifetime)
	}

	managerLog := filepath.Join(cfg.StateDir, "manager.log")
	mgr, err := startManager(cfg.Manager, kubeconfig, managerLog, cfg.ManagerArgs)
	if err != nil {
		return nil, err
	}
	stops = append(stops, func() { mgr.stop(15 * time.Second) })
	_ = pids.write(me, children())
	say("Manager %s started (pid %d); log %s", relPath(cfg.Manager), mgr.cmd.Process.Pid, relPath(managerLog))

	objs, err := renderSamples(filepath.Join(cfg.RepoDir, "config", "samples", "demo"), tenant.Vars())
	if err != nil {
		return nil, err
	}
	c, err := newClient(cp.cfg)
	if err != nil {
		return nil, err
	}
	smp, rl, err := applyDemo(ctx, cfg, c, tenant, objs, say)
	if err != nil {
		if ctx.Err() != nil {
			return &Summary{Interrupted: true}, nil
		}
		return nil, err
	}

	w := &watcher{
		c: c, sim: tenant.Sim, samples: smp, mgr: mgr, out: cfg.Out, tty: cfg.TTY,
		lifetime: cfg.TokenLifetime, kubectlHelp: kubectlHelp(cfg.Assets, kubeconfig, smp),
		managerLog: managerLog, relogin: rl,
	}
	if cfg.For > 0 {
		_, _ = fmt.Fprint(cfg.Out, w.kubectlHelp)
		say("Running headless for %s ...", cfg.For)
	}
	sum = w.run(ctx, cfg.For)

	// Stop the manager before the leak scan, so that its log is complete.
	mgr.stop(15 * time.Second)
	leaks := w.scanLeaks(context.Background())
	if leaks > 0 {
		sum.Failures = append(sum.Failures, fmt.Sprintf("%d token value(s) found in the manager log or Events (see %s)", leaks, relPath(managerLog)))
	}
	w.printSummary(report, sum, time.Since(start))
	return sum, nil
}

// applyDemo applies the samples and prepares the re-login step (relogin.go), and says so.
func applyDemo(ctx context.Context, cfg Config, c client.Client, tenant *Tenant, objs []*unstructured.Unstructured,
	say func(string, ...any)) (samples, *relogin, error) {
	if err := applyObjects(ctx, c, objs); err != nil {
		return samples{}, nil, err
	}
	smp := samplesOf(objs)
	say("Applied config/samples/demo: %d IdPTokenBindings in namespaces %s; tenants %s", len(smp.bindings), bindingNamespaces(smp), tenantNames(smp))
	// The live view leaves the expired binding on screen a little longer.
	hold := 3 * time.Second
	if cfg.For == 0 {
		hold = 10 * time.Second
	}
	rl, err := startRelogin(ctx, c, tenant.Sim, &smp, hold)
	if rl != nil {
		say("Re-login step: enabled spec.events on Auth0Tenant %s (its M2M application has %s); created IdPTokenBinding %s "+
			"for user %s, whose IdP gives no refresh token and whose first token lives %s: it will turn TokenExpired, "+
			"then the user logs in again", rl.tenant, auth0sim.ScopeReadEvents, rl.key, UserGrace, fmtDur(BriefTokenLifetime))
	}
	return smp, rl, err
}

// kubectlHelp is the text telling users what to try in another terminal.
func kubectlHelp(assets, kubeconfig string, smp samples) string {
	k := relPath(filepath.Join(assets, "kubectl")) + " --kubeconfig " + relPath(kubeconfig)
	var b strings.Builder
	b.WriteString("In another terminal:\n")
	_, _ = fmt.Fprintf(&b, "  %s get clusterauth0tenants,auth0tenants,idptokenbindings -A\n", k)
	var ready, refused *sampleBinding
	for i := range smp.bindings {
		sb := &smp.bindings[i]
		if sb.expect != "" && refused == nil {
			refused = sb
		}
		if sb.expect == "" && (ready == nil || sb.key.Name == "alice-google") {
			ready = sb
		}
	}
	if ready != nil {
		_, _ = fmt.Fprintf(&b, "  %s describe idptb %s -n %s\n", k, ready.key.Name, ready.key.Namespace)
		_, _ = fmt.Fprintf(&b, "  %s get secret %s -n %s -o yaml\n", k, ready.secretName, ready.key.Namespace)
	}
	if refused != nil {
		_, _ = fmt.Fprintf(&b, "  %s describe idptb %s -n %s   # refused: %s\n", k, refused.key.Name, refused.key.Namespace, refused.expect)
	}
	for _, sb := range smp.bindings {
		if len(sb.templateKeys) > 0 {
			_, _ = fmt.Fprintf(&b, "  %s get secret %s -n %s -o go-template='{{range $k, $v := .data}}{{println $k}}{{end}}'   # the template's keys\n",
				k, sb.secretName, sb.key.Namespace)
			break
		}
	}
	for _, d := range smp.deployments {
		_, _ = fmt.Fprintf(&b, "  %s get deployment %s -n %s -o jsonpath='{.spec.template.metadata.annotations}'   # restarted when its token changes\n",
			k, d.Name, d.Namespace)
	}
	for _, sb := range smp.bindings {
		if sb.relogin {
			_, _ = fmt.Fprintf(&b, "  %s describe idptb %s -n %s   # TokenExpired until its user logs in again (Auth0 events)\n", k, sb.key.Name, sb.key.Namespace)
		}
	}
	_, _ = fmt.Fprintf(&b, "  %s get secrets -n %s -l auth.idptoken.dev/role=refresh-state   # the shared tenant's refresh state\n", k, OperatorNamespace)
	_, _ = fmt.Fprintf(&b, "  %s get events -A --sort-by=.lastTimestamp\n", k)
	return b.String()
}

func bindingNamespaces(smp samples) string {
	var nss []string
	for _, b := range smp.bindings {
		if !slices.Contains(nss, b.key.Namespace) {
			nss = append(nss, b.key.Namespace)
		}
	}
	return strings.Join(nss, ", ")
}

func tenantNames(smp samples) string {
	var ts []string
	for _, t := range smp.tenants {
		ts = append(ts, t.String())
	}
	return strings.Join(ts, ", ")
}

// relPath shortens p relative to the working directory when it lies below it.
func relPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if r, err := filepath.Rel(wd, p); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return p
}
