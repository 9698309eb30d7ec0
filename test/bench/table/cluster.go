package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/internal/procmgr"
)

const (
	m2mClientID     = "bench-m2m"
	m2mClientSecret = "sim_cs_bench-m2m-secret"
	tenantName      = "auth0"
	idpName         = "google"
	connName        = "google-sim"
)

var scheme = func() *k8sruntime.Scheme {
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		panic(err)
	}
	if err := authv1alpha1.AddToScheme(s); err != nil {
		panic(err)
	}
	return s
}()

// cluster is one run's world: envtest's kube-apiserver and etcd (with an audit log of the
// manager's requests), the simulated Auth0 tenant in this process, and bin/manager as a
// child process.
type cluster struct {
	dir       string
	env       *envtest.Environment
	k8s       client.WithWatch // the harness's own, uncached
	cfg       *rest.Config
	apiserver int // pid
	audit     *auditLog
	apiSpan   *requestSpan
	sim       *auth0sim.Server
	ns        string
	mgr       *procmgr.Process
	// managerEnv is added to the manager's environment only: GOMEMLIMIT or GOGC given to the
	// whole bench would also bind kube-apiserver and etcd (Go programs) and skew every figure.
	managerEnv []string
	// restartTarget: the Deployment every binding names as its rollout restart target, with a
	// templated Secret (a restart row); "" for plain bindings.
	restartTarget string
}

type clusterOptions struct {
	assets, repo, manager, dir string
	rate                       int // the simulator's Management API rate and burst
	reset                      auth0sim.ResetMode
	lifetime                   time.Duration // IdP access tokens
	managerArgs                []string
	pprofAddr                  string   // the manager's --pprof-bind-address (in managerArgs)
	managerEnv                 []string // KEY=VALUE for the manager only (BENCH_MANAGER_ENV)
	// restarts: a restart row (clusterOptions.forRestarts): the detailed audit policy, the
	// operator's namespace created before the manager starts, templated bindings.
	restarts bool
}

func startCluster(ctx context.Context, o clusterOptions) (*cluster, error) {
	c := &cluster{dir: o.dir, managerEnv: o.managerEnv}
	policy := filepath.Join(o.dir, "audit-policy.yaml")
	text := auditPolicy
	if o.restarts {
		text = detailedAuditPolicy
		c.restartTarget = restartTargetName
	}
	if err := os.WriteFile(policy, []byte(text), 0o600); err != nil {
		return nil, err
	}
	c.audit = &auditLog{path: filepath.Join(o.dir, "audit.log")}
	c.env = &envtest.Environment{
		BinaryAssetsDirectory:    o.assets,
		CRDDirectoryPaths:        []string{filepath.Join(o.repo, "config", "crd", "bases")},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 2 * time.Minute,
		ControlPlaneStopTimeout:  30 * time.Second,
	}
	api := c.env.ControlPlane.GetAPIServer()
	api.Configure().Append("audit-policy-file", policy).Append("audit-log-path", c.audit.path)
	if f, err := os.Create(filepath.Join(o.dir, "kube-apiserver.log")); err == nil {
		api.Out, api.Err = f, f
	}
	var err error
	if c.cfg, err = c.env.Start(); err != nil {
		_ = c.env.Stop()
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	c.cfg.QPS, c.cfg.Burst = -1, 0 // the harness must not be the bottleneck
	if c.apiserver, err = childNamed("kube-apiserver"); err != nil {
		c.stop()
		return nil, err
	}
	if c.k8s, err = client.NewWithWatch(c.cfg, client.Options{Scheme: scheme}); err != nil {
		c.stop()
		return nil, err
	}

	c.apiSpan = &requestSpan{}
	if c.sim, err = auth0sim.New(auth0sim.Options{RateLimitPerSecond: o.rate, RateLimitBurst: o.rate, RateLimitReset: o.reset, Logf: c.apiSpan.logf}); err != nil {
		c.stop()
		return nil, err
	}
	c.sim.AddM2MClient(m2mClientID, m2mClientSecret, controller.RequiredScopes...)
	c.sim.AddIdP(auth0sim.IdPOptions{Name: idpName, ClientID: idpName + "-client", ClientSecret: "sim_cs_" + idpName,
		Rotation: auth0sim.RotationNone, AccessTokenLifetime: o.lifetime})
	c.sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_" + idpName, Name: connName, Strategy: "oauth2", IdP: idpName})

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "bench"}}
	if err := c.k8s.Create(ctx, ns); err != nil {
		c.stop()
		return nil, err
	}
	c.ns = ns.Name
	if o.restarts {
		if err := c.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
			c.stop()
			return nil, err
		}
	}

	if err := c.startManager(o.manager, o.managerArgs); err != nil {
		c.stop()
		return nil, err
	}
	return c, nil
}

