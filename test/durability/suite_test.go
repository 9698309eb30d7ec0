// Package durability tests the operator from outside, as a user's cluster sees it: the real
// manager binary runs as its own process against envtest's kube-apiserver and etcd, with the
// simulated Auth0 and IdPs of test/auth0sim in the test process, and is killed with SIGKILL
// and started again the way a node failure or an eviction would.
package durability

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/internal/procmgr"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

const (
	m2mClientID     = "m2m-app"
	m2mClientSecret = "sim_cs_m2m-secret-value"
	// operatorNS is the manager's --cluster-resource-namespace: ClusterAuth0Tenants' credentials
	// and the refresh state of their identities live there.
	operatorNS = "idptoken-system"
	// lifetime is the IdP access-token lifetime of the outage and fan-out specs: renewals are at
	// least 30 s apart, so it is the shortest lifetime the operator keeps fresh by design.
	lifetime = 45 * time.Second
)

var (
	suiteCtx context.Context
	scheme   = k8sruntime.NewScheme()
	testEnv  *envtest.Environment
	k8s      client.WithWatch // direct, uncached: assertions see the API server's truth
	sim      *auth0sim.Server
	idpHub   = &eventHub{}
	requests = &requestCounter{}

	managerBin, kubeconfig, managerLog string
	mgr                                *procmgr.Process // the running manager
)

func TestDurability(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Durability Suite")
}

var _ = BeforeSuite(func() {
	var cancel context.CancelFunc
	suiteCtx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(authv1alpha1.AddToScheme(scheme)).To(Succeed())

	dir, err := os.MkdirTemp("", "durability-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { _ = os.RemoveAll(dir) })
	managerBin, kubeconfig, managerLog = filepath.Join(dir, "manager"), filepath.Join(dir, "manager.kubeconfig"), filepath.Join(dir, "manager.log")
	start := time.Now()
	Expect(procmgr.Build(suiteCtx, testenv.RepoRoot(), managerBin)).To(Succeed())
	AddReportEntry("manager build", time.Since(start).Round(time.Millisecond).String())

	testEnv = testenv.Environment()
	cfg, err := testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	k8s, err = client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())
	Expect(procmgr.WriteKubeconfig(testEnv, "durability-manager", kubeconfig)).To(Succeed())

	sim, err = auth0sim.New(auth0sim.Options{Logf: requests.logf})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Close)
	sim.AddM2MClient(m2mClientID, m2mClientSecret, controller.RequiredScopes...)

	Expect(k8s.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}})).To(Succeed())
	startManager()
	// Registered after the control plane's cleanup, so it runs first.
	DeferCleanup(func() {
		if mgr != nil {
			mgr.Stop(30 * time.Second)
		}
	})
})

// Every spec leaves a running manager and no fault behind; a failed one shows the end of the
// manager's log (which never holds a token value).
var _ = AfterEach(func() {
	sim.ClearFaults()
	if CurrentSpecReport().Failed() {
		printLogTail(80)
	}
	if mgr == nil || mgr.Exited() != nil {
		startManager()
	}
})

// startManager starts a new manager process with the suite's kubeconfig.
func startManager() {
	GinkgoHelper()
	var err error
	mgr, err = procmgr.Start(managerBin, kubeconfig, managerLog, "--cluster-resource-namespace="+operatorNS)
	Expect(err).NotTo(HaveOccurred())
	GinkgoWriter.Printf("manager started, pid %d\n", mgr.Pid())
}

// killManager SIGKILLs the running manager and waits until it is gone.
func killManager() {
	mgr.Kill()
	GinkgoWriter.Printf("manager pid %d killed: %v\n", mgr.Pid(), mgr.Exited())
}

func printLogTail(n int) {
	f, err := os.Open(managerLog)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.Contains(l, `"msg":"Starting `) { // leave out the start-up chatter
			lines = append(lines, l)
		}
	}
	GinkgoWriter.Printf("---- last %d lines of the manager log (but start-up) ----\n%s\n", n, strings.Join(lines[max(0, len(lines)-n):], "\n"))
}

// ---- the simulated IdPs ----

// eventHub passes the simulated IdPs' refresh events to the specs and keeps every commit.
type eventHub struct {
	mu      sync.Mutex
	subs    map[chan auth0sim.IdPEvent]string // subscriber -> IdP name
	commits map[string][]time.Time
}

func (h *eventHub) observe(e auth0sim.IdPEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if e.Kind == auth0sim.IdPRefreshCommitted {
		if h.commits == nil {
			h.commits = map[string][]time.Time{}
		}
		h.commits[e.IdP] = append(h.commits[e.IdP], e.At)
	}
	for ch, name := range h.subs {
		if name == e.IdP {
			select {
			case ch <- e:
			default: // a subscriber that does not read loses events, never blocks the IdP
			}
		}
	}
}

