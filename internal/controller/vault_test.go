package controller

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

var _ = Describe("Token Vault", func() {
	var ns string
	const worker = "token-vault-worker"
	BeforeEach(func() {
		ns = newNamespace()
		newTenant(ns, "prod")
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		Expect(err).NotTo(HaveOccurred())
		pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
		Expect(err).NotTo(HaveOccurred())
		sim.AddTokenVaultClient(worker+"-"+ns, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "")
		Expect(k8s.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: worker, Namespace: ns},
			Data: map[string][]byte{
				"client_id":   []byte(worker + "-" + ns),
				"private_key": pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
			},
		})).To(Succeed())
		t := &authv1alpha1.Auth0Tenant{}
		Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "prod"}, t)).To(Succeed())
		t.Spec.TokenVault = &authv1alpha1.TokenVaultSpec{
			CredentialsSecretRef: authv1alpha1.LocalSecretRef{Name: worker},
			RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 20, Burst: 20},
		}
		Expect(k8s.Update(suiteCtx, t)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
			c := findCondition(t.Status.Conditions, authv1alpha1.ConditionTokenVaultReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(string(c.Status) + "/" + c.Reason).To(Equal("True/" + authv1alpha1.ReasonTokenVaultConfigured))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})

	vaultUser := func() string {
		userSeq++
		uid := fmt.Sprintf("v%d%d", time.Now().UnixNano()%1e9, userSeq)
		sim.AddUser("oauth2|"+uid, auth0sim.IdentitySpec{
			Connection: "vault-sim", Provider: "oauth2", UserID: uid, IsSocial: true, IdP: "google", OfflineAccess: true,
		})
		return "oauth2|" + uid
	}

	It("keeps a Secret fresh from Token Vault over several lifetimes, with valid unique subject tokens and no refresh token anywhere", func() {
		uid := vaultUser()
		b := userBinding(ns, "vaulted", "prod", uid, "vault-sim")
		b.Spec.User.Source = authv1alpha1.TokenSourceTokenVault
		b.Spec.Secret.IncludeRefreshToken = true // there is none to include
		start := sim.Stats()
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		got := waitReady(ns, "vaulted")
		Expect(got.Status.ExpirySource).To(Equal(authv1alpha1.ExpirySourceAuth0))

		tokens := map[string]bool{}
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "vaulted-token")
			g.Expect(err).NotTo(HaveOccurred())
			tokens[string(s.Data["access_token"])] = true
			g.Expect(len(tokens)).To(BeNumerically(">=", 3))
		}).WithTimeout(3 * idpLifetime).WithPolling(time.Second).Should(Succeed())
		waitReady(ns, "vaulted")

		end := sim.Stats()
		Expect(end.TokenVaultInvalidSubjectTokens - start.TokenVaultInvalidSubjectTokens).To(BeZero())
		Expect(end.TokenVaultReplays - start.TokenVaultReplays).To(BeZero())
		seen := map[string]bool{}
		n := 0
		for _, rec := range sim.TokenVaultSubjects() {
			if rec.UserID != uid {
				continue
			}
			n++
			Expect(seen[rec.JTI]).To(BeFalse(), "jti %s reused", rec.JTI)
			seen[rec.JTI] = true
			Expect(rec.AuditContext).To(Equal("idptoken-operator " + ns + "/vaulted"))
			Expect(rec.Lifetime).To(BeNumerically("<=", time.Minute))
		}
		Expect(n).To(BeNumerically(">=", 3))

		By("holding no refresh token in any Secret")
		list := &corev1.SecretList{}
		Expect(k8s.List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
		for _, s := range list.Items {
			Expect(s.Data["refresh_token"]).To(BeEmpty(), "Secret %s holds a refresh token", s.Name)
		}
	})

	It("tells a user binding on a Token Vault connection to use source TokenVault", func() {
		uid := vaultUser()
		Expect(k8s.Create(suiteCtx, userBinding(ns, "legacy", "prod", uid, "vault-sim"))).To(Succeed())
		got := waitReason(ns, "legacy", "False/"+authv1alpha1.ReasonTokenVaultEnabled)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring("spec.user.source: TokenVault"))
	})

	It("reports Auth0's 401 to a bad worker client on the tenant, not as IdentityNotFound on the binding", func() {
		uid := vaultUser()
		b := userBinding(ns, "bad-worker", "prod", uid, "vault-sim")
		b.Spec.User.Source = authv1alpha1.TokenSourceTokenVault
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "bad-worker")

		// Auth0 answers a worker client it does not know 401 access_denied "Unauthorized".
		sim.SetTokenVaultBadClientAccessDenied(true)
		DeferCleanup(sim.SetTokenVaultBadClientAccessDenied, false)
		other, err := rsa.GenerateKey(rand.Reader, 2048)
		Expect(err).NotTo(HaveOccurred())
		s := &corev1.Secret{}
		Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: worker}, s)).To(Succeed())
		s.Data["private_key"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(other)})
		Expect(k8s.Update(suiteCtx, s)).To(Succeed())
		// The tenant builds the new client at its next look (every minute at most).
		Eventually(func(g Gomega) {
			updateBinding(ns, "bad-worker", func(b *authv1alpha1.IdPTokenBinding) {
				metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, time.Now().String())
			})
			c := condition(getBinding(ns, "bad-worker"), authv1alpha1.ConditionSyncFailing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonTenantNotReady), "the worker client's problem is the tenant's")
		}).WithTimeout(90 * time.Second).WithPolling(5 * time.Second).Should(Succeed())

		t := &authv1alpha1.Auth0Tenant{}
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "prod"}, t)).To(Succeed())
			c := findCondition(t.Status.Conditions, authv1alpha1.ConditionTokenVaultReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(string(c.Status) + "/" + c.Reason).To(Equal("False/" + authv1alpha1.ReasonTokenVaultNotAuthorized))
		}).WithTimeout(90 * time.Second).Should(Succeed())
	})

	It("keeps the Secret untouched through Token Vault faults, and recovers", func() {
		uid := vaultUser()
		b := userBinding(ns, "faults", "prod", uid, "vault-sim")
		b.Spec.User.Source = authv1alpha1.TokenSourceTokenVault
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "faults")
		before, err := getSecret(ns, "faults-token")
		Expect(err).NotTo(HaveOccurred())
		for i, f := range []auth0sim.Fault{{Status: 500}, {Status: 429, RetryAfter: 2 * time.Second}, {Malformed: true}, {Status: 401}, {Status: 403}} {
			sim.SetFault("/oauth/token", f)
			updateBinding(ns, "faults", func(b *authv1alpha1.IdPTokenBinding) {
				metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, fmt.Sprint(i))
			})
			Eventually(func(g Gomega) {
				c := condition(getBinding(ns, "faults"), authv1alpha1.ConditionSyncFailing)
				g.Expect(c).NotTo(BeNil())
			}).WithTimeout(20 * time.Second).Should(Succeed())
			s, err := getSecret(ns, "faults-token")
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Data).To(Equal(before.Data))
			Expect(readyReason(getBinding(ns, "faults").Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
			sim.ClearFaults()
			// A refused subject token (401) waits for a change rather than retrying: give it one.
			updateBinding(ns, "faults", func(b *authv1alpha1.IdPTokenBinding) {
				metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, fmt.Sprint("recover-", i))
			})
			Eventually(func() *metav1.Condition {
				return condition(getBinding(ns, "faults"), authv1alpha1.ConditionSyncFailing)
			}).
				WithTimeout(30 * time.Second).Should(BeNil())
		}
	})
})

func findCondition(conds []metav1.Condition, typ string) *metav1.Condition {
	for i := range conds {
		if conds[i].Type == typ {
			return &conds[i]
		}
	}
	return nil
}
