package controller

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/metrics"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// everyFunction uses each template function once; the Secret's keys are checked against
// each other, so that a renewal between two reads cannot make a spec flaky.
var everyFunction = map[string]string{
	"token":     `{{ .AccessToken }}`,
	"b64":       `{{ b64enc .AccessToken }}`,
	"roundtrip": `{{ .AccessToken | b64enc | b64dec }}`,
	"json":      `{"token":{{ toJson .AccessToken }},"expires":{{ toJson .ExpiresAt }}}`,
	"quoted":    `{{ quote .Connection }}`,
	"upper":     `{{ .TokenType | default "bearer" | upper }}`,
	"lower":     `{{ .TokenType | default "BEARER" | lower }}`,
	"trimmed":   `{{ printf "  %s  " .Provider | trim }}`,
	"fallback":  `{{ .AccessTokenSecret | default "none" }}`,
	"rfc3339":   `{{ rfc3339 .ExpiresAt }}`,
	"epoch":     `{{ unixEpoch .ExpiresAt }}`,
}

const dockerConfig = `{"auths":{"ghcr.io":{"username":"x-access-token","password":{{ toJson .AccessToken }},` +
	`"auth":{{ printf "x-access-token:%s" .AccessToken | b64enc | quote }}}}}`

func templated(b *authv1alpha1.IdPTokenBinding, typ corev1.SecretType, policy authv1alpha1.MergePolicy, data map[string]string) *authv1alpha1.IdPTokenBinding {
	b.Spec.Secret.Template = &authv1alpha1.SecretTemplate{Type: typ, MergePolicy: policy, Data: templateData(data)}
	return b
}

func templateData(data map[string]string) map[string]authv1alpha1.TemplateText {
	out := make(map[string]authv1alpha1.TemplateText, len(data))
	for k, v := range data {
		out[k] = authv1alpha1.TemplateText(v)
	}
	return out
}

func restarting(b *authv1alpha1.IdPTokenBinding, minInterval time.Duration, targets ...authv1alpha1.RolloutRestartTarget) *authv1alpha1.IdPTokenBinding {
	b.Spec.RolloutRestartTargets = targets
	if minInterval > 0 {
		b.Spec.RolloutRestartMinInterval = &metav1.Duration{Duration: minInterval}
	}
	return b
}

// appDeployment is a valid Deployment; envtest runs no controller for it, but it can be patched.
func appDeployment(ns, name string, labels map[string]string) *appsv1.Deployment {
	pods := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: pods},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: pods},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
			},
		},
	}
}

// restartedAt is the Deployment's kubectl.kubernetes.io/restartedAt, "" when never restarted.
func restartedAt(g Gomega, ns, name string) string {
	d := &appsv1.Deployment{}
	g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, d)).To(Succeed())
	return d.Spec.Template.Annotations[RestartedAtAnnotation]
}

