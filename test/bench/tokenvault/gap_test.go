// Package tokenvault_test measures the Token Vault expiry gap: how long a Secret holds an
// expired token between the token's expiry and its successor being written. Auth0 refreshes a
// vaulted token only once it has expired (as documented), so some gap is inherent; the
// simulator can also refresh early, within a window before the expiry, to show what that buys.
//
// It is self-contained (its own control plane, simulator and in-process controllers), apart
// from the test/bench harness. Run it with (after `make envtest-assets`; <version> is the
// Makefile's ENVTEST_K8S_VERSION, testenv.KubernetesVersion):
//
//	KUBEBUILDER_ASSETS=$PWD/bin/k8s/<version>-linux-amd64 go test ./test/bench/tokenvault/ -run='^$' -bench=. -benchtime=1x -timeout=20m -v
//
// It prints figures and never asserts timings; it does assert correctness (every binding Ready
// at the end, every token renewed, no refresh token in any Secret). Without KUBEBUILDER_ASSETS
// it skips.
package tokenvault_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

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

const (
	bindings  = 20               // one user each: no two bindings share an exchange
	lifetime  = 20 * time.Second // of every vaulted IdP access token
	lifetimes = 4                // how many lifetimes each run lasts after the bindings exist
	conn      = "vault-google"
	idp       = "google"
	m2mID     = "bench-m2m"
	m2mSecret = "sim_cs_bench-m2m-secret"
	workerID  = "bench-token-vault"
	tenant    = "auth0"
)

// BenchmarkTokenVaultGap runs the bindings over several token lifetimes once per simulator
// mode: Auth0's documented behaviour (refresh only once expired), and early windows shorter and
// longer than the operator's renewal lead (a third of the lifetime plus up to 10% jitter: 6.7
// to 8.7 s before expiry for 20 s tokens).
func BenchmarkTokenVaultGap(b *testing.B) {
	for _, window := range []time.Duration{0, 5 * time.Second, 10 * time.Second} {
		name := "refresh=on-expiry"
		if window > 0 {
			name = fmt.Sprintf("refresh=early-%s", window)
		}
		b.Run(name, func(b *testing.B) {
			assets := os.Getenv("KUBEBUILDER_ASSETS")
			if assets == "" {
				b.Skip("KUBEBUILDER_ASSETS is unset: this benchmark runs a real kube-apiserver and etcd")
			}
			for range b.N {
				gapRun(b, assets, window)
			}
		})
	}
}

// gapRecorder collects the gaps the controllers report through Options.OnVaultGap.
type gapRecorder struct {
	mu   sync.Mutex
	gaps []time.Duration
}

func (g *gapRecorder) observe(expired, replaced time.Time) {
	d := replaced.Sub(expired)
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gaps = append(g.gaps, d)
}

func (g *gapRecorder) sorted() []time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Sorted(slices.Values(g.gaps))
}