// startManager writes a kubeconfig for the manager's own user and starts bin/manager with it.
func (c *cluster) startManager(binary string, extra []string) error {
	kubeconfig := filepath.Join(c.dir, "manager.kubeconfig")
	if err := procmgr.WriteKubeconfig(c.env, managerUser, kubeconfig); err != nil {
		return err
	}
	var err error
	c.mgr, err = procmgr.StartEnv(c.managerEnv, binary, kubeconfig, filepath.Join(c.dir, "manager.log"), extra...)
	return err
}

// restartManager starts the manager again with the kubeconfig of the first start.
func (c *cluster) restartManager(binary string, extra []string) error {
	var err error
	c.mgr, err = procmgr.StartEnv(c.managerEnv, binary, filepath.Join(c.dir, "manager.kubeconfig"), filepath.Join(c.dir, "manager-restarted.log"), extra...)
	return err
}

// managerExited reports whether the manager has stopped (it never should during a run).
func (c *cluster) managerExited() error { return c.mgr.Exited() }

func (c *cluster) stopManager() {
	if c.mgr != nil {
		c.mgr.Stop(30 * time.Second)
	}
}

func (c *cluster) stop() {
	c.stopManager()
	if c.sim != nil {
		c.sim.Close()
	}
	if c.env != nil {
		_ = c.env.Stop()
	}
}

// createTenant creates the credentials Secret and the Auth0Tenant and waits until it is
// Ready. rateLimit 0 leaves spec.rateLimit to its defaults (Auth0's free tier, 2/s).
func (c *cluster) createTenant(ctx context.Context, rateLimit int) error {
	if err := c.k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: tenantName + "-m2m", Namespace: c.ns},
		StringData: map[string]string{"client_id": m2mClientID, "client_secret": m2mClientSecret},
	}); err != nil {
		return err
	}
	t := &authv1alpha1.Auth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: tenantName, Namespace: c.ns},
		Spec: authv1alpha1.Auth0TenantSpec{
			Domain:               c.sim.Domain(),
			CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: tenantName + "-m2m"},
			CABundle:             c.sim.CAPEM(),
		},
	}
	if rateLimit > 0 {
		t.Spec.RateLimit = authv1alpha1.RateLimit{RequestsPerSecond: int32(rateLimit), Burst: int32(rateLimit)}
	}
	if err := c.k8s.Create(ctx, t); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := c.managerExited(); err != nil {
			return err
		}
		if err := c.k8s.Get(ctx, client.ObjectKeyFromObject(t), t); err == nil && readyReason(t.Status.Conditions) == "True/"+authv1alpha1.ReasonAuthenticated {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("the Auth0Tenant was not Ready after a minute: %v", t.Status.Conditions)
}

// userID is the Auth0 user_id of the i-th simulated user.
func userID(i int) string { return fmt.Sprintf("oauth2|bench-u%05d", i) }

func bindingName(i int) string { return fmt.Sprintf("b-%05d", i) }

// addUsers creates users from..to-1, each with one identity holding a refresh token.
func (c *cluster) addUsers(from, to int) {
	for i := from; i < to; i++ {
		c.sim.AddUser(userID(i), auth0sim.IdentitySpec{Connection: connName, Provider: "oauth2",
			UserID: fmt.Sprintf("bench-u%05d", i), IdP: idpName, OfflineAccess: true})
	}
}

// createBindings creates bindings from..to-1, binding i taking user first + i mod users (the
// bindings of many teams applied together: consecutive bindings name different users), 16 at a
// time, and records when each create returned.
//
// perSecond > 0 paces the creates at that rate, and gives each user consecutive bindings (a user's
// bindings arrive together, so the Auth0 budget stays free); 0 creates them as fast as the API
// server takes them, the users in turn.
func (c *cluster) createBindings(ctx context.Context, from, to, first, users, perSecond int, created *sync.Map) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	pace := rate.NewLimiter(rate.Inf, 1)
	user := func(i int) int { return i % users }
	if perSecond > 0 {
		pace = rate.NewLimiter(rate.Limit(perSecond), 1)
		perUser := max(1, (to-from)/users)
		user = func(i int) int { return min((i-from)/perUser, users-1) }
	}
	for i := from; i < to; i++ {
		if err := pace.Wait(ctx); err != nil {
			break
		}
		b := &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName(i), Namespace: c.ns},
			Spec: authv1alpha1.IdPTokenBindingSpec{
				TenantRef: authv1alpha1.TenantRef{Name: tenantName},
				User:      &authv1alpha1.UserSource{ID: userID(first + user(i)), Connection: connName},
				Secret:    authv1alpha1.SecretTarget{Name: bindingName(i) + "-token"},
			},
		}
		if c.restartTarget != "" {
			templateAndRestart(&b.Spec, c.restartTarget)
		}
		g.Go(func() error {
			if err := c.k8s.Create(ctx, b); err != nil {
				return fmt.Errorf("creating binding %s: %w", b.Name, err)
			}
			created.Store(b.Name, time.Now())
			return nil
		})
	}
	return g.Wait()
}