// workloadEvents are the Events of reason regarding the Deployment ns/name, and how many times
// they occurred in all (an Event series counts several).
func workloadEvents(g Gomega, ns, name, reason string) ([]eventsv1.Event, int32) {
	list := &eventsv1.EventList{}
	g.Expect(k8s.List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
	var out []eventsv1.Event
	var n int32
	for _, e := range list.Items {
		if e.Regarding.Kind == "Deployment" && (name == "" || e.Regarding.Name == name) && e.Reason == reason {
			out = append(out, e)
			n++
			if e.Series != nil {
				n += e.Series.Count - 1
			}
		}
	}
	return out, n
}

// rolloutRestarts reads idptoken_rollout_restarts_total{namespace=ns,kind=Deployment}.
func rolloutRestarts(g Gomega, ns string) float64 {
	families, err := ctrlmetrics.Registry.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	for _, fam := range families {
		for _, m := range fam.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if fam.GetName() == metrics.RolloutRestartsTotal && labels["namespace"] == ns && labels["kind"] == "Deployment" {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// differingKeys names the keys whose values differ, never the values.
func differingKeys(a, b map[string][]byte) []string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(a)) {
		if v, ok := b[k]; !ok || !bytes.Equal(v, a[k]) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	return out
}

// macOf is what status.secretMAC must be for data: its HMAC under the operator's key.
func macOf(g Gomega, data map[string][]byte) string {
	key, err := getSecret(operatorNS, MACKeySecretName)
	g.Expect(err).NotTo(HaveOccurred())
	return binding.SecretMAC(key.Data["key"], data)
}

func forceRefresh(ns, name, value string) {
	GinkgoHelper()
	updateBinding(ns, name, func(b *authv1alpha1.IdPTokenBinding) {
		metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, value)
	})
}

// withTokenVault makes a tenant whose Token Vault worker the simulator knows, as vault_test.go does.
func withTokenVault(ns, tenant string) {
	GinkgoHelper()
	newTenant(ns, tenant)
	worker := tenant + "-worker"
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	Expect(err).NotTo(HaveOccurred())
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	Expect(err).NotTo(HaveOccurred())
	sim.AddTokenVaultClient(worker+"-"+ns, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "")
	Expect(k8s.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: worker, Namespace: ns},
		Data: map[string][]byte{"client_id": []byte(worker + "-" + ns),
			"private_key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})},
	})).To(Succeed())
	t := &authv1alpha1.Auth0Tenant{}
	Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: tenant}, t)).To(Succeed())
	t.Spec.TokenVault = &authv1alpha1.TokenVaultSpec{CredentialsSecretRef: authv1alpha1.LocalSecretRef{Name: worker},
		RateLimit: authv1alpha1.RateLimit{RequestsPerSecond: 20, Burst: 20}}
	Expect(k8s.Update(suiteCtx, t)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		c := findCondition(t.Status.Conditions, authv1alpha1.ConditionTokenVaultReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonTokenVaultConfigured))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// bindingOf reads a binding inside an Eventually.
func bindingOf(g Gomega, ns, name string) *authv1alpha1.IdPTokenBinding {
	b := &authv1alpha1.IdPTokenBinding{}
	g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b)).To(Succeed())
	return b
}

// secretOf reads a Secret inside an Eventually.
func secretOf(g Gomega, ns, name string) *corev1.Secret {
	s, err := getSecret(ns, name)
	g.Expect(err).NotTo(HaveOccurred())
	return s
}

func until(t time.Time) time.Duration { return max(time.Until(t), time.Second) }