// subscribe returns the events of one IdP from now on, and the function that stops them.
func (h *eventHub) subscribe(idp string) (<-chan auth0sim.IdPEvent, func()) {
	ch := make(chan auth0sim.IdPEvent, 64)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.subs == nil {
		h.subs = map[chan auth0sim.IdPEvent]string{}
	}
	h.subs[ch] = idp
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, ch)
	}
}

// commitsOf returns the times the IdP committed a refresh.
func (h *eventHub) commitsOf(idp string) []time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]time.Time(nil), h.commits[idp]...)
}

// addIdP registers a strict-rotation IdP and an oauth2 connection "<name>-sim" through it.
func addIdP(name string, tokenLifetime, replyDelay time.Duration) (connection string) {
	sim.AddIdP(auth0sim.IdPOptions{Name: name, ClientID: name + "-client", ClientSecret: "sim_cs_" + name,
		Rotation: auth0sim.RotationStrict, AccessTokenLifetime: tokenLifetime, ReplyDelay: replyDelay, Observe: idpHub.observe})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_" + name, Name: name + "-sim", Strategy: "oauth2", IdP: name})
	return name + "-sim"
}

// addUser creates an Auth0 user with one identity on connection, holding a refresh token.
func addUser(name, idp, connection string) (userID string) {
	sim.AddUser("oauth2|"+name, auth0sim.IdentitySpec{Connection: connection, Provider: "oauth2", UserID: name, IdP: idp, OfflineAccess: true})
	return "oauth2|" + name
}

// requestCounter counts the simulator's requests by path and status, from its request log
// (method, path and status only).
type requestCounter struct {
	mu     sync.Mutex
	counts map[string]int // "<path> <status>"
}

func (c *requestCounter) logf(format string, args ...any) {
	if !strings.HasPrefix(format, "auth0sim: %s %s -> %d") || len(args) < 3 {
		return
	}
	path, _ := args[1].(string)
	if strings.HasPrefix(path, "/api/v2/") {
		path = "/api/v2/..."
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]int{}
	}
	c.counts[fmt.Sprintf("%s %v", path, args[2])]++
}

func (c *requestCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.counts)
}

// since is "path status ×n" for every count that grew since then, of the paths starting with
// one of prefixes.
func (c *requestCounter) since(then map[string]int, prefixes ...string) string {
	now := c.snapshot()
	var out []string
	for k, v := range now {
		if !slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(k, p) }) {
			continue
		}
		if d := v - then[k]; d > 0 {
			out = append(out, fmt.Sprintf("%s ×%d", k, d))
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// ---- Kubernetes objects ----

func newNamespace(prefix string) string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}
	Expect(k8s.Create(suiteCtx, ns)).To(Succeed())
	return ns.Name
}

func credentials(ns, name string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		StringData: map[string]string{"client_id": m2mClientID, "client_secret": m2mClientSecret},
	}
}

func tenantSpec(credentials string) authv1alpha1.Auth0TenantSpec {
	return authv1alpha1.Auth0TenantSpec{
		Domain:               sim.Domain(),
		CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: credentials},
		CABundle:             sim.CAPEM(),
		RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
	}
}

// newTenant creates an Auth0Tenant and its credentials in ns and waits until it is Ready.
func newTenant(ns, name string) {
	GinkgoHelper()
	Expect(k8s.Create(suiteCtx, credentials(ns, name+"-m2m"))).To(Succeed())
	t := &authv1alpha1.Auth0Tenant{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: tenantSpec(name + "-m2m")}
	Expect(k8s.Create(suiteCtx, t)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		g.Expect(readyReason(t.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonAuthenticated))
	}).WithTimeout(time.Minute).Should(Succeed())
}

// newClusterTenant creates a ClusterAuth0Tenant (credentials in the operator's namespace) that
// lets namespaces bind one user on one connection, and waits until it is Ready.
func newClusterTenant(name, userID, connection string, namespaces ...string) {
	GinkgoHelper()
	Expect(k8s.Create(suiteCtx, credentials(operatorNS, name+"-m2m"))).To(Succeed())
	t := &authv1alpha1.ClusterAuth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: authv1alpha1.ClusterAuth0TenantSpec{
			Auth0TenantSpec: tenantSpec(name + "-m2m"),
			Conditions: []authv1alpha1.ClusterTenantCondition{
				{Namespaces: namespaces, Users: []string{userID}, Connections: []string{connection}},
			},
		},
	}
	Expect(k8s.Create(suiteCtx, t)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		g.Expect(readyReason(t.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonAuthenticated))
	}).WithTimeout(time.Minute).Should(Succeed())
}

// bindingRef is a binding by namespace and name; its target Secret is "<name>-token".
type bindingRef struct{ ns, name string }

func (b bindingRef) String() string { return b.ns + "/" + b.name }

func (b bindingRef) key() client.ObjectKey { return client.ObjectKey{Namespace: b.ns, Name: b.name} }

