package controller

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// The specs of this file play a team with the built-in edit role in its own namespace (it may
// create Secrets and bindings there) against other teams sharing a ClusterAuth0Tenant.

// forgedToken is what an attacker would like another team's Secret to hold.
const forgedToken = "forged-access-token"

// expectSimToken asserts that a binding's Secret holds a token the simulated IdP or Auth0 issued.
func expectSimToken(g Gomega, ns, secret string) {
	s, err := getSecret(ns, secret)
	g.Expect(err).NotTo(HaveOccurred())
	at := string(s.Data["access_token"])
	g.Expect(at).NotTo(Equal(forgedToken), "Secret %s/%s holds the forged token", ns, secret)
	_, ok := sim.AccessTokenValid(at)
	g.Expect(ok).To(BeTrue(), "Secret %s/%s holds a token the simulator did not issue", ns, secret)
}

var _ = Describe("Teams that share a lineage cannot touch each other's tokens", func() {
	var attacker *recorder
	BeforeEach(func() {
		attacker = newRecorder(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"access_token":"` + forgedToken + `","expires_in":3600}`))
		})
	})

	It("never adopts a per-binding state a team forged into a shared lineage, even one owned by its binding", func() {
		nsA, nsB := newNamespace(), newNamespace()
		uid := newUser("trust", true)
		tenant := newClusterTenant(authv1alpha1.ClusterTenantCondition{Namespaces: []string{nsA, nsB}, Users: []string{uid}})

		By("team A's binding waits on a tenant name that does not exist, so the lineage is still empty")
		evil := clusterBinding(nsA, "evil", "no-such-tenant", uid, "trust-sim")
		Expect(k8s.Create(suiteCtx, evil)).To(Succeed())
		waitReason(nsA, "evil", "False/"+authv1alpha1.ReasonTenantNotFound)
		evil = getBinding(nsA, "evil")
		evil.Spec.TenantRef.Name = tenant

		By("team A writes a state Secret with the operator's labels, the right source, its binding as owner and a forged endpoint")
		now := time.Now().UTC()
		forged := &binding.Token{
			AccessToken: forgedToken, RefreshToken: "forged-refresh-token",
			ObtainedAt: now, LastRefresh: now, RenewAt: now.Add(365 * 24 * time.Hour).Truncate(time.Second),
			Lineage:  legacySourceOf(evil),
			Identity: authv1alpha1.IdentityStatus{Provider: "oauth2", Connection: "trust-sim"},
			Endpoint: binding.Endpoint{TokenURL: attacker.URL + "/token", ClientID: "x", Provider: "oauth2"},
		}
		forged.Expiry.ExpiresAt = now.Add(365 * 24 * time.Hour).Truncate(time.Second)
		Expect(k8s.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "evil.idptoken-state", Namespace: nsA, Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelBinding: "evil",
				authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState,
			}, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: authv1alpha1.GroupVersion.String(), Kind: "IdPTokenBinding", Name: "evil", UID: evil.UID, Controller: ptr.To(true),
			}}},
			Data: forged.StateData(),
		})).To(Succeed())
		reads := sim.Stats().UserReads[uid]
		updateBinding(nsA, "evil", func(b *authv1alpha1.IdPTokenBinding) { b.Spec.TenantRef.Name = tenant })
		waitReady(nsA, "evil")

		By("team B binds the same identity: both Secrets hold what Auth0 and the IdP issued")
		Expect(k8s.Create(suiteCtx, clusterBinding(nsB, "victim", tenant, uid, "trust-sim"))).To(Succeed())
		waitReady(nsB, "victim")
		Eventually(func(g Gomega) {
			expectSimToken(g, nsA, "evil-token")
			expectSimToken(g, nsB, "victim-token")
		}).WithTimeout(10 * time.Second).Should(Succeed())
		Expect(sim.Stats().UserReads[uid]).To(BeNumerically(">", reads), "the lineage must start from Auth0")
		state, err := getSecret(operatorNS, stateNameOf(getBinding(nsB, "victim")))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(state.Data["access_token"])).NotTo(Equal(forgedToken))
		Expect(string(state.Data["idp_token_url"])).NotTo(ContainSubstring(attacker.URL))

		By("a refresh of the shared lineage goes to the connection's own endpoint, never the forged one")
		updateBinding(nsB, "victim", func(b *authv1alpha1.IdPTokenBinding) {
			metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, "1")
		})
		Eventually(func() string { return getBinding(nsB, "victim").Status.LastForceRefresh }).WithTimeout(45 * time.Second).Should(Equal("1"))
		Expect(attacker.requests()).To(BeEmpty())
	})

	It("ignores and reports a state Secret that is not the operator's, and never overwrites it", func() {
		ns := newNamespace()
		newTenant(ns, "prod")
		uid := newUser("trust", true)
		b := userBinding(ns, "mine", "prod", uid, "trust-sim")
		name := stateNameOf(b)
		now := time.Now().UTC()
		forged := &binding.Token{AccessToken: forgedToken, ObtainedAt: now, RenewAt: now.Add(time.Hour).Truncate(time.Second), Lineage: sourceOf(b)}
		forged.Expiry.ExpiresAt = now.Add(time.Hour).Truncate(time.Second)
		Expect(k8s.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState,
				authv1alpha1.LabelIdentity: sourceOf(b),
			}, Annotations: map[string]string{
				authv1alpha1.AnnotationTenant: tenantKeyOf(b).String(), authv1alpha1.AnnotationUserID: uid, authv1alpha1.AnnotationConnection: "trust-sim",
			}},
			Data: forged.StateData(),
		})).To(Succeed())
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		got := waitReason(ns, "mine", "False/"+authv1alpha1.ReasonSecretConflict)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring(name))
		Eventually(func() []string { return eventReasons(ns, "mine") }).Should(ContainElement(ReasonStateRejected))
		Consistently(func(g Gomega) {
			s, err := getSecret(ns, "mine-token")
			if err == nil {
				g.Expect(string(s.Data["access_token"])).NotTo(Equal(forgedToken))
			}
			st, err := getSecret(ns, name)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(st.Data["access_token"])).To(Equal(forgedToken), "the foreign Secret must not be overwritten")
		}).WithTimeout(3 * time.Second).Should(Succeed())
	})

	It("treats a Secret that carries only the binding's labels as SecretConflict, and never deletes or releases it", func() {
		ns := newNamespace()
		newTenant(ns, "prod")
		uid := newUser("trust", true)
		mine := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "keep-token", Namespace: ns, Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelBinding: "keep",
			}},
			StringData: map[string]string{"access_token": "someone-elses"},
		}
		Expect(k8s.Create(suiteCtx, mine)).To(Succeed())
		b := userBinding(ns, "keep", "prod", uid, "trust-sim")
		b.Spec.DeletionPolicy = authv1alpha1.DeletionPolicyRetain
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		got := waitReason(ns, "keep", "False/"+authv1alpha1.ReasonSecretConflict)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring("delete it"))

		By("deleting the binding leaves the Secret exactly as it was")
		Expect(k8s.Delete(suiteCtx, getBinding(ns, "keep"))).To(Succeed())
		Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "keep"}, &authv1alpha1.IdPTokenBinding{}))
		}).WithTimeout(20 * time.Second).Should(BeTrue())
		s, err := getSecret(ns, "keep-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["access_token"])).To(Equal("someone-elses"))
		Expect(s.Labels).To(HaveKeyWithValue(authv1alpha1.LabelBinding, "keep"), "not released either")
	})

	It("deletes a Retain binding's Secret when its permission is withdrawn, and keeps refresh tokens of a cluster tenant out of namespaces unless allowed", func() {
		ns := newNamespace()
		uid := newUser("trust", true)
		tenant := newClusterTenant(authv1alpha1.ClusterTenantCondition{Namespaces: []string{ns}, Users: []string{uid}})
		b := clusterBinding(ns, "kept", tenant, uid, "trust-sim")
		b.Spec.DeletionPolicy = authv1alpha1.DeletionPolicyRetain
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "kept")
		Expect(getSecret(ns, "kept-token")).Error().NotTo(HaveOccurred())

		By("the policy no longer grants the namespace: the Secret goes, whatever its deletionPolicy")
		setConditions(tenant, authv1alpha1.ClusterTenantCondition{Namespaces: []string{"elsewhere"}})
		waitReason(ns, "kept", "False/"+authv1alpha1.ReasonNotPermitted)
		Eventually(func() bool { _, err := getSecret(ns, "kept-token"); return apierrors.IsNotFound(err) }).
			WithTimeout(10 * time.Second).Should(BeTrue())

		By("includeRefreshToken needs a condition that allows it")
		setConditions(tenant, authv1alpha1.ClusterTenantCondition{Namespaces: []string{ns}, Users: []string{uid}})
		waitReady(ns, "kept")
		updateBinding(ns, "kept", func(b *authv1alpha1.IdPTokenBinding) { b.Spec.Secret.IncludeRefreshToken = true })
		got := waitReason(ns, "kept", "False/"+authv1alpha1.ReasonNotPermitted)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring("includeRefreshToken: Allowed"))
		Eventually(func() bool { _, err := getSecret(ns, "kept-token"); return apierrors.IsNotFound(err) }).
			WithTimeout(10 * time.Second).Should(BeTrue())
		setConditions(tenant, authv1alpha1.ClusterTenantCondition{
			Namespaces: []string{ns}, Users: []string{uid}, IncludeRefreshToken: authv1alpha1.IncludeRefreshTokenAllowed,
		})
		waitReady(ns, "kept")
		s, err := getSecret(ns, "kept-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.Data).To(HaveKey("refresh_token"))
	})

	It("acts on force-refresh values at most once per renewal spacing of the identity, queued, never dropped", func() {
		ns := newNamespace()
		newTenant(ns, "prod")
		uid := newUser("trust", true)
		for _, name := range []string{"f1", "f2"} {
			Expect(k8s.Create(suiteCtx, userBinding(ns, name, "prod", uid, "trust-sim"))).To(Succeed())
			waitReady(ns, name)
		}
		before := sim.Stats()
		for i := range 10 {
			name := []string{"f1", "f2"}[i%2]
			updateBinding(ns, name, func(b *authv1alpha1.IdPTokenBinding) {
				metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, fmt.Sprint("v", i))
			})
			time.Sleep(500 * time.Millisecond)
		}
		Consistently(func() int { return sim.Stats().IdPRefreshes["trust"] - before.IdPRefreshes["trust"] }).
			WithTimeout(15*time.Second).Should(BeNumerically("<=", 1), "one refresh per 30 s spacing")
		Eventually(func(g Gomega) {
			g.Expect(getBinding(ns, "f1").Status.LastForceRefresh).To(Equal("v8"))
			g.Expect(getBinding(ns, "f2").Status.LastForceRefresh).To(Equal("v9"))
		}).WithTimeout(90*time.Second).Should(Succeed(), "the last values are acted on")
		after := sim.Stats()
		Expect(after.IdPRefreshes["trust"] - before.IdPRefreshes["trust"]).To(BeNumerically("<=", 3))
		Expect(after.InvalidGrants - before.InvalidGrants).To(BeZero())
	})

	It("makes one lineage of a binding that names the primary connection and one that names none", func() {
		ns := newNamespace()
		newTenant(ns, "prod")
		uid := newUser("trust", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "named", "prod", uid, "trust-sim"))).To(Succeed())
		Expect(k8s.Create(suiteCtx, userBinding(ns, "primary", "prod", uid, ""))).To(Succeed())
		waitReady(ns, "named")
		got := waitReady(ns, "primary")
		Expect(got.Status.Identity).NotTo(BeNil())
		Expect(got.Status.Identity.Connection).To(Equal("trust-sim"))
		Expect(stateNameOf(got)).To(Equal(stateNameOf(getBinding(ns, "named"))))
		list := &corev1.SecretList{}
		Expect(k8s.List(suiteCtx, list, client.InNamespace(ns), client.MatchingLabels{authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState})).To(Succeed())
		Expect(list.Items).To(HaveLen(1), "one refresh-state Secret for the one identity")
		a, err := getSecret(ns, "named-token")
		Expect(err).NotTo(HaveOccurred())
		c, err := getSecret(ns, "primary-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(c.Data["access_token"]).To(Equal(a.Data["access_token"]))
	})
})
