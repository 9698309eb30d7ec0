package controller

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

var userSeq int

// newUser adds a simulated Auth0 user with one identity issued by the named IdP.
func newUser(idpName string, offline bool) string {
	userSeq++
	uid := fmt.Sprintf("%d%d", time.Now().UnixNano()%1e9, userSeq)
	sim.AddUser("oauth2|"+uid, auth0sim.IdentitySpec{
		Connection: idpName + "-sim", Provider: "oauth2", UserID: uid, IsSocial: true, IdP: idpName, OfflineAccess: offline,
	})
	return "oauth2|" + uid
}

func eventReasons(ns, name string) []string {
	GinkgoHelper()
	list := &eventsv1.EventList{}
	Expect(k8s.List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

func condition(b *authv1alpha1.IdPTokenBinding, typ string) *metav1.Condition {
	for i := range b.Status.Conditions {
		if b.Status.Conditions[i].Type == typ {
			return &b.Status.Conditions[i]
		}
	}
	return nil
}

var _ = Describe("IdPTokenBinding", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		newTenant(ns, "prod")
	})

	It("writes a user's IdP token into the Secret with labels, annotations, ownerReference, status and Events", func() {
		uid := newUser("google", true)
		b := userBinding(ns, "alice", "prod", uid, "")
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		b = waitReady(ns, "alice")

		s, err := getSecret(ns, "alice-token")
		Expect(err).NotTo(HaveOccurred())
		// Auth0's copy has only an Estimated expiry (last_login + expires_in): the operator refreshes
		// it at once, so the Secret holds a token the IdP issued, with the IdP's own expiry.
		Expect(string(s.Data["access_token"])).NotTo(equalToken(sim.CurrentAccessToken(uid, "google-sim")), "the Secret holds Auth0's copy, not a refreshed token")
		Expect(s.Data).NotTo(HaveKey("refresh_token"), "the refresh token must not reach pods by default")
		Expect(s.Data).To(HaveKey("expires_at"))
		Expect(s.Type).To(Equal(corev1.SecretTypeOpaque))
		Expect(s.Labels).To(HaveKeyWithValue("app.kubernetes.io/managed-by", "idptoken-operator"))
		Expect(s.Labels).To(HaveKeyWithValue("auth.idptoken.dev/binding", "alice"))
		Expect(s.Annotations).To(HaveKeyWithValue("auth.idptoken.dev/provider", "oauth2"))
		Expect(s.Annotations).To(HaveKeyWithValue("auth.idptoken.dev/connection", "google-sim"))
		Expect(s.Annotations).To(HaveKeyWithValue("auth.idptoken.dev/expires-at", string(s.Data["expires_at"])))
		Expect(s.OwnerReferences).To(HaveLen(1))
		Expect(s.OwnerReferences[0].UID).To(Equal(b.UID))
		Expect(*s.OwnerReferences[0].Controller).To(BeTrue())

		exp, ok := sim.AccessTokenValid(string(s.Data["access_token"]))
		Expect(ok).To(BeTrue())
		Expect(b.Status.ExpiresAt.Time).To(BeTemporally("~", exp, time.Second))
		Expect(b.Status.ExpirySource).To(Equal(authv1alpha1.ExpirySourceIdPResponse))
		Expect(b.Status.NextRefreshTime.Time).To(BeTemporally("<", b.Status.ExpiresAt.Time))
		Expect(b.Status.Identity).To(Equal(&authv1alpha1.IdentityStatus{Provider: "oauth2", Connection: "google-sim", UserID: strings.TrimPrefix(uid, "oauth2|")}))
		Expect(b.Status.ObservedGeneration).To(Equal(b.Generation))
		Expect(b.Status.LastSyncTime).NotTo(BeNil())

		state, err := getSecret(ns, stateNameOf(b))
		Expect(err).NotTo(HaveOccurred())
		Expect(state.Labels).To(HaveKeyWithValue("auth.idptoken.dev/role", "refresh-state"))
		Expect(state.Labels).To(HaveKeyWithValue("auth.idptoken.dev/identity", strings.TrimPrefix(stateNameOf(b), "idptoken-state-")))
		Expect(state.Annotations).To(HaveKeyWithValue("auth.idptoken.dev/user-id", uid))
		Expect(state.Annotations).To(HaveKeyWithValue("auth.idptoken.dev/tenant", "Auth0Tenant/"+ns+"/prod"))
		Expect(string(state.Data["refresh_token"])).To(equalToken(sim.CurrentRefreshToken(uid, "google-sim")), "the state holds Auth0's refresh token (the IdP does not rotate)")
		Expect(state.OwnerReferences).To(HaveLen(1))

		Eventually(func() []string { return eventReasons(ns, "alice") }).Should(ContainElement("Refreshed"))
	})

	It("includes the refresh token only when asked", func() {
		uid := newUser("google", true)
		b := userBinding(ns, "with-rt", "prod", uid, "google-sim")
		b.Spec.Secret.IncludeRefreshToken = true
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "with-rt")
		s, err := getSecret(ns, "with-rt-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["refresh_token"])).To(Equal(sim.CurrentRefreshToken(uid, "google-sim")))
	})

	It("writes an enterprise connection's admin token", func() {
		b := &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: ns},
			Spec: authv1alpha1.IdPTokenBindingSpec{
				TenantRef:  authv1alpha1.TenantRef{Name: "prod"},
				Connection: &authv1alpha1.ConnectionSource{ID: "con_admin"},
				Secret:     authv1alpha1.SecretTarget{Name: "admin-token"},
			},
		}
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		b = waitReady(ns, "admin")
		s, err := getSecret(ns, "admin-token")
		Expect(err).NotTo(HaveOccurred())
		at, _ := sim.ConnectionAdminTokens("con_admin")
		if string(s.Data["access_token"]) != at { // it may have been refreshed already
			_, ok := sim.AccessTokenValid(string(s.Data["access_token"]))
			Expect(ok).To(BeTrue())
		}
		Expect(b.Status.ExpirySource).To(BeElementOf(authv1alpha1.ExpirySourceJWT, authv1alpha1.ExpirySourceIdPResponse))
		Expect(b.Status.Identity.Connection).To(Equal("workspace-admin"))
		Expect(s.Annotations).To(HaveKeyWithValue("auth.idptoken.dev/provider", "oauth2"))
	})

	It("reports a user Auth0 does not know as UserNotFound, and writes nothing", func() {
		Expect(k8s.Create(suiteCtx, userBinding(ns, "ghost", "prod", "oauth2|does-not-exist", ""))).To(Succeed())
		b := waitReason(ns, "ghost", "False/"+authv1alpha1.ReasonUserNotFound)
		Expect(condition(b, authv1alpha1.ConditionReady).Message).To(ContainSubstring("does not exist"))
		_, err := getSecret(ns, "ghost-token")
		Expect(apierrors.IsNotFound(err)).To(BeTrue())
		Eventually(func() []string { return eventReasons(ns, "ghost") }).Should(ContainElement(authv1alpha1.ReasonUserNotFound))
	})

	It("reports a missing identity and a missing tenant", func() {
		uid := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "noid", "prod", uid, "github-sim"))).To(Succeed())
		waitReason(ns, "noid", "False/"+authv1alpha1.ReasonIdentityNotFound)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "notenant", "staging", uid, ""))).To(Succeed())
		waitReason(ns, "notenant", "False/"+authv1alpha1.ReasonTenantNotFound)
		By("creating the tenant, the binding recovers by itself")
		newTenant(ns, "staging")
		waitReady(ns, "notenant")
	})

	It("never touches a Secret it does not manage", func() {
		uid := newUser("google", true)
		mine := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "taken-token", Namespace: ns}, StringData: map[string]string{"access_token": "user-data"}}
		Expect(k8s.Create(suiteCtx, mine)).To(Succeed())
		Expect(k8s.Create(suiteCtx, userBinding(ns, "taken", "prod", uid, ""))).To(Succeed())
		waitReason(ns, "taken", "False/"+authv1alpha1.ReasonSecretConflict)
		s, err := getSecret(ns, "taken-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["access_token"])).To(Equal("user-data"))
		Expect(s.Labels).To(BeEmpty())
		Expect(s.ResourceVersion).To(Equal(mine.ResourceVersion))
	})

	It("restores a deleted or hand-edited Secret promptly", func() {
		uid := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "heal", "prod", uid, ""))).To(Succeed())
		waitReady(ns, "heal")
		s, err := getSecret(ns, "heal-token")
		Expect(err).NotTo(HaveOccurred())
		want := string(s.Data["access_token"])

		// How long each took is recorded (go test -v shows it), not asserted: the machines are
		// shared. The bound only says that it happened at all, without a renewal (an hour away).
		healed := func(what string, start time.Time) {
			Eventually(func(g Gomega) {
				s, err := getSecret(ns, "heal-token")
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(string(s.Data["access_token"])).To(Equal(want))
			}).WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Succeed())
			AddReportEntry(what+" Secret restored in", time.Since(start).Round(time.Millisecond).String())
		}
		s.Data["access_token"] = []byte("tampered")
		Expect(k8s.Update(suiteCtx, s)).To(Succeed())
		healed("an edited", time.Now())

		Expect(k8s.Delete(suiteCtx, s)).To(Succeed())
		healed("a deleted", time.Now())
	})

	It("follows changes of spec.secret: a new name replaces the old Secret, a removed label goes", func() {
		uid := newUser("google", true)
		b := userBinding(ns, "moving", "prod", uid, "")
		b.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "a"}
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "moving")
		updateBinding(ns, "moving", func(b *authv1alpha1.IdPTokenBinding) {
			b.Spec.Secret.Name = "moved-token"
			b.Spec.Secret.Labels = nil
		})
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "moved-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Labels).NotTo(HaveKey("team"))
			g.Expect(s.Data).To(HaveKey("access_token"))
			_, err = getSecret(ns, "moving-token")
			g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the old Secret must go")
		}).WithTimeout(10 * time.Second).Should(Succeed())

		updateBinding(ns, "moving", func(b *authv1alpha1.IdPTokenBinding) {
			b.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "b"}
		})
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "moved-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Labels).To(HaveKeyWithValue("team", "b"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
		updateBinding(ns, "moving", func(b *authv1alpha1.IdPTokenBinding) { b.Spec.Secret.Labels = nil })
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "moved-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Labels).NotTo(HaveKey("team"))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("keeps a retained Secret, released from management, when the binding is deleted", func() {
		uid := newUser("google", true)
		b := userBinding(ns, "keep", "prod", uid, "")
		b.Spec.DeletionPolicy = authv1alpha1.DeletionPolicyRetain
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "keep")
		s, err := getSecret(ns, "keep-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.OwnerReferences).To(BeEmpty(), "a retained Secret must not be garbage-collected with its binding")
		token := string(s.Data["access_token"])

		Expect(k8s.Delete(suiteCtx, getBinding(ns, "keep"))).To(Succeed())
		Eventually(func() bool {
			err := k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "keep"}, &authv1alpha1.IdPTokenBinding{})
			return apierrors.IsNotFound(err)
		}).WithTimeout(10 * time.Second).Should(BeTrue())
		s, err = getSecret(ns, "keep-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(string(s.Data["access_token"])).To(Equal(token))
		Expect(s.Labels).NotTo(HaveKey("auth.idptoken.dev/binding"))
		Expect(s.Labels).NotTo(HaveKey("app.kubernetes.io/managed-by"))
	})

	It("keeps the Secret byte-identical while Auth0 or the IdP fail, says so, and recovers by itself", func() {
		uid := newUser("google", true)
		b := userBinding(ns, "faulty", "prod", uid, "")
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "faulty")
		before, err := getSecret(ns, "faulty-token")
		Expect(err).NotTo(HaveOccurred())

		sim.SetFault("/idp/google/token", auth0sim.Fault{Status: 500})
		DeferCleanup(sim.ClearFaults)
		Eventually(func(g Gomega) {
			b := getBinding(ns, "faulty")
			c := condition(b, authv1alpha1.ConditionSyncFailing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonRefreshFailed))
			g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
			g.Expect(b.Status.FailedAttempts).To(BeNumerically(">=", 1))
			g.Expect(b.Status.LastFailureTime).NotTo(BeNil())
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
		during, err := getSecret(ns, "faulty-token")
		Expect(err).NotTo(HaveOccurred())
		Expect(during.Data).To(Equal(before.Data))
		Expect(during.ResourceVersion).To(Equal(before.ResourceVersion))

		sim.ClearFaults()
		Eventually(func(g Gomega) {
			b := getBinding(ns, "faulty")
			g.Expect(condition(b, authv1alpha1.ConditionSyncFailing)).To(BeNil())
			g.Expect(b.Status.FailedAttempts).To(BeZero())
			s, err := getSecret(ns, "faulty-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.Data["access_token"]).NotTo(Equal(before.Data["access_token"]))
		}).WithTimeout(60 * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	DescribeTable("backs off on Management API faults for a new binding and recovers",
		func(f auth0sim.Fault) {
			uid := newUser("google", true)
			sim.SetFault("/api/v2/users/", f)
			DeferCleanup(sim.ClearFaults)
			Expect(k8s.Create(suiteCtx, userBinding(ns, "flaky", "prod", uid, ""))).To(Succeed())
			b := waitReason(ns, "flaky", "False/"+authv1alpha1.ReasonManagementAPIError)
			Expect(b.Status.FailedAttempts).To(BeNumerically(">=", 1))
			_, err := getSecret(ns, "flaky-token")
			Expect(apierrors.IsNotFound(err)).To(BeTrue())
			sim.ClearFaults()
			Eventually(func(g Gomega) {
				g.Expect(readyReason(getBinding(ns, "flaky").Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
			}).WithTimeout(40 * time.Second).Should(Succeed())
		},
		Entry("500", auth0sim.Fault{Status: 500}),
		Entry("malformed JSON", auth0sim.Fault{Malformed: true}),
		Entry("oversize body", auth0sim.Fault{Oversize: true}),
		Entry("hang", auth0sim.Fault{Hang: true}),
	)

	It("rides out a 429 storm without failing the sync", func() {
		uid := newUser("google", true)
		sim.SetFault("/api/v2/users/", auth0sim.Fault{Status: 429, RetryAfter: time.Second, Times: 2})
		DeferCleanup(sim.ClearFaults)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "storm", "prod", uid, ""))).To(Succeed())
		b := waitReady(ns, "storm")
		Expect(b.Status.FailedAttempts).To(BeZero())
	})

	It("reports a tenant whose credentials Auth0 refuses", func() {
		Expect(k8s.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "bad-m2m", Namespace: ns},
			StringData: map[string]string{"client_id": m2mClientID, "client_secret": "wrong"},
		})).To(Succeed())
		t := &authv1alpha1.Auth0Tenant{
			ObjectMeta: metav1.ObjectMeta{Name: "bad", Namespace: ns},
			Spec: authv1alpha1.Auth0TenantSpec{Domain: sim.Domain(), CABundle: sim.CAPEM(),
				CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: "bad-m2m"}},
		}
		Expect(k8s.Create(suiteCtx, t)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
			g.Expect(readyReason(t.Status.Conditions)).To(Equal("False/" + authv1alpha1.ReasonAuthenticationFailed))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		uid := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "refused", "bad", uid, ""))).To(Succeed())
		waitReason(ns, "refused", "False/"+authv1alpha1.ReasonTenantNotReady)

		t2 := &authv1alpha1.Auth0Tenant{
			ObjectMeta: metav1.ObjectMeta{Name: "nocreds", Namespace: ns},
			Spec:       authv1alpha1.Auth0TenantSpec{Domain: sim.Domain(), CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: "absent"}},
		}
		Expect(k8s.Create(suiteCtx, t2)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t2), t2)).To(Succeed())
			g.Expect(readyReason(t2.Status.Conditions)).To(Equal("False/" + authv1alpha1.ReasonCredentialsNotFound))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})

	It("reports missing Management API scopes", func() {
		sim.AddM2MClient("narrow-app", "sim_cs_narrow", "read:users")
		Expect(k8s.Create(suiteCtx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "narrow-m2m", Namespace: ns},
			StringData: map[string]string{"client_id": "narrow-app", "client_secret": "sim_cs_narrow"},
		})).To(Succeed())
		t := &authv1alpha1.Auth0Tenant{
			ObjectMeta: metav1.ObjectMeta{Name: "narrow", Namespace: ns},
			Spec: authv1alpha1.Auth0TenantSpec{Domain: sim.Domain(), CABundle: sim.CAPEM(),
				CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: "narrow-m2m"}},
		}
		Expect(k8s.Create(suiteCtx, t)).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
			g.Expect(readyReason(t.Status.Conditions)).To(Equal("False/" + authv1alpha1.ReasonMissingScopes))
			g.Expect(t.Status.GrantedScopes).To(Equal([]string{"read:users"}))
		}).WithTimeout(20 * time.Second).Should(Succeed())
		Expect(readyMessage(t.Status.Conditions)).To(ContainSubstring("read:user_idp_tokens"))
	})

	It("uses one M2M token and about one user read per user for many bindings", func() {
		var users []string
		for range 4 {
			users = append(users, newUser("google", true))
		}
		before := sim.Stats()
		for i := range 20 {
			Expect(k8s.Create(suiteCtx, userBinding(ns, fmt.Sprintf("many-%d", i), "prod", users[i%4], ""))).To(Succeed())
		}
		for i := range 20 {
			waitReady(ns, fmt.Sprintf("many-%d", i))
		}
		after := sim.Stats()
		reads := 0
		for _, u := range users {
			reads += after.UserReads[u] - before.UserReads[u]
		}
		GinkgoWriter.Printf("economy: 20 bindings over 4 users: %d user reads, %d M2M tokens, %d connection reads\n",
			reads, after.M2MTokensIssued-before.M2MTokensIssued, after.ConnectionReads-before.ConnectionReads)
		Expect(reads).To(Equal(4))
		Expect(after.M2MTokensIssued-before.M2MTokensIssued).To(BeZero(), "the tenant's token was minted before and is reused")
	})
})

func readyMessage(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == authv1alpha1.ConditionReady {
			return c.Message
		}
	}
	return ""
}
