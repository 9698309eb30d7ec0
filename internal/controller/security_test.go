package controller

import (
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// recorder is an HTTPS server that records every request it receives: an attacker's endpoint
// must receive nothing, ever.
type recorder struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newRecorder(respond func(w http.ResponseWriter, r *http.Request)) *recorder {
	rec := &recorder{}
	rec.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		rec.mu.Lock()
		rec.bodies = append(rec.bodies, r.URL.Path+"?"+r.Form.Encode())
		rec.mu.Unlock()
		respond(w, r)
	}))
	rec.StartTLS()
	DeferCleanup(rec.Close)
	return rec
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.bodies...)
}

// caPEM is the recorder's certificate, so that the tenant trusts it: a refused request must be
// refused by the operator, not by TLS.
func (r *recorder) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate().Raw})
}

var _ = Describe("Security: no path for a binding author to send a secret where it should not go", func() {
	var (
		ns       string
		attacker *recorder
	)
	BeforeEach(func() {
		ns = newNamespace()
		attacker = newRecorder(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"attacker-chosen","token_type":"Bearer","expires_in":3600}`))
		})
	})

	// tenantTrusting creates a tenant that also trusts the attacker's certificate.
	tenantTrusting := func(name string, override authv1alpha1.RefreshOverridePolicy, extraCA ...[]byte) {
		GinkgoHelper()
		newTenant(ns, name)
		t := &authv1alpha1.Auth0Tenant{}
		Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, t)).To(Succeed())
		t.Spec.RefreshOverride = override
		t.Spec.CABundle = append(append(append([]byte{}, sim.CAPEM()...), attacker.caPEM()...), joinPEM(extraCA)...)
		Expect(k8s.Update(suiteCtx, t)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
			g.Expect(t.Status.ObservedGeneration).To(Equal(t.Generation))
			g.Expect(readyReason(t.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonAuthenticated))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	}
	oauthClientSecret := func(name string, labelled bool) {
		GinkgoHelper()
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			StringData: map[string]string{"client_id": "attacker-client", "client_secret": "sim_cs_labelled", "username": "payments", "password": "sim_cs_payments-db-password"},
		}
		if labelled {
			s.Labels = map[string]string{authv1alpha1.LabelOAuthClient: "true"}
		}
		Expect(k8s.Create(suiteCtx, s)).To(Succeed())
	}
	forceRefresh := func(name, value string) {
		updateBinding(ns, name, func(b *authv1alpha1.IdPTokenBinding) {
			metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, value)
		})
	}

	It("refuses spec.refresh overrides unless the tenant allows them, before any request", func() {
		tenantTrusting("prod", "") // default: Denied
		oauthClientSecret("idp-client", true)
		uid := newUser("google", true)
		before := sim.Stats().UserReads[uid]
		b := userBinding(ns, "steal", "prod", uid, "")
		b.Spec.Refresh.TokenURL = attacker.URL + "/token"
		b.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "idp-client"}
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		got := waitReason(ns, "steal", "False/"+authv1alpha1.ReasonInvalidRefreshConfig)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring("refreshOverride"))
		forceRefresh("steal", "1")
		Consistently(attacker.requests).WithTimeout(3 * time.Second).Should(BeEmpty())
		Expect(sim.Stats().UserReads[uid]).To(Equal(before), "a refused binding makes no Auth0 request")
		_, err := getSecret(ns, "steal-token")
		Expect(err).To(HaveOccurred(), "no token is written for a refused binding")
	})

	It("never reads or sends a Secret that is not labelled as an OAuth client, even where overrides are allowed", func() {
		tenantTrusting("prod", authv1alpha1.RefreshOverrideAllowed)
		oauthClientSecret("payments-db", false)
		uid := newUser("google", true)
		b := userBinding(ns, "db", "prod", uid, "")
		b.Spec.Refresh.TokenURL = attacker.URL + "/token"
		b.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "payments-db", ClientIDKey: "username", ClientSecretKey: "password"}
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		got := waitReason(ns, "db", "False/"+authv1alpha1.ReasonInvalidRefreshConfig)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring(`not labelled auth.idptoken.dev/oauth-client: "true"`))
		forceRefresh("db", "1")
		Consistently(attacker.requests).WithTimeout(3 * time.Second).Should(BeEmpty())

		By("labelling it makes it usable: only then does the allowed override receive the refresh")
		s := &corev1.Secret{}
		Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "payments-db"}, s)).To(Succeed())
		s.Labels = map[string]string{authv1alpha1.LabelOAuthClient: "true"}
		Expect(k8s.Update(suiteCtx, s)).To(Succeed())
		forceRefresh("db", "2")
		waitReady(ns, "db")
		// Auth0's copy has only an Estimated expiry, so the first sync refreshes it at once: at the
		// override, now that it may be used.
		Eventually(attacker.requests).WithTimeout(30 * time.Second).ShouldNot(BeEmpty())
		for _, r := range attacker.requests() {
			Expect(r).NotTo(ContainSubstring("sim_cs_google"), "the connection's client secret went to an override endpoint")
		}
	})

	It("does not follow a token endpoint's redirect, to https or to http", func() {
		for i, target := range []string{attacker.URL + "/stolen", strings.Replace(attacker.URL, "https://", "http://", 1) + "/stolen"} {
			redirector := newRecorder(func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, target, http.StatusTemporaryRedirect)
			})
			name := []string{"tls", "plain"}[i]
			if i == 0 {
				tenantTrusting("prod", authv1alpha1.RefreshOverrideAllowed, redirector.caPEM())
				oauthClientSecret("idp-client", true)
			} else {
				t := &authv1alpha1.Auth0Tenant{}
				Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "prod"}, t)).To(Succeed())
				t.Spec.CABundle = append(t.Spec.CABundle, redirector.caPEM()...)
				Expect(k8s.Update(suiteCtx, t)).To(Succeed())
			}
			uid := newUser("google", true)
			b := userBinding(ns, "redirect-"+name, "prod", uid, "")
			b.Spec.Refresh.TokenURL = redirector.URL + "/token"
			b.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "idp-client"}
			Expect(k8s.Create(suiteCtx, b)).To(Succeed())
			waitReady(ns, "redirect-"+name)
			before, err := getSecret(ns, "redirect-"+name+"-token")
			Expect(err).NotTo(HaveOccurred())
			forceRefresh("redirect-"+name, "1")
			Eventually(redirector.requests).WithTimeout(30*time.Second).ShouldNot(BeEmpty(), "the refresh was attempted")
			Eventually(func(g Gomega) {
				c := condition(getBinding(ns, "redirect-"+name), authv1alpha1.ConditionSyncFailing)
				g.Expect(c).NotTo(BeNil())
				g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonRefreshFailed))
			}).WithTimeout(30 * time.Second).Should(Succeed())
			Consistently(attacker.requests).WithTimeout(2 * time.Second).Should(BeEmpty())
			after, err := getSecret(ns, "redirect-"+name+"-token")
			Expect(err).NotTo(HaveOccurred())
			Expect(after.Data).To(Equal(before.Data), "a failed refresh leaves the Secret as it was")
		}
	})

	It("reports an apply the API server refuses as SecretWriteFailed without a hot loop", func() {
		newTenant(ns, "prod")
		uid := newUser("google", true)
		b := userBinding(ns, "huge", "prod", uid, "")
		// Each annotation is admitted; together they exceed the API server's 256 KiB limit.
		b.Spec.Secret.Annotations = map[string]authv1alpha1.AnnotationValue{}
		for i := range 64 {
			b.Spec.Secret.Annotations["example.com/a"+strings.Repeat("x", i%10)+string(rune('a'+i%26))+string(rune('a'+i/26))] = authv1alpha1.AnnotationValue(strings.Repeat("v", 4096))
		}
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		got := waitReason(ns, "huge", "False/"+authv1alpha1.ReasonSecretWriteFailed)
		attempts := got.Status.FailedAttempts
		Consistently(func() int32 { return getBinding(ns, "huge").Status.FailedAttempts }).
			WithTimeout(5 * time.Second).Should(BeNumerically("<=", attempts+1))
		Expect(condition(got, authv1alpha1.ConditionStalled)).NotTo(BeNil(), "kstatus: a write the spec makes impossible is Stalled")
	})
})

func joinPEM(blocks [][]byte) []byte {
	var out []byte
	for _, b := range blocks {
		out = append(out, b...)
	}
	return out
}
