package controller

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/clock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

// The simulated tenant every integration test uses.
const (
	m2mClientID     = "m2m-app"
	m2mClientSecret = "sim_cs_m2m-secret-value" // recognisable, so the secrecy test can look for it
	idpLifetime     = 45 * time.Second          // short, so tests see real refresh cycles
)

var (
	testEnv    *envtest.Environment
	restCfg    *rest.Config
	k8s        client.Client // direct, uncached: assertions see the API server's truth
	scheme     = k8sruntime.NewScheme()
	sim        *auth0sim.Server
	operatorNS string // the manager's --cluster-resource-namespace
	logs       = &syncBuffer{}
	firstUser  string
	stopMgr    context.CancelFunc
	mgrDone    chan struct{}
	suiteCtx   context.Context
	suiteStop  context.CancelFunc
)

func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Controller Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true)))
	suiteCtx, suiteStop = context.WithCancel(context.Background())

	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(authv1alpha1.AddToScheme(scheme)).To(Succeed())

	testEnv = &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(testenv.RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: testenv.AssetsDir(),
	}
	var err error
	restCfg, err = testEnv.Start()
	Expect(err).NotTo(HaveOccurred())
	// Cleanups registered here run after AfterSuite even when it fails, so nothing outlives the suite.
	DeferCleanup(func() { Expect(testEnv.Stop()).To(Succeed()) })
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	sim, err = auth0sim.New(auth0sim.Options{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Close)
	sim.AddM2MClient(m2mClientID, m2mClientSecret, RequiredScopes...)
	for _, o := range []auth0sim.IdPOptions{
		{Name: "google", ClientID: "google-client", ClientSecret: "sim_cs_google", Rotation: auth0sim.RotationNone, AccessTokenLifetime: idpLifetime},
		{Name: "microsoft", ClientID: "ms-client", ClientSecret: "sim_cs_ms", Rotation: auth0sim.RotationRotate, AccessTokenLifetime: idpLifetime, JWT: true},
		{Name: "github", ClientID: "gh-client", ClientSecret: "sim_cs_gh", Rotation: auth0sim.RotationStrict, AccessTokenLifetime: idpLifetime},
		// Strict rotation, used only by the lineage specs, so that their refresh counts are their own.
		{Name: "lineage", ClientID: "lineage-client", ClientSecret: "sim_cs_lineage", Rotation: auth0sim.RotationStrict, AccessTokenLifetime: idpLifetime},
		// Strict rotation, used only by the trust specs.
		{Name: "trust", ClientID: "trust-client", ClientSecret: "sim_cs_trust", Rotation: auth0sim.RotationStrict, AccessTokenLifetime: idpLifetime},
		// Shorter than the 30 s minimum between renewals.
		{Name: "brief", ClientID: "brief-client", ClientSecret: "sim_cs_brief", Rotation: auth0sim.RotationNone, AccessTokenLifetime: 12 * time.Second},
	} {
		sim.AddIdP(o)
		// Identities link through oauth2-strategy connections whose tokenURL is the simulated IdP.
		sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_" + o.Name, Name: o.Name + "-sim", Strategy: "oauth2", IdP: o.Name})
	}
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_vault", Name: "vault-sim", Strategy: "oauth2", IdP: "google", TokenVault: true})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_admin", Name: "workspace-admin", Strategy: "oauth2", IdP: "microsoft", AdminTokens: true})

	// A user whose token the secrecy check uses to prove its pattern matches real tokens.
	firstUser = "oauth2|secrecy-probe"
	sim.AddUser(firstUser, auth0sim.IdentitySpec{Connection: "google-sim", Provider: "oauth2", UserID: "secrecy-probe", IdP: "google", OfflineAccess: true})

	operatorNS = "idptoken-system"
	Expect(k8s.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}})).To(Succeed())
	startManager()
	DeferCleanup(func() { stopManager(); suiteStop() })
})

var _ = AfterSuite(func() {
	if sim != nil && k8s != nil {
		expectNoSecrets()
	}
})

