package controller

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

var clusterTenantSeq int

// newClusterTenant creates a ClusterAuth0Tenant for the simulator with its credentials in the
// operator's namespace, and waits for Ready.
func newClusterTenant(conds ...authv1alpha1.ClusterTenantCondition) string {
	GinkgoHelper()
	clusterTenantSeq++
	name := fmt.Sprintf("shared-%d-%d", time.Now().UnixNano()%1e6, clusterTenantSeq)
	Expect(k8s.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-m2m", Namespace: operatorNS},
		StringData: map[string]string{"client_id": m2mClientID, "client_secret": m2mClientSecret},
	})).To(Succeed())
	t := &authv1alpha1.ClusterAuth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: authv1alpha1.ClusterAuth0TenantSpec{
			Auth0TenantSpec: authv1alpha1.Auth0TenantSpec{
				Domain:               sim.Domain(),
				CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: name + "-m2m"},
				CABundle:             sim.CAPEM(),
				RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
			},
			Conditions: conds,
		},
	}
	Expect(k8s.Create(suiteCtx, t)).To(Succeed())
	DeferCleanup(func() { _ = k8s.Delete(suiteCtx, t) })
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		g.Expect(readyReason(t.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonAuthenticated))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	return name
}

func clusterBinding(ns, name, tenant, userID, connection string) *authv1alpha1.IdPTokenBinding {
	b := userBinding(ns, name, tenant, userID, connection)
	b.Spec.TenantRef.Kind = authv1alpha1.TenantKindCluster
	return b
}

func setConditions(tenant string, conds ...authv1alpha1.ClusterTenantCondition) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		t := &authv1alpha1.ClusterAuth0Tenant{}
		if err := k8s.Get(suiteCtx, client.ObjectKey{Name: tenant}, t); err != nil {
			return err
		}
		t.Spec.Conditions = conds
		return k8s.Update(suiteCtx, t)
	})).To(Succeed())
}

func labelNamespace(ns string, labels map[string]string) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		n := &corev1.Namespace{}
		if err := k8s.Get(suiteCtx, client.ObjectKey{Name: ns}, n); err != nil {
			return err
		}
		n.Labels = labels
		return k8s.Update(suiteCtx, n)
	})).To(Succeed())
}

var _ = Describe("ClusterAuth0Tenant", func() {
	It("serves two namespaces with different user policies, keeps refresh state out of them, and refuses before any Auth0 request", func() {
		nsA, nsB := newNamespace(), newNamespace()
		alice, bob, carol := newUser("google", true), newUser("github", true), newUser("google", true)
		labelNamespace(nsB, map[string]string{"idptoken.dev/tenant": "shared"})
		tenant := newClusterTenant(
			authv1alpha1.ClusterTenantCondition{Namespaces: []string{nsA}, Users: []string{alice}},
			authv1alpha1.ClusterTenantCondition{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"idptoken.dev/tenant": "shared"}},
				Users:             []string{bob, alice}, Connections: []string{"github-sim", "google-sim"},
			},
		)
		Expect(k8s.Create(suiteCtx, clusterBinding(nsA, "alice", tenant, alice, ""))).To(Succeed())
		Expect(k8s.Create(suiteCtx, clusterBinding(nsB, "bob", tenant, bob, "github-sim"))).To(Succeed())
		Expect(k8s.Create(suiteCtx, clusterBinding(nsB, "alice", tenant, alice, "google-sim"))).To(Succeed())
		waitReady(nsA, "alice")
		waitReady(nsB, "bob")
		waitReady(nsB, "alice")

		By("keeping every identity's refresh state in the operator's namespace, none in the teams'")
		for _, ns := range []string{nsA, nsB} {
			list := &corev1.SecretList{}
			Expect(k8s.List(suiteCtx, list, client.InNamespace(ns), client.MatchingLabels{authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState})).To(Succeed())
			Expect(list.Items).To(BeEmpty(), "refresh state in team namespace %s", ns)
			s, err := getSecret(ns, "alice-token")
			Expect(err).NotTo(HaveOccurred())
			Expect(s.Data).NotTo(HaveKey("refresh_token"))
		}
		state, err := getSecret(operatorNS, stateNameOf(clusterBinding(nsB, "bob", tenant, bob, "github-sim")))
		Expect(err).NotTo(HaveOccurred())
		// github-sim rotates on each refresh, and bob's Estimated expiry was refreshed at once.
		Expect(sim.RefreshTokenLive(string(state.Data["refresh_token"]))).To(BeTrue(), "the state holds the lineage's live refresh token")
		Expect(state.OwnerReferences).To(ConsistOf(HaveField("Kind", "ClusterAuth0Tenant")))

		By("refusing carol, whom no condition grants, without asking Auth0 about her")
		Expect(k8s.Create(suiteCtx, clusterBinding(nsB, "carol", tenant, carol, "google-sim"))).To(Succeed())
		got := waitReason(nsB, "carol", "False/"+authv1alpha1.ReasonNotPermitted)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring(carol))
		Expect(sim.Stats().UserReads[carol]).To(BeZero())
		Eventually(func() []string { return eventReasons(nsB, "carol") }).Should(ContainElement(authv1alpha1.ReasonNotPermitted))

		By("loosening the policy: carol becomes Ready within seconds, without a restart")
		setConditions(tenant,
			authv1alpha1.ClusterTenantCondition{Namespaces: []string{nsA}, Users: []string{alice}},
			authv1alpha1.ClusterTenantCondition{
				NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"idptoken.dev/tenant": "shared"}},
				Users:             []string{bob, alice, carol}, Connections: []string{"github-sim", "google-sim"},
			})
		waitReady(nsB, "carol")

		By("tightening it: namespace A loses alice, and her Secret there")
		setConditions(tenant, authv1alpha1.ClusterTenantCondition{
			NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"idptoken.dev/tenant": "shared"}},
			Users:             []string{bob, alice, carol}, Connections: []string{"github-sim", "google-sim"},
		})
		waitReason(nsA, "alice", "False/"+authv1alpha1.ReasonNotPermitted)
		Eventually(func() error { _, err := getSecret(nsA, "alice-token"); return err }).WithTimeout(10 * time.Second).ShouldNot(Succeed())
		waitReady(nsB, "alice")

		By("relabelling namespace B: its bindings are re-evaluated")
		labelNamespace(nsB, map[string]string{"idptoken.dev/tenant": "other"})
		waitReason(nsB, "bob", "False/"+authv1alpha1.ReasonNotPermitted)
		labelNamespace(nsB, map[string]string{"idptoken.dev/tenant": "shared"})
		waitReady(nsB, "bob")
	})

	It("denies everything while it has no conditions", func() {
		ns := newNamespace()
		tenant := newClusterTenant()
		uid := newUser("google", true)
		Expect(k8s.Create(suiteCtx, clusterBinding(ns, "nobody", tenant, uid, ""))).To(Succeed())
		got := waitReason(ns, "nobody", "False/"+authv1alpha1.ReasonNotPermitted)
		Expect(readyMessage(got.Status.Conditions)).To(ContainSubstring("no conditions"))
		Expect(condition(got, authv1alpha1.ConditionStalled)).NotTo(BeNil())
		Expect(sim.Stats().UserReads[uid]).To(BeZero())
	})
})