func gapRun(b *testing.B, assets string, window time.Duration) {
	b.StopTimer()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &logTail{}
	logf.SetLogger(zap.New(zap.WriteTo(logs)))

	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{testenv.CRDDir()},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}
	cfg, err := env.Start()
	if err != nil {
		b.Fatalf("starting envtest: %v", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			b.Errorf("stopping envtest: %v", err)
		}
	}()
	scheme := k8sruntime.NewScheme()
	must(b, clientgoscheme.AddToScheme(scheme), "client-go scheme")
	must(b, authv1alpha1.AddToScheme(scheme), "API scheme")
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	must(b, err, "building the client")

	sim, err := auth0sim.New(auth0sim.Options{TokenVaultRefreshWindow: window})
	must(b, err, "starting the simulated Auth0")
	defer sim.Close()
	sim.AddM2MClient(m2mID, m2mSecret, controller.RequiredScopes...)
	sim.AddIdP(auth0sim.IdPOptions{Name: idp, ClientID: idp + "-client", ClientSecret: "sim_cs_" + idp,
		Rotation: auth0sim.RotationNone, AccessTokenLifetime: lifetime})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_vault", Name: conn, Strategy: "oauth2", IdP: idp, TokenVault: true})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	must(b, err, "generating the worker key")
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	must(b, err, "encoding the public key")
	sim.AddTokenVaultClient(workerID, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "")
	for i := range bindings {
		sim.AddUser(userID(i), auth0sim.IdentitySpec{Connection: conn, Provider: "oauth2",
			UserID: strings.TrimPrefix(userID(i), "oauth2|"), IsSocial: true, IdP: idp, OfflineAccess: true})
	}

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "vault-bench-"}}
	must(b, k8s.Create(ctx, ns), "creating the namespace")

	gaps := &gapRecorder{}
	stop := startManager(b, ctx, cfg, scheme, gaps.observe)
	defer stop()

	must(b, k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "m2m", Namespace: ns.Name},
		StringData: map[string]string{"client_id": m2mID, "client_secret": m2mSecret},
	}), "creating the M2M Secret")
	must(b, k8s.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "worker", Namespace: ns.Name},
		Data: map[string][]byte{
			"client_id":   []byte(workerID),
			"private_key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		},
	}), "creating the Token Vault worker Secret")
	must(b, k8s.Create(ctx, &authv1alpha1.Auth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: tenant, Namespace: ns.Name},
		Spec: authv1alpha1.Auth0TenantSpec{
			Domain:               sim.Domain(),
			CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: "m2m"},
			CABundle:             sim.CAPEM(),
			RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
			TokenVault: &authv1alpha1.TokenVaultSpec{
				CredentialsSecretRef: authv1alpha1.LocalSecretRef{Name: "worker"},
				RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
			},
		},
	}), "creating the Auth0Tenant")

	b.StartTimer()
	for i := range bindings {
		must(b, k8s.Create(ctx, &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: bindingName(i), Namespace: ns.Name},
			Spec: authv1alpha1.IdPTokenBindingSpec{
				TenantRef: authv1alpha1.TenantRef{Name: tenant},
				User:      &authv1alpha1.UserSource{ID: userID(i), Connection: conn, Source: authv1alpha1.TokenSourceTokenVault},
				Secret:    authv1alpha1.SecretTarget{Name: bindingName(i) + "-token"},
			},
		}), "creating a binding")
	}
	// Watch the Secrets meanwhile: the tokens each held, and how long one was seen expired.
	obs := newObservations()
	end := time.Now().Add(lifetimes * lifetime)
	for time.Now().Before(end) {
		obs.poll(ctx, b, k8s, sim, ns.Name)
		time.Sleep(250 * time.Millisecond)
	}
	b.StopTimer()

	// Correctness: every binding Ready, renewed at least lifetimes-2 times, no refresh token.
	list := &authv1alpha1.IdPTokenBindingList{}
	must(b, k8s.List(ctx, list, client.InNamespace(ns.Name)), "listing the bindings")
	for _, bd := range list.Items {
		if c := meta.FindStatusCondition(bd.Status.Conditions, authv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
			b.Errorf("binding %s is not Ready at the end: %v", bd.Name, c)
		}
	}
	renewals := 0
	for i := range bindings {
		n := len(obs.tokens[bindingName(i)+"-token"]) - 1
		renewals += max(n, 0)
		if n < lifetimes-2 {
			b.Errorf("binding %s renewed %d time(s) in %d lifetimes", bindingName(i), n, lifetimes)
		}
	}
	if obs.refreshTokens > 0 {
		b.Errorf("%d Secret reads found a refresh token; Token Vault bindings must never hold one", obs.refreshTokens)
	}
	if b.Failed() {
		b.Logf("manager log tail:\n%s", logs)
	}

	g := gaps.sorted()
	b.ReportMetric(float64(renewals), "renewals")
	b.ReportMetric(float64(len(g)), "gaps")
	b.ReportMetric(quantile(g, 0.5).Seconds(), "gap-median-s")
	b.ReportMetric(quantile(g, 0.9).Seconds(), "gap-p90-s")
	b.ReportMetric(quantile(g, 1).Seconds(), "gap-max-s")
	b.ReportMetric(obs.maxExpired.Seconds(), "seen-expired-max-s")
	b.Logf("simulator refresh window %s; %d bindings, %s tokens, %d lifetimes: %d renewals, %d of them with a gap "+
		"(OnVaultGap: median %s, p90 %s, max %s); longest a Secret was seen holding an expired token "+
		"(250 ms polls): %s; Token Vault exchanges %d",
		window, bindings, lifetime, lifetimes, renewals, len(g), fmtDur(quantile(g, 0.5)), fmtDur(quantile(g, 0.9)),
		fmtDur(quantile(g, 1)), fmtDur(obs.maxExpired), len(sim.TokenVaultSubjects()))
	if len(obs.late) > 0 {
		b.Logf("renewals seen more than %s after the expiry:\n  %s", lateGap, strings.Join(obs.late, "\n  "))
	}
}

