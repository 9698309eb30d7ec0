// Package sharding runs two managers with disjoint --watch-label-selector values against one
// envtest API server and a simulated Auth0, and reads the binding metrics from a manager's cache.
package sharding

import (
	"context"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

const (
	m2mClientID     = "m2m-app"
	m2mClientSecret = "sim_cs_m2m-secret-value"
	shardLabel      = "sharding.idptoken.dev/shard"
)

var (
	restCfg  *rest.Config
	k8s      client.Client // direct, uncached
	scheme   = k8sruntime.NewScheme()
	sim      *auth0sim.Server
	suiteCtx context.Context
)

func TestSharding(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Sharding Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var cancel context.CancelFunc
	suiteCtx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)

	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(authv1alpha1.AddToScheme(scheme)).To(Succeed())
	testEnv := testenv.Environment()
	var err error
	restCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	sim, err = auth0sim.New(auth0sim.Options{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Close)
	sim.AddM2MClient(m2mClientID, m2mClientSecret, controller.RequiredScopes...)
	sim.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "google-client", ClientSecret: "sim_cs_google", AccessTokenLifetime: time.Hour})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_google", Name: "google-sim", Strategy: "oauth2", IdP: "google"})
})

// shardManager is a running manager with its selector and the bindings whose status it wrote.
type shardManager struct {
	mgr ctrl.Manager

	mu      sync.Mutex
	written map[string]bool // namespace/name of bindings whose status this manager patched
}

func (m *shardManager) wroteStatusOf() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.written))
	for k := range m.written {
		out = append(out, k)
	}
	return out
}

// startShard runs the operator as cmd/main.go wires it for --watch-label-selector=selector,
// with a client that records every binding status write.
func startShard(selector string) *shardManager {
	GinkgoHelper()
	sel, err := controller.ParseWatchLabelSelector(selector)
	Expect(err).NotTo(HaveOccurred())
	m := &shardManager{written: map[string]bool{}}
	record := func(obj client.Object) {
		if _, ok := obj.(*authv1alpha1.IdPTokenBinding); ok {
			m.mu.Lock()
			m.written[obj.GetNamespace()+"/"+obj.GetName()] = true
			m.mu.Unlock()
		}
	}
	m.mgr, err = ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		LeaderElectionID:       controller.ShardLeaderElectionID(sel),
		Cache:                  controller.WithBindingSelector(controller.CacheOptions(nil, ""), sel),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)}, // two managers in one process
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, interceptor.Funcs{
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch, o ...client.SubResourcePatchOption) error {
					record(obj)
					return c.SubResource(sub).Patch(ctx, obj, p, o...)
				},
				SubResourceUpdate: func(ctx context.Context, c client.Client, sub string, obj client.Object, o ...client.SubResourceUpdateOption) error {
					record(obj)
					return c.SubResource(sub).Update(ctx, obj, o...)
				},
			}), nil
		},
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.SetupWithManager(m.mgr, controller.Options{Clock: clock.RealClock{}, MaxConcurrentReconciles: 2})).To(Succeed())
	ctx, cancel := context.WithCancel(suiteCtx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(m.mgr.Start(ctx)).To(Succeed())
	}()
	DeferCleanup(func() { cancel(); <-done })
	return m
}

func newNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "shard-"}}
	Expect(k8s.Create(suiteCtx, ns)).To(Succeed())
	return ns.Name
}

func newTenant(ns, name string) {
	GinkgoHelper()
	Expect(k8s.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-m2m", Namespace: ns},
		StringData: map[string]string{"client_id": m2mClientID, "client_secret": m2mClientSecret},
	})).To(Succeed())
	Expect(k8s.Create(suiteCtx, &authv1alpha1.Auth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.Auth0TenantSpec{
			Domain:               sim.Domain(),
			CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: name + "-m2m"},
			CABundle:             sim.CAPEM(),
			RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
		},
	})).To(Succeed())
}

// newBinding creates a binding of a new simulated user, labelled for shard (none when empty).
func newBinding(ns, name, shard string) {
	GinkgoHelper()
	userID := "oauth2|" + ns + "-" + name
	sim.AddUser(userID, auth0sim.IdentitySpec{Connection: "google-sim", Provider: "oauth2", UserID: ns + "-" + name, IdP: "google", OfflineAccess: true})
	b := &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Name: "prod"},
			User:      &authv1alpha1.UserSource{ID: userID},
			Secret:    authv1alpha1.SecretTarget{Name: name + "-token"},
		},
	}
	if shard != "" {
		b.Labels = map[string]string{shardLabel: shard}
	}
	Expect(k8s.Create(suiteCtx, b)).To(Succeed())
}

// waitReady waits for the binding's Ready=True.
func waitReady(ns, name string) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		b := &authv1alpha1.IdPTokenBinding{}
		g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b)).To(Succeed())
		c := meta.FindStatusCondition(b.Status.Conditions, authv1alpha1.ConditionReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
	}).WithTimeout(30 * time.Second).Should(Succeed())
}

func objectMeta(ns, name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Namespace: ns, Name: name}
}

// shardLeaseIDs returns the distinct lease names of the given selectors.
func shardLeaseIDs(selectors ...string) map[string]bool {
	GinkgoHelper()
	ids := map[string]bool{}
	for _, s := range selectors {
		sel, err := controller.ParseWatchLabelSelector(s)
		Expect(err).NotTo(HaveOccurred())
		ids[controller.ShardLeaderElectionID(sel)] = true
	}
	return ids
}
