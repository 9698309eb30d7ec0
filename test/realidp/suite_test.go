package realidp

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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
	m2mClientSecret = "realidp_cs_m2m-secret-value"
	// lifetime of fosite's access tokens: above the operator's 30 s between renewals.
	lifetime   = DefaultAccessTokenLifespan
	operatorNS = "idptoken-system"
)

var (
	k8s      client.Client // direct, uncached: assertions see the API server's truth
	scheme   = k8sruntime.NewScheme()
	sim      *auth0sim.Server
	tenant   *Tenant
	idp      *IdP
	logs     = &syncBuffer{}
	suiteCtx context.Context
)

func TestRealIdP(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Real IdP Suite")
}

var _ = BeforeSuite(func() {
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true)))
	var cancel context.CancelFunc
	suiteCtx, cancel = context.WithCancel(context.Background())
	DeferCleanup(cancel)

	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(authv1alpha1.AddToScheme(scheme)).To(Succeed())
	env := testenv.Environment()
	restCfg, err := env.Start()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { Expect(env.Stop()).To(Succeed()) })
	k8s, err = client.New(restCfg, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	sim, err = auth0sim.New(auth0sim.Options{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Close)
	sim.AddM2MClient(m2mClientID, m2mClientSecret, controller.RequiredScopes...)
	tenant = NewTenant(sim)
	DeferCleanup(tenant.Close)
	idp, err = NewIdP(IdPOptions{AccessTokenLifespan: lifetime})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(idp.Close)

	Expect(k8s.Create(suiteCtx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNS}})).To(Succeed())
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.CacheOptions(nil, operatorNS),
	})
	Expect(err).NotTo(HaveOccurred())
	Expect(controller.SetupWithManager(mgr, controller.Options{
		Clock: clock.RealClock{}, MaxConcurrentReconciles: 4, ClusterResourceNamespace: operatorNS,
		Jitter: func() float64 { return 0.5 },
	})).To(Succeed())
	mgrCtx, stop := context.WithCancel(suiteCtx)
	done := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(done)
		Expect(mgr.Start(mgrCtx)).To(Succeed())
	}()
	DeferCleanup(func() { stop(); <-done })
})

var _ = AfterSuite(func() {
	if k8s != nil && idp != nil {
		expectNoSecrets()
	}
})

// tokenShape matches what the suite's secrets look like: fosite's JWTs and opaque tokens, the
// simulator's tokens, and the client secrets the suite makes up.
var tokenShape = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}|ory_(at|rt|ac)_[A-Za-z0-9_.-]{8,}|realidp_cs_[A-Za-z0-9_-]+|` +
	auth0sim.TokenPattern.String())

// expectNoSecrets fails the suite when a token or client secret reached the manager's logs, an
// Event or a status. It looks for every value fosite issued and every secret the suite used, and
// for anything shaped like one.
func expectNoSecrets() {
	secrets := append(idp.IssuedTokens(), idp.ClientSecrets()...)
	secrets = append(secrets, m2mClientSecret)

	By("checking that the leak check recognises a token the operator really handled")
	targets := &corev1.SecretList{}
	Expect(k8s.List(suiteCtx, targets, client.HasLabels{authv1alpha1.LabelBinding})).To(Succeed())
	probes := 0
	for _, s := range targets.Items {
		if at := string(s.Data["access_token"]); at != "" && tokenShape.MatchString(at) && slices.Contains(secrets, at) {
			probes++
		}
	}
	Expect(probes).To(BeNumerically(">", 0), "no Secret holds a token the leak check knows: it would prove nothing")

	texts := map[string]string{"the manager's logs": logs.String()}
	Expect(texts["the manager's logs"]).NotTo(BeEmpty())
	events := &eventsv1.EventList{}
	Expect(k8s.List(suiteCtx, events)).To(Succeed())
	Expect(events.Items).NotTo(BeEmpty())
	for _, e := range events.Items {
		texts["Event "+e.Namespace+"/"+e.Name+" ("+e.Reason+")"] = e.Note
	}
	bindings := &authv1alpha1.IdPTokenBindingList{}
	Expect(k8s.List(suiteCtx, bindings)).To(Succeed())
	Expect(bindings.Items).NotTo(BeEmpty())
	for _, b := range bindings.Items {
		texts["status of binding "+b.Namespace+"/"+b.Name] = mustJSON(b.Status)
	}
	tenants := &authv1alpha1.Auth0TenantList{}
	Expect(k8s.List(suiteCtx, tenants)).To(Succeed())
	for _, t := range tenants.Items {
		texts["status of tenant "+t.Namespace+"/"+t.Name] = mustJSON(t.Status)
	}
	windows := secretWindows(secrets)
	for where, text := range texts {
		Expect(carried(text, windows)).To(BeEmpty(), "%s carry these secrets (fingerprints), whole or in part", where)
		var shaped []string // fingerprints, so that a failure prints no secret
		for _, m := range tokenShape.FindAllString(text, 3) {
			shaped = append(shaped, Fingerprint(m))
		}
		Expect(shaped).To(BeEmpty(), "%s carry something shaped like a token", where)
	}
}

// window is how many characters of a secret count as carrying it: the run length the operator's
// scrubber cuts (safetext) is 20.
const window = 20

// secretWindows maps every run of window characters of every secret to its secret's fingerprint.
func secretWindows(secrets []string) map[string]string {
	out := map[string]string{}
	for _, s := range secrets {
		for i := 0; i+window <= len(s); i++ {
			out[s[i:i+window]] = Fingerprint(s)
		}
	}
	return out
}

// tokenRun is a run of the characters tokens and secrets are made of.
var tokenRun = regexp.MustCompile(`[A-Za-z0-9_.~+/=-]{20,}`)

// carried returns the fingerprints of the secrets of which text holds window characters in a row.
func carried(text string, windows map[string]string) []string {
	found := map[string]bool{}
	for _, run := range tokenRun.FindAllString(text, -1) {
		for i := 0; i+window <= len(run); i++ {
			if fp, ok := windows[run[i:i+window]]; ok {
				found[fp] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(found))
}

func mustJSON(v any) string {
	raw, err := json.Marshal(v)
	Expect(err).NotTo(HaveOccurred())
	return string(raw)
}

// syncBuffer collects the manager's log output for the leak check.
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

// waitFor is the timeout of a wait that spans a renewal: the operator renews at most every 30 s.
const waitFor = lifetime + 30*time.Second