// Consuming the token: a template shapes the Secret, status.secretMAC follows its data, and a
// change of the data restarts the workloads the bindings name. The specs share one namespace;
// the bindings whose renewals they wait for (the google IdP renews about 30 s after each
// refresh) are made first, so that their clocks run while the quicker specs do.
var _ = Describe("Consuming the token", Ordered, ContinueOnFailure, func() {
	const fleet = 10
	var (
		ns             string
		mac0, token0   string    // tpl-all's status.secretMAC and token after its first sync
		fleetRenewAt   time.Time // the fleet's first scheduled renewal
		fleetRestarted string    // when the fleet's Deployment was first restarted
	)
	fleetName := func(i int) string { return fmt.Sprintf("fleet-%d", i) }
	const dockerJSON = corev1.SecretTypeDockerConfigJson

	BeforeAll(func() {
		// An IdP that answers a refresh 3 s late, so that a binding can sync while the first
		// refresh of its identity is in flight.
		sim.AddIdP(auth0sim.IdPOptions{Name: "slow", ClientID: "slow-client", ClientSecret: "sim_cs_slow",
			AccessTokenLifetime: idpLifetime, ReplyDelay: 3 * time.Second})
		sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_slow", Name: "slow-sim", Strategy: "oauth2", IdP: "slow"})
		ns = newNamespace()
		newTenant(ns, "prod")
		tplUser, fleetUser, selUser := newUser("google", true), newUser("google", true), newUser("google", true)
		Expect(k8s.Create(suiteCtx, appDeployment(ns, "api", nil))).To(Succeed())
		fleetOf := func(i int) *authv1alpha1.IdPTokenBinding {
			return restarting(userBinding(ns, fleetName(i), "prod", fleetUser, "google-sim"), time.Minute,
				byName(authv1alpha1.RolloutRestartDeployment, "api"))
		}
		// The first binding of each identity syncs alone: a binding that syncs while its
		// identity's first refresh is in flight writes twice (see the spec marked PRODUCT BUG).
		leaders := []*authv1alpha1.IdPTokenBinding{
			templated(userBinding(ns, "tpl-all", "prod", tplUser, "google-sim"), "", authv1alpha1.MergePolicyReplace, everyFunction),
			restarting(userBinding(ns, "sel", "prod", selUser, "google-sim"), 0,
				authv1alpha1.RolloutRestartTarget{Kind: authv1alpha1.RolloutRestartDeployment,
					Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"uses-token": "x"}}}),
			fleetOf(0),
		}
		followers := []*authv1alpha1.IdPTokenBinding{
			templated(userBinding(ns, "tpl-twin", "prod", tplUser, "google-sim"), "", "", everyFunction),
			templated(userBinding(ns, "tpl-merge", "prod", tplUser, "google-sim"), "", authv1alpha1.MergePolicyMerge,
				map[string]string{"authorization": "Bearer {{ .AccessToken }}"}),
			templated(userBinding(ns, "tpl-docker", "prod", tplUser, "google-sim"), dockerJSON, "",
				map[string]string{corev1.DockerConfigJsonKey: dockerConfig}),
		}
		for i := 1; i < fleet; i++ {
			followers = append(followers, fleetOf(i))
		}
		for _, group := range [][]*authv1alpha1.IdPTokenBinding{leaders, followers} {
			for _, b := range group {
				Expect(k8s.Create(suiteCtx, b)).To(Succeed())
			}
			for _, b := range group {
				waitReady(ns, b.Name)
			}
		}
		mac0 = getBinding(ns, "tpl-all").Status.SecretMAC
		s, err := getSecret(ns, "tpl-all-token")
		Expect(err).NotTo(HaveOccurred())
		token0 = string(s.Data["token"])
		next := getBinding(ns, fleetName(0)).Status.NextRefreshTime
		Expect(next).NotTo(BeNil())
		fleetRenewAt = next.Time
		Expect(restartedAt(Default, ns, "api")).To(BeEmpty(), "a first write restarts nothing")

		By("a Deployment made after the binding whose selector picks it")
		Expect(k8s.Create(suiteCtx, appDeployment(ns, "late", map[string]string{"uses-token": "x"}))).To(Succeed())
		forceRefresh(ns, "sel", "after-late")
	})

	It("renders every template function, Replace and Merge, and a typed Secret", func() {
		s, err := getSecret(ns, "tpl-all-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(slices.Sorted(maps.Keys(s.Data))).To(Equal(slices.Sorted(maps.Keys(everyFunction))), "Replace writes only the template's keys")
		tok := string(s.Data["token"])
		_, ok := sim.AccessTokenValid(tok)
		Expect(ok).To(BeTrue(), "the token key holds a token the IdP issued")
		Expect(string(s.Data["b64"])).To(equalToken(base64.StdEncoding.EncodeToString([]byte(tok))), "b64enc")
		Expect(string(s.Data["roundtrip"])).To(equalToken(tok), "b64dec")
		var js struct{ Token, Expires string }
		Expect(json.Unmarshal(s.Data["json"], &js)).To(Succeed(), "toJson")
		Expect(js.Token).To(equalToken(tok), "toJson of a string")
		expires := s.Annotations[authv1alpha1.AnnotationExpiresAt]
		at, err := time.Parse(time.RFC3339, expires)
		Expect(err).NotTo(HaveOccurred())
		Expect(js.Expires).To(equalToken(expires), "toJson of a time")
		for key, want := range map[string]string{"rfc3339": expires, "epoch": strconv.FormatInt(at.Unix(), 10), "quoted": `"google-sim"`,
			"upper": "BEARER", "lower": "bearer", "trimmed": "oauth2", "fallback": "none"} {
			// equalToken: a template that went wrong might have written the token anywhere.
			Expect(string(s.Data[key])).To(equalToken(want), "key %s should be %q", key, want)
		}

		By("Merge writes the template's keys and the default ones")
		m, err := getSecret(ns, "tpl-merge-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(slices.Sorted(maps.Keys(m.Data))).To(Equal([]string{"access_token", "authorization", "expires_at"}))
		Expect(string(m.Data["authorization"])).To(equalToken("Bearer " + string(m.Data["access_token"])))
		Expect(string(m.Data["expires_at"])).To(Equal(m.Annotations[authv1alpha1.AnnotationExpiresAt]))

		By("a kubernetes.io/dockerconfigjson Secret rendered from the token")
		d, err := getSecret(ns, "tpl-docker-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Type).To(Equal(dockerJSON))
		Expect(slices.Collect(maps.Keys(d.Data))).To(ConsistOf(corev1.DockerConfigJsonKey))
		var cfg struct {
			Auths map[string]struct{ Username, Password, Auth string }
		}
		Expect(json.Unmarshal(d.Data[corev1.DockerConfigJsonKey], &cfg)).To(Succeed())
		ghcr, ok := cfg.Auths["ghcr.io"]
		Expect(ok).To(BeTrue(), "auths has ghcr.io")
		Expect(ghcr.Username).To(Equal("x-access-token"))
		_, ok = sim.AccessTokenValid(ghcr.Password)
		Expect(ok).To(BeTrue(), "the password is a token the IdP issued")
		auth, err := base64.StdEncoding.DecodeString(ghcr.Auth)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(auth)).To(equalToken("x-access-token:" + ghcr.Password))
	})

	It("keeps the Secret as it was when the template stops compiling or rendering", func() {
		uid := newUser("google", true)
		before := map[string]*corev1.Secret{}
		broken := map[string]string{"bad-parse": `Bearer {{ .Nope }}`, "bad-render": `{{ b64dec .AccessToken }}`}
		for name := range broken {
			b := templated(userBinding(ns, name, "prod", uid, "google-sim"), dockerJSON, "", map[string]string{corev1.DockerConfigJsonKey: dockerConfig})
			b.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "payments"}
			Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		}
		for name, tpl := range broken {
			waitReady(ns, name)
			s, err := getSecret(ns, name+"-token")
			Expect(err).NotTo(HaveOccurred())
			before[name] = s
			// Type and labels change too: a write of any part would show.
			updateBinding(ns, name, func(b *authv1alpha1.IdPTokenBinding) {
				b.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "platform"}
				b.Spec.Secret.Template = &authv1alpha1.SecretTemplate{Data: templateData(map[string]string{"authorization": tpl})}
			})
		}
		for name, says := range map[string]string{"bad-parse": "Nope", "bad-render": "b64dec"} {
			b := waitReason(ns, name, "False/"+authv1alpha1.ReasonInvalidTemplate)
			msg := readyMessage(b.Status.Conditions)
			Expect(msg).To(And(ContainSubstring(`"authorization"`), ContainSubstring(says)), name)
			Expect(secretPattern.FindString(msg)).To(BeEmpty(), "the message of %s carries a secret", name)
			Expect(condition(b, authv1alpha1.ConditionReady).ObservedGeneration).To(Equal(b.Generation))
		}
		Consistently(func(g Gomega) {
			for name, was := range before {
				s := secretOf(g, ns, name+"-token")
				g.Expect(s.ResourceVersion).To(Equal(was.ResourceVersion), "Secret %s was written", s.Name)
				g.Expect(s.Type).To(Equal(was.Type))
				g.Expect(s.Labels).To(Equal(was.Labels))
				g.Expect(differingKeys(s.Data, was.Data)).To(BeEmpty(), "keys of Secret %s changed", s.Name)
			}
		}).WithTimeout(3 * time.Second).Should(Succeed())

		By("a new binding whose template does not render gets no Secret")
		Expect(k8s.Create(suiteCtx, templated(userBinding(ns, "bad-new", "prod", uid, "google-sim"), "", "",
			map[string]string{"x": broken["bad-render"]}))).To(Succeed())
		waitReason(ns, "bad-new", "False/"+authv1alpha1.ReasonInvalidTemplate)
		_, err := getSecret(ns, "bad-new-token")
		Expect(apierrors.IsNotFound(err)).To(BeTrue(), "a Secret was written")
	})

	It("restarts nothing when a Token Vault re-exchange returns the token the Secret holds", func() {
		withTokenVault(ns, "vault")
		userSeq++
		id := fmt.Sprintf("consume%d%d", time.Now().UnixNano()%1e9, userSeq)
		uid := "oauth2|" + id
		sim.AddUser(uid, auth0sim.IdentitySpec{Connection: "vault-sim", Provider: "oauth2", UserID: id, IsSocial: true, IdP: "google", OfflineAccess: true})
		Expect(k8s.Create(suiteCtx, appDeployment(ns, "vault-app", nil))).To(Succeed())
		b := restarting(userBinding(ns, "vaulted", "vault", uid, "vault-sim"), 0, byName(authv1alpha1.RolloutRestartDeployment, "vault-app"))
		b.Spec.User.Source = authv1alpha1.TokenSourceTokenVault
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		first := waitReady(ns, "vaulted")
		Expect(first.Status.SecretMAC).NotTo(BeEmpty())
		before, err := getSecret(ns, "vaulted-token")
		Expect(err).NotTo(HaveOccurred())
		exchanges := sim.Stats().TokenVaultExchanges

		forceRefresh(ns, "vaulted", "same-token")
		Eventually(func(g Gomega) string { return bindingOf(g, ns, "vaulted").Status.LastForceRefresh }).Should(Equal("same-token"))
		Expect(sim.Stats().TokenVaultExchanges).To(BeNumerically(">", exchanges), "the force re-exchanged")
		Consistently(func(g Gomega) {
			g.Expect(differingKeys(secretOf(g, ns, "vaulted-token").Data, before.Data)).To(BeEmpty())
			st := bindingOf(g, ns, "vaulted").Status
			g.Expect(st.SecretMAC).To(Equal(first.Status.SecretMAC))
			g.Expect(st.LastRolloutRestart).To(BeNil())
			g.Expect(restartedAt(g, ns, "vault-app")).To(BeEmpty())
		}).WithTimeout(2 * DefaultRestartCoalesce).Should(Succeed())

		By("a new token in the vault restarts it: the check above can fail")
		sim.Login(uid)
		forceRefresh(ns, "vaulted", "new-token")
		Eventually(func(g Gomega) {
			g.Expect(restartedAt(g, ns, "vault-app")).NotTo(BeEmpty())
			g.Expect(bindingOf(g, ns, "vaulted").Status.LastRolloutRestart).NotTo(BeNil())
		}).WithTimeout(30 * time.Second).Should(Succeed())
	})

	// PRODUCT BUG, this spec fails until it is fixed: the refresh claim stores Auth0's copy of a
	// new identity's token (an Estimated expiry, refreshed at once) in the identity's state Secret
	// before the first refresh (binding_state.go, claim); a binding that syncs meanwhile writes
	// that copy to its Secret, and the refreshed token a moment later. The second write changes
	// status.secretMAC (binding.RestartDue), so bindings just created restart their workloads.
	It("restarts nothing for bindings made while their identity's first refresh is in flight", func() {
		uid := newUser("slow", true)
		Expect(k8s.Create(suiteCtx, appDeployment(ns, "fresh-app", nil))).To(Succeed())
		target := byName(authv1alpha1.RolloutRestartDeployment, "fresh-app")
		first := restarting(userBinding(ns, "fresh-a", "prod", uid, "slow-sim"), 0, target)
		Expect(k8s.Create(suiteCtx, first)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(secretOf(g, ns, stateNameOf(first)).Annotations).To(HaveKey(authv1alpha1.AnnotationRefreshClaim))
		}).WithTimeout(10 * time.Second).WithPolling(50 * time.Millisecond).Should(Succeed())
		time.Sleep(300 * time.Millisecond) // the manager's cache sees the claim too
		Expect(k8s.Create(suiteCtx, restarting(userBinding(ns, "fresh-b", "prod", uid, "slow-sim"), 0, target))).To(Succeed())
		waitReady(ns, "fresh-a")
		waitReady(ns, "fresh-b")
		Consistently(func(g Gomega) string { return restartedAt(g, ns, "fresh-app") }).WithTimeout(2*DefaultRestartCoalesce).
			Should(BeEmpty(), "PRODUCT BUG: the first writes of new bindings restarted their Deployment")
	})

	It("keeps status.secretMAC the HMAC of the Secret's data: equal for equal data, new for a new token", func() {
		base64MAC := MatchRegexp(`^[A-Za-z0-9+/]{43}=$`)
		Expect(mac0).To(base64MAC)
		Eventually(func(g Gomega) {
			all, twin, merge := bindingOf(g, ns, "tpl-all"), bindingOf(g, ns, "tpl-twin"), bindingOf(g, ns, "tpl-merge")
			sAll, sTwin, sMerge := secretOf(g, ns, "tpl-all-token"), secretOf(g, ns, "tpl-twin-token"), secretOf(g, ns, "tpl-merge-token")
			g.Expect(string(sAll.Data["token"])).NotTo(equalToken(token0), "the token was renewed")
			g.Expect(all.Status.SecretMAC).To(base64MAC)
			g.Expect(all.Status.SecretMAC).NotTo(Equal(mac0))
			g.Expect(all.Status.SecretMAC).To(Equal(macOf(g, sAll.Data)))
			g.Expect(differingKeys(sAll.Data, sTwin.Data)).To(BeEmpty())
			g.Expect(twin.Status.SecretMAC).To(Equal(all.Status.SecretMAC), "equal data, equal MAC")
			g.Expect(merge.Status.SecretMAC).To(Equal(macOf(g, sMerge.Data)))
			g.Expect(merge.Status.SecretMAC).NotTo(Equal(all.Status.SecretMAC), "other data, other MAC")
		}).WithTimeout(2 * idpLifetime).WithPolling(time.Second).Should(Succeed())
	})

	It("restarts a Deployment made after the binding that its selector picks", func() {
		Eventually(func(g Gomega) {
			g.Expect(restartedAt(g, ns, "late")).NotTo(BeEmpty())
			g.Expect(bindingOf(g, ns, "sel").Status.LastRolloutRestart).NotTo(BeNil())
			evs, n := workloadEvents(g, ns, "late", ReasonRolloutRestarted)
			g.Expect(n).To(BeEquivalentTo(1))
			g.Expect(evs[0].Note).To(ContainSubstring("IdPTokenBinding sel changed"))
		}).WithTimeout(2 * idpLifetime).Should(Succeed())
		Expect(getBinding(ns, "sel").Status.LastForceRefresh).To(Equal("after-late"))
		Expect(eventReasons(ns, "sel")).To(ContainElement(ReasonRolloutRestarted))
	})

	It("restarts a Deployment that ten bindings of one identity name once when they are renewed together", func() {
		Eventually(func(g Gomega) string {
			fleetRestarted = restartedAt(g, ns, "api")
			return fleetRestarted
		}).WithTimeout(2 * idpLifetime).WithPolling(500 * time.Millisecond).ShouldNot(BeEmpty())
		at, err := time.Parse(time.RFC3339, fleetRestarted)
		Expect(err).NotTo(HaveOccurred())
		Expect(at).To(BeTemporally(">=", fleetRenewAt), "restarted for the renewal, not for the first writes")
		Consistently(func(g Gomega) string { return restartedAt(g, ns, "api") }).WithTimeout(8 * time.Second).Should(Equal(fleetRestarted))
		Eventually(func(g Gomega) {
			evs, n := workloadEvents(g, ns, "api", ReasonRolloutRestarted)
			g.Expect(n).To(BeEquivalentTo(1))
			g.Expect(evs[0].Type).To(Equal(corev1.EventTypeNormal))
			for i := range fleet {
				g.Expect(evs[0].Note).To(ContainSubstring(fleetName(i)), "one restart for all ten")
				st := bindingOf(g, ns, fleetName(i)).Status
				g.Expect(st.LastRolloutRestart).NotTo(BeNil())
				g.Expect(st.LastRolloutRestart.UTC().Format(time.RFC3339)).To(Equal(fleetRestarted))
			}
			_, all := workloadEvents(g, ns, "", ReasonRolloutRestarted)
			g.Expect(rolloutRestarts(g, ns)).To(BeEquivalentTo(all), "idptoken_rollout_restarts_total counts every restart")
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("restarts it again only when rolloutRestartMinInterval has passed, not at the next renewal", func() {
		Expect(fleetRestarted).NotTo(BeEmpty(), "needs the restart of the spec before")
		first, err := time.Parse(time.RFC3339, fleetRestarted)
		Expect(err).NotTo(HaveOccurred())
		By("the next renewal, within the minute, is deferred")
		Eventually(func() []string { return eventReasons(ns, fleetName(0)) }).WithTimeout(until(first.Add(55 * time.Second))).
			Should(ContainElement(ReasonRolloutRestartDeferred))
		Consistently(func(g Gomega) string { return restartedAt(g, ns, "api") }).WithTimeout(until(first.Add(58 * time.Second))).
			Should(Equal(fleetRestarted))
		By("deferred, not dropped: restarted once the minute has passed")
		var second string
		Eventually(func(g Gomega) string {
			second = restartedAt(g, ns, "api")
			return second
		}).WithTimeout(until(first.Add(80 * time.Second))).ShouldNot(Equal(fleetRestarted))
		at, err := time.Parse(time.RFC3339, second)
		Expect(err).NotTo(HaveOccurred())
		Expect(at).To(BeTemporally(">=", first.Add(time.Minute)))
	})
})