// startManager runs the controllers in this process, with OnVaultGap wired to observe.
func startManager(b *testing.B, ctx context.Context, cfg *rest.Config, scheme *k8sruntime.Scheme, observe func(expired, replaced time.Time)) func() {
	b.Helper()
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = -1, 0
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  controller.CacheOptions(nil, ""),
		Controller:             ctrlconfig.Controller{SkipNameValidation: ptr.To(true)}, // one manager per mode, same process
	})
	must(b, err, "creating the manager")
	must(b, controller.SetupWithManager(mgr, controller.Options{
		Clock: clock.RealClock{}, MaxConcurrentReconciles: 4, OnVaultGap: observe,
	}), "setting up the controllers")
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("the manager stopped with an error: %v", err)
			}
		case <-time.After(time.Minute):
			b.Errorf("the manager did not stop within a minute")
		}
	}
}

// observations are what polling the target Secrets saw.
type observations struct {
	tokens        map[string]map[string]bool // target Secret name -> access tokens it held
	held          map[string]heldToken       // target Secret name -> the token it holds now
	maxExpired    time.Duration
	refreshTokens int
	// late are the renewals seen more than lateGap after the previous token's expiry.
	late []string
}

type heldToken struct {
	token   string
	expires time.Time
	n       int // renewals seen so far
}

// lateGap is the gap past which a renewal is described in the output.
const lateGap = 5 * time.Second

func newObservations() *observations {
	return &observations{tokens: map[string]map[string]bool{}, held: map[string]heldToken{}}
}

func (o *observations) poll(ctx context.Context, b *testing.B, k8s client.Client, sim *auth0sim.Server, ns string) {
	list := &corev1.SecretList{}
	if err := k8s.List(ctx, list, client.InNamespace(ns)); err != nil {
		b.Logf("listing Secrets: %v", err)
		return
	}
	now := time.Now()
	for i := range list.Items {
		s := &list.Items[i]
		if len(s.Data[authv1alpha1.SecretKeyRefreshToken]) > 0 {
			o.refreshTokens++
		}
		tok := string(s.Data[authv1alpha1.SecretKeyAccessToken])
		if tok == "" || s.Labels[authv1alpha1.LabelManagedBy] != authv1alpha1.ManagedByValue || s.Labels[authv1alpha1.LabelRole] != "" {
			continue
		}
		if o.tokens[s.Name] == nil {
			o.tokens[s.Name] = map[string]bool{}
		}
		o.tokens[s.Name][tok] = true
		exp, valid := sim.AccessTokenValid(tok)
		if !valid && !exp.IsZero() {
			o.maxExpired = max(o.maxExpired, now.Sub(exp))
		}
		prev, seen := o.held[s.Name]
		switch {
		case !seen:
			o.held[s.Name] = heldToken{token: tok, expires: exp}
		case prev.token != tok:
			if gap := now.Sub(prev.expires); gap > lateGap {
				o.late = append(o.late, fmt.Sprintf("%s: renewal %d seen %s after the previous token's expiry",
					s.Name, prev.n+1, fmtDur(gap)))
			}
			o.held[s.Name] = heldToken{token: tok, expires: exp, n: prev.n + 1}
		}
	}
}

// quantile is the q-quantile (nearest rank) of sorted durations; 0 for none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func userID(i int) string      { return fmt.Sprintf("oauth2|vault-u%03d", i) }
func bindingName(i int) string { return fmt.Sprintf("vault-%03d", i) }

func fmtDur(d time.Duration) string { return d.Round(10 * time.Millisecond).String() }

func must(b *testing.B, err error, what string) {
	b.Helper()
	if err != nil {
		b.Fatalf("%s: %v", what, err)
	}
}

// maxLogLines bounds the manager log kept for a failure report.
const maxLogLines = 100

// logTail keeps the last lines of the manager's log for a failure report.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		l.lines = append(l.lines, string(line))
	}
	if len(l.lines) > maxLogLines {
		l.lines = l.lines[len(l.lines)-maxLogLines:]
	}
	return len(p), nil
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