func (b bindingRef) secretKey() client.ObjectKey {
	return client.ObjectKey{Namespace: b.ns, Name: b.name + "-token"}
}

// newBinding creates a binding of the user's identity on connection through the tenant; it is
// deleted when the spec ends, so that it does not keep refreshing during the next ones (envtest
// has no namespace controller to do it).
func newBinding(ref bindingRef, kind authv1alpha1.TenantKind, tenant, userID, connection string) {
	GinkgoHelper()
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8s.Delete(suiteCtx, &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ref.name, Namespace: ref.ns}}))).To(Succeed())
	})
	Expect(k8s.Create(suiteCtx, &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ref.name, Namespace: ref.ns},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Kind: kind, Name: tenant},
			User:      &authv1alpha1.UserSource{ID: userID, Connection: connection},
			Secret:    authv1alpha1.SecretTarget{Name: ref.name + "-token"},
		},
	})).To(Succeed())
}

func getBinding(ref bindingRef) *authv1alpha1.IdPTokenBinding {
	GinkgoHelper()
	b := &authv1alpha1.IdPTokenBinding{}
	Expect(k8s.Get(suiteCtx, ref.key(), b)).To(Succeed())
	return b
}

func readyReason(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == authv1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return "none"
}

// forceRefresh sets the binding's force-refresh annotation to value.
func forceRefresh(ref bindingRef, value string) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		b := &authv1alpha1.IdPTokenBinding{}
		if err := k8s.Get(suiteCtx, ref.key(), b); err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, value)
		return k8s.Update(suiteCtx, b)
	})).To(Succeed())
}

// expectServed checks that each binding is Ready=True/Synced and that its Secret holds an
// access token the IdP says is valid now.
func expectServed(g Gomega, refs ...bindingRef) {
	for _, ref := range refs {
		b := &authv1alpha1.IdPTokenBinding{}
		g.Expect(k8s.Get(suiteCtx, ref.key(), b)).To(Succeed())
		g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/"+authv1alpha1.ReasonSynced), "binding %s", ref)
		g.Expect(secretTokenValid(ref)).To(Succeed())
	}
}

// secretTokenValid says whether the binding's Secret holds an access token the IdP says is
// valid now; the error never holds the token.
func secretTokenValid(ref bindingRef) error {
	s := &corev1.Secret{}
	if err := k8s.Get(suiteCtx, ref.secretKey(), s); err != nil {
		return err
	}
	exp, ok := sim.AccessTokenValid(string(s.Data[authv1alpha1.SecretKeyAccessToken]))
	switch {
	case ok:
		return nil
	case exp.IsZero():
		return fmt.Errorf("secret %s holds no access token the IdP issued", ref.secretKey())
	default:
		return fmt.Errorf("secret %s holds an access token that expired %s ago", ref.secretKey(), time.Since(exp).Round(time.Second))
	}
}

// waitServed waits until every binding is served.
func waitServed(refs ...bindingRef) {
	GinkgoHelper()
	Eventually(func(g Gomega) { expectServed(g, refs...) }).WithTimeout(90 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
}

// stateOf returns the refresh-state Secret of the user's identity in the home namespace.
func stateOf(g Gomega, homeNS, userID string) *corev1.Secret {
	list := &corev1.SecretList{}
	g.Expect(k8s.List(suiteCtx, list, client.InNamespace(homeNS), client.MatchingLabels{authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState})).To(Succeed())
	var found []*corev1.Secret
	for i := range list.Items {
		if list.Items[i].Annotations[authv1alpha1.AnnotationUserID] == userID {
			found = append(found, &list.Items[i])
		}
	}
	g.Expect(found).To(HaveLen(1), "one refresh-state Secret for the identity of %s", userID)
	return found[0]
}

// stateWatch records when the refresh token in one state Secret changes, as a watch of the
// API server shows it.
type stateWatch struct {
	mu      sync.Mutex
	last    string // the refresh token last seen; compared, never printed
	changes []time.Time
}

func watchState(ctx context.Context, ns, name string) *stateWatch {
	w := &stateWatch{}
	go func() {
		defer GinkgoRecover()
		for ctx.Err() == nil {
			wi, err := k8s.Watch(ctx, &corev1.SecretList{}, client.InNamespace(ns),
				client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", name)})
			if err != nil {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			for ev := range wi.ResultChan() {
				if s, ok := ev.Object.(*corev1.Secret); ok && (ev.Type == watch.Added || ev.Type == watch.Modified) {
					w.see(string(s.Data["refresh_token"]))
				}
			}
			wi.Stop()
		}
	}()
	return w
}

func (w *stateWatch) see(rt string) {
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.last != "" && rt != w.last {
		w.changes = append(w.changes, now)
	}
	w.last = rt
}

// changeAfter returns the first change seen after t.
func (w *stateWatch) changeAfter(t time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range w.changes {
		if c.After(t) {
			return c, true
		}
	}
	return time.Time{}, false
}