// readyWatch follows the bindings of the namespace and records when each is first seen
// Ready=True, and any binding seen with failed attempts.
type readyWatch struct {
	mu      sync.Mutex
	ready   map[string]time.Time
	failed  map[string]bool
	lastErr error
}

func (c *cluster) watchReady(ctx context.Context) *readyWatch {
	w := &readyWatch{ready: map[string]time.Time{}, failed: map[string]bool{}}
	go func() {
		rv := ""
		for ctx.Err() == nil {
			if rv == "" {
				list := &authv1alpha1.IdPTokenBindingList{}
				if err := c.k8s.List(ctx, list, client.InNamespace(c.ns)); err != nil {
					w.setErr(err)
					time.Sleep(time.Second)
					continue
				}
				for i := range list.Items {
					w.see(&list.Items[i])
				}
				rv = list.ResourceVersion
			}
			wi, err := c.k8s.Watch(ctx, &authv1alpha1.IdPTokenBindingList{}, client.InNamespace(c.ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
			if err != nil {
				w.setErr(err)
				rv = ""
				time.Sleep(time.Second)
				continue
			}
			for ev := range wi.ResultChan() {
				switch ev.Type {
				case watch.Error:
					rv = "" // e.g. resourceVersion too old: list again
				case watch.Added, watch.Modified, watch.Bookmark:
					if b, ok := ev.Object.(*authv1alpha1.IdPTokenBinding); ok {
						rv = b.ResourceVersion
						if ev.Type != watch.Bookmark {
							w.see(b)
						}
					}
				}
			}
			wi.Stop()
		}
	}()
	return w
}

func (w *readyWatch) see(b *authv1alpha1.IdPTokenBinding) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if b.Status.FailedAttempts > 0 {
		w.failed[b.Name] = true
	}
	if _, seen := w.ready[b.Name]; !seen && readyReason(b.Status.Conditions) == "True/"+authv1alpha1.ReasonSynced {
		w.ready[b.Name] = now
	}
}

func (w *readyWatch) setErr(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastErr = err
}

func (w *readyWatch) counts() (ready, failed int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.ready), len(w.failed)
}

// checkSecrets reads every target Secret of bindings from..to-1 and asks the simulator
// whether it holds a valid access token. It returns how many do not.
func (c *cluster) checkSecrets(ctx context.Context, from, to int) (int, error) {
	list := &corev1.SecretList{}
	if err := c.k8s.List(ctx, list, client.InNamespace(c.ns), client.MatchingLabels{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue}); err != nil {
		return 0, err
	}
	byName := map[string]*corev1.Secret{}
	for i := range list.Items {
		byName[list.Items[i].Name] = &list.Items[i]
	}
	bad := 0
	for i := from; i < to; i++ {
		s := byName[bindingName(i)+"-token"]
		if s == nil {
			bad++
			continue
		}
		token := string(s.Data[authv1alpha1.SecretKeyAccessToken])
		if _, valid := c.sim.AccessTokenValid(token); !valid || (c.restartTarget != "" && !bearerRendered(s, token)) {
			bad++
		}
	}
	return bad, nil
}

func readyReason(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == authv1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "none"
}

// requestSpan records when the first and the last Management API request of a period reached
// the simulator, from its request log (method, path and status only).
type requestSpan struct {
	mu          sync.Mutex
	first, last time.Time
}

func (r *requestSpan) logf(format string, args ...any) {
	if !strings.HasPrefix(format, "auth0sim: %s %s -> ") || len(args) < 2 {
		return
	}
	if p, ok := args[1].(string); !ok || !strings.HasPrefix(p, "/api/v2/") {
		return
	}
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.first.IsZero() {
		r.first = now
	}
	r.last = now
}

// take returns the span since the last take and starts a new one.
func (r *requestSpan) take() (first, last time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	first, last = r.first, r.last
	r.first, r.last = time.Time{}, time.Time{}
	return first, last
}