// startManager runs the operator as cmd/main.go wires it, with the same cache options.
func startManager() {
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(nil, operatorNS),
		Controller:             config.Controller{SkipNameValidation: ptr.To(true)}, // restarted within one process
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(SetupWithManager(mgr, Options{Clock: clock.RealClock{}, MaxConcurrentReconciles: 4,
		ClusterResourceNamespace: operatorNS, StateGCInterval: 5 * time.Second,
		Jitter: func() float64 { return 0.5 }})).To(Succeed())
	ctx, cancel := context.WithCancel(suiteCtx)
	stopMgr, mgrDone = cancel, make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(mgrDone)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
}

func stopManager() {
	if stopMgr != nil {
		stopMgr()
		<-mgrDone
		stopMgr = nil
	}
}

// syncBuffer collects the manager's log output for the secrecy test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---- helpers shared by the specs ----

func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "t-"}}
	Expect(k8s.Create(suiteCtx, ns)).To(Succeed())
	return ns.Name
}

// newTenant creates the credentials Secret and an Auth0Tenant for the simulator, and waits for Ready.
func newTenant(ns, name string) {
	GinkgoHelper()
	newTenantWith(ns, name, m2mClientID, m2mClientSecret, nil)
}

// newTenantWith is newTenant with another M2M client and a change of the tenant's spec.
func newTenantWith(ns, name, clientID, clientSecret string, edit func(*authv1alpha1.Auth0TenantSpec)) {
	GinkgoHelper()
	Expect(k8s.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-m2m", Namespace: ns},
		StringData: map[string]string{"client_id": clientID, "client_secret": clientSecret},
	})).To(Succeed())
	t := &authv1alpha1.Auth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.Auth0TenantSpec{
			Domain:               sim.Domain(),
			CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: name + "-m2m"},
			CABundle:             sim.CAPEM(),
			RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
		},
	}
	if edit != nil {
		edit(&t.Spec)
	}
	Expect(k8s.Create(suiteCtx, t)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		g.Expect(readyReason(t.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonAuthenticated))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

func readyReason(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == authv1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

func userBinding(ns, name, tenant, userID, connection string) *authv1alpha1.IdPTokenBinding {
	return &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Name: tenant},
			User:      &authv1alpha1.UserSource{ID: userID, Connection: connection},
			Secret:    authv1alpha1.SecretTarget{Name: name + "-token"},
		},
	}
}

func getBinding(ns, name string) *authv1alpha1.IdPTokenBinding {
	GinkgoHelper()
	b := &authv1alpha1.IdPTokenBinding{}
	Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b)).To(Succeed())
	return b
}

// stateNameOf is the name of the refresh-state Secret of a binding's identity.
func stateNameOf(b *authv1alpha1.IdPTokenBinding) string {
	return identityOf(tenantKeyOf(b), b).StateName()
}

func getSecret(ns, name string) (*corev1.Secret, error) {
	s := &corev1.Secret{}
	return s, k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, s)
}

// updateBinding changes a binding's spec, retrying when the operator patched its status meanwhile.
func updateBinding(ns, name string, mutate func(*authv1alpha1.IdPTokenBinding)) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		b := &authv1alpha1.IdPTokenBinding{}
		if err := k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
			return err
		}
		mutate(b)
		return k8s.Update(suiteCtx, b)
	})).To(Succeed())
}

// waitReady waits for the binding's Ready=True/Synced and returns it.
func waitReady(ns, name string) *authv1alpha1.IdPTokenBinding {
	GinkgoHelper()
	var b *authv1alpha1.IdPTokenBinding
	Eventually(func(g Gomega) {
		b = &authv1alpha1.IdPTokenBinding{}
		g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b)).To(Succeed())
		g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return b
}

// waitReason waits for the binding's Ready condition to be status/reason.
func waitReason(ns, name, want string) *authv1alpha1.IdPTokenBinding {
	GinkgoHelper()
	var b *authv1alpha1.IdPTokenBinding
	Eventually(func(g Gomega) {
		b = &authv1alpha1.IdPTokenBinding{}
		g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b)).To(Succeed())
		g.Expect(readyReason(b.Status.Conditions)).To(Equal(want))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return b
}
