package realidp

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// Every comparison of tokens is a comparison of Fingerprints: a failed assertion prints no token.

var _ = Describe("The operator against Ory fosite as the IdP", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		newTenant(ns)
	})

	It("syncs the access token fosite issued at the user's login into the Secret", func() {
		l := newLineage(strategyOAuth2)
		createBinding(ns, "sync", l)
		b := waitReady(ns, "sync")

		Expect(b.Status.ExpirySource).To(Equal(authv1alpha1.ExpirySourceJWT), "fosite's access tokens are JWTs")
		Expect(b.Status.ExpiresAt.Time).To(BeTemporally("~", l.login.Expiry, 2*time.Second))
		at := accessToken(Default, ns, "sync")
		Expect(Fingerprint(at)).To(Equal(Fingerprint(l.login.AccessToken)))
		Expect(idp.Active(at, false)).To(BeTrue(), "fosite must know the token in the Secret as an active access token")
		Expect(Fingerprint(l.stateRefreshToken(ns))).To(Equal(Fingerprint(l.login.RefreshToken)))
		Expect(l.operatorExchanges()).To(BeEmpty(), "a sync from Auth0 needs no request to the IdP")
	})

	It("renews at fosite before expiry and keeps the rotated refresh token fosite issued", func() {
		l := newLineage(strategyOAuth2)
		createBinding(ns, "renew", l)
		waitReady(ns, "renew")

		By("waiting for the renewal the expiry schedules")
		Eventually(func(g Gomega) {
			g.Expect(getBinding(g, ns, "renew").Status.LastRefreshTime).NotTo(BeNil())
		}).WithTimeout(waitFor).WithPolling(time.Second).Should(Succeed())

		ex := l.operatorExchanges()
		Expect(errorsOf(ex)).To(HaveEach(BeEmpty()), "the operator's refreshes must all succeed")
		renewal := ex[len(ex)-1]
		Expect(renewal.Grant).To(Equal("refresh_token"))
		Expect(renewal.AuthMethod).To(Equal(AuthClientSecretPost))
		Expect(ex[0].Presented).To(Equal(Fingerprint(l.login.RefreshToken)), "the first refresh uses the login's refresh token")

		b := getBinding(Default, ns, "renew")
		Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
		Expect(b.Status.ExpirySource).To(Equal(authv1alpha1.ExpirySourceIdPResponse))
		at := accessToken(Default, ns, "renew")
		Expect(Fingerprint(at)).To(Equal(renewal.Access), "the Secret holds the access token of the renewal")
		Expect(idp.Active(at, false)).To(BeTrue())

		By("the refresh-state Secret holds the refresh token fosite rotated to, and only that one is live")
		rt := l.stateRefreshToken(ns)
		Expect(Fingerprint(rt)).To(Equal(renewal.Refresh))
		Expect(Fingerprint(rt)).NotTo(Equal(Fingerprint(l.login.RefreshToken)))
		Expect(idp.Active(rt, true)).To(BeTrue())
		Expect(idp.Active(l.login.RefreshToken, true)).To(BeFalse(), "fosite rotated the login's refresh token away")
	})

	It("gets invalid_grant for a replayed spent refresh token, and after fosite revoked the family takes the user's next login from Auth0", func() {
		l := newLineage(strategyOAuth2)
		createBinding(ns, "reuse", l)
		waitReady(ns, "reuse")

		By("a forced refresh spends the login's refresh token")
		forceRefresh(ns, "reuse", "spend")
		var first Exchange
		Eventually(func(g Gomega) {
			ex := l.operatorExchanges()
			g.Expect(ex).NotTo(BeEmpty())
			first = ex[0]
			g.Expect(first.Error).To(BeEmpty())
			g.Expect(Fingerprint(l.stateRefreshToken(ns))).To(Equal(first.Refresh))
			g.Expect(Fingerprint(accessToken(g, ns, "reuse"))).To(Equal(first.Access))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(first.Presented).To(Equal(Fingerprint(l.login.RefreshToken)))

		By("replaying the spent refresh token at fosite directly")
		_, err := idp.Refresh(suiteCtx, l.clientID, l.login.RefreshToken)
		Expect(refusalCode(err)).To(Equal("invalid_grant"), "got %v", err)
		Expect(idp.Active(l.stateRefreshToken(ns), true)).To(BeFalse(),
			"fosite revokes the whole family on a replay, the operator's refresh token too (RFC 6819 §5.2.2.3)")
		Expect(errorsOf(l.operatorExchanges())).To(HaveEach(BeEmpty()), "the operator itself never sent a spent refresh token")

		By("the user logs in again; the operator's refresh gets invalid_grant, it takes the new login from Auth0 and refreshes with it")
		// The new login's token is due for renewal by the time the operator reads it (the
		// renewal spacing ran since the forced refresh), so it is refreshed at once.
		l.logIn()
		Eventually(func(g Gomega) {
			ex := l.operatorExchanges()
			g.Expect(ex).To(ContainElement(SatisfyAll(
				HaveField("Presented", Fingerprint(l.login.RefreshToken)), HaveField("Error", ""))))
			last := ex[len(ex)-1]
			g.Expect(last.Error).To(BeEmpty())
			g.Expect(Fingerprint(accessToken(g, ns, "reuse"))).To(Equal(last.Access))
			g.Expect(Fingerprint(l.stateRefreshToken(ns))).To(Equal(last.Refresh))
			g.Expect(readyReason(getBinding(g, ns, "reuse").Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
		}).WithTimeout(waitFor).WithPolling(time.Second).Should(Succeed())
		for _, e := range l.operatorExchanges() {
			if e.Error != "" {
				Expect(e).To(SatisfyAll(HaveField("Presented", first.Refresh), HaveField("Error", "invalid_grant")),
					"the only refused refresh is the one with the refresh token fosite revoked")
			}
		}
		Expect(l.operatorExchanges()).To(ContainElement(HaveField("Error", "invalid_grant")))
		Expect(idp.Active(accessToken(Default, ns, "reuse"), false)).To(BeTrue())
	})

	It("maps invalid_grant to RefreshFailed, then TokenExpired and an Event, when fosite revoked the lineage and Auth0 has nothing newer", func() {
		l := newLineage(strategyOAuth2)
		createBinding(ns, "revoked", l)
		waitReady(ns, "revoked")

		By("revoking the lineage at fosite (RFC 7009), as the user or an admin would")
		Expect(idp.Revoke(suiteCtx, l.clientID, l.stateRefreshToken(ns), "refresh_token")).To(Succeed())
		Expect(idp.Active(l.login.AccessToken, false)).To(BeFalse())
		forceRefresh(ns, "revoked", "1")

		By("RefreshFailed while the token in the Secret has not expired")
		Eventually(func(g Gomega) {
			b := getBinding(g, ns, "revoked")
			c := condition(b, authv1alpha1.ConditionSyncFailing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionTrue))
			g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonRefreshFailed))
			g.Expect(c.Message).To(ContainSubstring("invalid_grant"))
			g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("TokenExpired once it has")
		Eventually(func(g Gomega) {
			b := getBinding(g, ns, "revoked")
			c := condition(b, authv1alpha1.ConditionReady)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonTokenExpired))
			g.Expect(c.Message).To(ContainSubstring("log in again"))
		}).WithTimeout(waitFor).WithPolling(time.Second).Should(Succeed())
		Expect(eventReasons(ns, "revoked")).To(ContainElement(authv1alpha1.ReasonTokenExpired))
		Expect(Fingerprint(accessToken(Default, ns, "revoked"))).To(Equal(Fingerprint(l.login.AccessToken)), "the Secret keeps the last token")
		ex := l.operatorExchanges()
		Expect(ex).NotTo(BeEmpty())
		Expect(errorsOf(ex)).To(HaveEach(Equal("invalid_grant")))
	})

	It("maps invalid_client to RefreshFailed, drops the kept endpoint and reads the connection from Auth0 again", func() {
		l := newLineage(strategyOAuth2)
		createBinding(ns, "client", l)
		waitReady(ns, "client")
		reads, simReads := tenant.ConnectionReads(l.connection), sim.Stats().ConnectionReads
		Expect(reads).To(BeNumerically(">=", 1), "the sync resolves the connection's endpoint")

		By("rotating the client secret at fosite; Auth0's connection still has the old one")
		secret := "realidp_cs_" + randomHex(8)
		Expect(idp.SetClientSecret(l.clientID, secret)).To(Succeed())
		forceRefresh(ns, "client", "1")
		Eventually(func(g Gomega) {
			c := failing(getBinding(g, ns, "client"))
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonRefreshFailed))
			g.Expect(c.Message).To(ContainSubstring("invalid_client"))
		}).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(errorsOf(l.operatorExchanges())).To(HaveEach(Equal("invalid_client")))
		Expect(idp.Active(l.login.RefreshToken, true)).To(BeTrue(), "a request refused for its client spends no refresh token")

		Eventually(func(g Gomega) {
			g.Expect(tenant.ConnectionReads(l.connection)).To(BeNumerically(">", reads), "the kept endpoint was dropped and the connection read again")
			g.Expect(sim.Stats().ConnectionReads).To(BeNumerically(">", simReads))
		}).WithTimeout(30 * time.Second).Should(Succeed())

		By("fixing the connection in Auth0: the operator reads it again and refreshes with the new secret")
		tenant.SetConnectionOptions(l.connection, l.options(secret))
		Eventually(func(g Gomega) {
			b := getBinding(g, ns, "client")
			g.Expect(b.Status.LastRefreshTime).NotTo(BeNil())
			g.Expect(failing(b)).To(BeNil())
		}).WithTimeout(waitFor).WithPolling(time.Second).Should(Succeed())
		ex := l.operatorExchanges()
		last := ex[len(ex)-1]
		Expect(last.Error).To(BeEmpty())
		Expect(last.Presented).To(Equal(Fingerprint(l.login.RefreshToken)))
		Expect(Fingerprint(accessToken(Default, ns, "client"))).To(Equal(last.Access))
		Expect(Fingerprint(l.stateRefreshToken(ns))).To(Equal(last.Refresh))
	})
})
