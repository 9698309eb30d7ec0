package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

var _ = Describe("Identity lineage", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		newTenant(ns, "prod")
	})

	It("shares one refresh per lifetime among the bindings of one identity on a strict-rotation IdP", func() {
		uid := newUser("lineage", true)
		for _, name := range []string{"one", "two", "three"} {
			Expect(k8s.Create(suiteCtx, userBinding(ns, name, "prod", uid, "lineage-sim"))).To(Succeed())
		}
		for _, name := range []string{"one", "two", "three"} {
			waitReady(ns, name)
		}
		start := sim.Stats()
		tokens := map[string]bool{}
		deadline := time.Now().Add(2*idpLifetime + 5*time.Second)
		for time.Now().Before(deadline) {
			for _, name := range []string{"one", "two", "three"} {
				s, err := getSecret(ns, name+"-token")
				Expect(err).NotTo(HaveOccurred())
				_, ok := sim.AccessTokenValid(string(s.Data["access_token"]))
				Expect(ok).To(BeTrue(), "Secret %s-token holds an expired token", name)
				tokens[string(s.Data["access_token"])] = true
				Expect(readyReason(getBinding(ns, name).Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
			}
			time.Sleep(time.Second)
		}
		end := sim.Stats()
		Expect(end.InvalidGrants-start.InvalidGrants).To(BeZero(), "a spent refresh token was sent")
		for _, name := range []string{"one", "two", "three"} {
			Expect(condition(getBinding(ns, name), authv1alpha1.ConditionSyncFailing)).To(BeNil(), "binding %s", name)
		}
		refreshes := end.IdPRefreshes["lineage"] - start.IdPRefreshes["lineage"]
		// One lineage: each renewal is one refresh, whatever the number of bindings; three
		// independent lineages would need three per lifetime.
		Expect(refreshes).To(BeNumerically(">=", 2))
		Expect(refreshes).To(BeNumerically("<=", 3), "%d refreshes in 2 lifetimes for one identity", refreshes)
		Expect(len(tokens)).To(BeNumerically(">=", 3), "the renewed tokens reached the Secrets")
		list := &corev1.SecretList{}
		Expect(k8s.List(suiteCtx, list, client.InNamespace(ns), client.MatchingLabels{authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState})).To(Succeed())
		Expect(list.Items).To(HaveLen(1), "one refresh-state Secret per identity")

		By("deleting every binding of the identity collects its refresh state")
		for _, name := range []string{"one", "two", "three"} {
			Expect(k8s.Delete(suiteCtx, getBinding(ns, name))).To(Succeed())
		}
		Eventually(func() []corev1.Secret {
			Expect(k8s.List(suiteCtx, list, client.InNamespace(ns), client.MatchingLabels{authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState})).To(Succeed())
			return list.Items
		}).WithTimeout(30 * time.Second).Should(BeEmpty())
	})

	It("migrates a per-binding refresh state of an earlier version, newest refresh token first", func() {
		uid := newUser("lineage", true)
		By("an earlier version served the binding: it owns its per-binding state (the binding waits on a tenant that is not there yet)")
		b := userBinding(ns, "upgraded", "prod-later", uid, "lineage-sim")
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReason(ns, "upgraded", "False/"+authv1alpha1.ReasonTenantNotFound)
		b = getBinding(ns, "upgraded")
		b.Spec.TenantRef.Name = "prod"

		By("an earlier version refreshed once: Auth0's copy of the refresh token is now spent")
		auth0RT := sim.CurrentRefreshToken(uid, "lineage-sim")
		tok, err := (&idp.Refresher{HTTPClient: sim.Client()}).Refresh(suiteCtx,
			idp.Endpoint{TokenURL: sim.TokenURL("lineage"), ClientID: "lineage-client", ClientSecret: "sim_cs_lineage"}, auth0RT)
		Expect(err).NotTo(HaveOccurred())
		now := time.Now().UTC()
		old := &binding.Token{
			AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, Auth0RefreshHash: binding.HashToken(auth0RT),
			Expiry:     expiry.Determine(expiry.Evidence{IdPExpiresIn: tok.ExpiresIn, ObtainedAt: now}),
			ObtainedAt: now, LastRefresh: now, RenewAt: now.Add(time.Hour).Truncate(time.Second),
			Lineage:  legacySourceOf(b),
			Identity: authv1alpha1.IdentityStatus{Provider: "oauth2", Connection: "lineage-sim"},
		}
		Expect(k8s.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "upgraded.idptoken-state", Namespace: ns, Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelBinding: "upgraded",
				authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState,
			}, OwnerReferences: []metav1.OwnerReference{{
				APIVersion: authv1alpha1.GroupVersion.String(), Kind: "IdPTokenBinding", Name: b.Name, UID: b.UID, Controller: ptr.To(true),
			}}},
			Data: old.StateData(),
		})).To(Succeed())
		start := sim.Stats()

		By("the new manager adopts it, then renews from it without a spent token")
		updateBinding(ns, "upgraded", func(b *authv1alpha1.IdPTokenBinding) { b.Spec.TenantRef.Name = "prod" })
		waitReady(ns, "upgraded")
		Eventually(func() error { _, err := getSecret(ns, "upgraded.idptoken-state"); return err }).
			WithTimeout(10*time.Second).ShouldNot(Succeed(), "the per-binding state is removed")
		state, err := getSecret(ns, stateNameOf(b))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(state.Data["refresh_token"])).To(Equal(tok.RefreshToken))
		updateBinding(ns, "upgraded", func(b *authv1alpha1.IdPTokenBinding) {
			metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, "after-upgrade")
		})
		// Queued until 30 s after the earlier version's refresh (the renewal spacing).
		Eventually(func() string { return getBinding(ns, "upgraded").Status.LastForceRefresh }).
			WithTimeout(50 * time.Second).Should(Equal("after-upgrade"))
		waitReady(ns, "upgraded")
		end := sim.Stats()
		Expect(end.InvalidGrants - start.InvalidGrants).To(BeZero())
		Expect(end.IdPRefreshes["lineage"] - start.IdPRefreshes["lineage"]).To(Equal(1))
		Expect(sim.RefreshTokenSpent(tok.RefreshToken)).To(BeTrue(), "the migrated refresh token was the one used")
	})
})
