package controller

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

var _ = Describe("Refresh", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		newTenant(ns, "prod")
	})

	It("renews before expiry over several cycles in every rotation mode, across a manager restart, without Auth0 reads or reused refresh tokens", func() {
		modes := []string{"google", "microsoft", "github"} // none, rotate, strict
		users := map[string]string{}
		for _, m := range modes {
			users[m] = newUser(m, true)
			Expect(k8s.Create(suiteCtx, userBinding(ns, "cycle-"+m, "prod", users[m], ""))).To(Succeed())
		}
		for _, m := range modes {
			waitReady(ns, "cycle-"+m)
		}
		start := sim.Stats()

		seen := map[string]map[string]bool{}
		minRemaining := time.Duration(1<<62 - 1)
		poll := func() {
			for _, m := range modes {
				s, err := getSecret(ns, "cycle-"+m+"-token")
				Expect(err).NotTo(HaveOccurred())
				tok := string(s.Data["access_token"])
				exp, ok := sim.AccessTokenValid(tok)
				Expect(ok).To(BeTrue(), "Secret cycle-%s-token holds an expired or unknown token", m)
				minRemaining = min(minRemaining, time.Until(exp))
				if seen[m] == nil {
					seen[m] = map[string]bool{}
				}
				seen[m][tok] = true
				b := getBinding(ns, "cycle-"+m)
				Expect(readyReason(b.Status.Conditions)).To(Equal("True/"+authv1alpha1.ReasonSynced), "binding cycle-%s", m)
			}
		}
		deadline := time.Now().Add(3*idpLifetime + 5*time.Second)
		restarted := false
		for time.Now().Before(deadline) {
			poll()
			if !restarted && time.Now().After(deadline.Add(-2*idpLifetime)) {
				By("restarting the manager mid-run")
				stopManager()
				startManager()
				restarted = true
			}
			time.Sleep(500 * time.Millisecond)
		}
		end := sim.Stats()
		for _, m := range modes {
			Expect(len(seen[m])).To(BeNumerically(">=", 3), "binding cycle-%s renewed only %d times", m, len(seen[m])-1)
			Expect(end.UserReads[users[m]]-start.UserReads[users[m]]).To(BeZero(),
				"identities with a refresh token must not cost Auth0 requests in steady state")
			b := getBinding(ns, "cycle-"+m)
			Expect(b.Status.ExpirySource).To(BeElementOf(authv1alpha1.ExpirySourceIdPResponse, authv1alpha1.ExpirySourceJWT))
			Expect(b.Status.LastRefreshTime).NotTo(BeNil())
		}
		Expect(end.InvalidGrants-start.InvalidGrants).To(BeZero(), "a spent refresh token was sent again")
		AddReportEntry("refresh cycles", fmt.Sprintf("lifetime %s, renewals per binding %d/%d/%d, minimum remaining lifetime in a Secret %s, IdP refreshes %v",
			idpLifetime, len(seen["google"])-1, len(seen["microsoft"])-1, len(seen["github"])-1, minRemaining.Round(time.Second), end.IdPRefreshes))
		GinkgoWriter.Printf("refresh cycles: minimum remaining lifetime of a token in a Secret: %s\n", minRemaining.Round(time.Second))
		Expect(minRemaining).To(BeNumerically(">", 0))
	})

	It("turns Ready False TokenExpired when the IdP rejects the refresh token and Auth0 has nothing newer, and recovers after a new login", func() {
		uid := newUser("github", true)
		b := userBinding(ns, "dead", "prod", uid, "")
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "dead")

		By("revoking the refresh token the operator holds, as a user or admin would at the IdP")
		Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
			state, err := getSecret(ns, stateNameOf(getBinding(ns, "dead")))
			if err != nil {
				return err
			}
			state.Data["refresh_token"] = []byte("sim_rt_revoked")
			return k8s.Update(suiteCtx, state)
		})).To(Succeed())

		By("it says so while the token is still valid, not only at expiry")
		Eventually(func(g Gomega) {
			b := getBinding(ns, "dead")
			g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
			c := condition(b, authv1alpha1.ConditionSyncFailing)
			g.Expect(c).NotTo(BeNil())
			g.Expect(c.Reason).To(Equal(authv1alpha1.ReasonRefreshFailed))
			g.Expect(c.Message).To(ContainSubstring("invalid_grant"))
		}).WithTimeout(idpLifetime).WithPolling(time.Second).Should(Succeed())
		Eventually(func(g Gomega) {
			b := getBinding(ns, "dead")
			g.Expect(readyReason(b.Status.Conditions)).To(Equal("False/" + authv1alpha1.ReasonTokenExpired))
			g.Expect(readyMessage(b.Status.Conditions)).To(ContainSubstring("log in again"))
		}).WithTimeout(2 * idpLifetime).WithPolling(time.Second).Should(Succeed())
		Expect(eventReasons(ns, "dead")).To(ContainElement(authv1alpha1.ReasonTokenExpired))

		By("the user logs in again and the binding is force-refreshed: Auth0's new refresh token wins")
		sim.Login(uid)
		updateBinding(ns, "dead", func(b *authv1alpha1.IdPTokenBinding) {
			metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, "after-login")
		})
		waitReady(ns, "dead")
		Expect(getBinding(ns, "dead").Status.LastForceRefresh).To(Equal("after-login"))
		s, err := getSecret(ns, "dead-token")
		Expect(err).NotTo(HaveOccurred())
		_, ok := sim.AccessTokenValid(string(s.Data["access_token"]))
		Expect(ok).To(BeTrue())
		state, err := getSecret(ns, stateNameOf(getBinding(ns, "dead")))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(state.Data["refresh_token"])).NotTo(Equal("sim_rt_revoked"))
	})

	It("re-reads Auth0 when there is no refresh token, and picks up the user's next login before expiry", func() {
		uid := newUser("google", false)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "online", "prod", uid, ""))).To(Succeed())
		waitReady(ns, "online")
		first := sim.CurrentAccessToken(uid, "google-sim")
		reads := sim.Stats().UserReads[uid]

		By("the user logs in again before the token expires")
		sim.Login(uid)
		second := sim.CurrentAccessToken(uid, "google-sim")
		Expect(second).NotTo(Equal(first))
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "online-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(s.Data["access_token"])).To(Equal(second))
		}).WithTimeout(idpLifetime).WithPolling(time.Second).Should(Succeed())
		Expect(sim.Stats().UserReads[uid]-reads).To(BeNumerically("<=", 3), "re-reads must be spaced, not a loop")
		Expect(readyReason(getBinding(ns, "online").Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
	})

	It("reschedules the token it holds when spec.refresh.renewBefore changes", func() {
		uid := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "resched", "prod", uid, ""))).To(Succeed())
		b := waitReady(ns, "resched")
		exp := b.Status.ExpiresAt.Time
		// Default: a third of the 45 s lifetime before expiry, at least 30 s after it was obtained.
		Expect(b.Status.NextRefreshTime.Time).To(BeTemporally("<=", exp.Add(-15*time.Second)))
		updateBinding(ns, "resched", func(b *authv1alpha1.IdPTokenBinding) {
			b.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: 10 * time.Second}
		})
		Eventually(func(g Gomega) {
			b := getBinding(ns, "resched")
			g.Expect(b.Status.ObservedGeneration).To(Equal(b.Generation))
			// 10 s before expiry, minus the suite's fixed jitter (half of 10% of 45 s), in whole
			// seconds: later than the default's 15 s.
			g.Expect(b.Status.NextRefreshTime.Time).To(BeTemporally(">=", exp.Add(-14*time.Second)))
			g.Expect(b.Status.NextRefreshTime.Time).To(BeTemporally("<=", exp.Add(-10*time.Second)))
		}).WithTimeout(10 * time.Second).Should(Succeed())
	})

	It("says TokenExpired while a token that lives less than 30 s waits for its renewal, then recovers", func() {
		userSeq++
		uid := fmt.Sprintf("brief%d", userSeq)
		sim.AddUser("oauth2|"+uid, auth0sim.IdentitySpec{Connection: "brief-sim", Provider: "oauth2", UserID: uid, IdP: "brief", OfflineAccess: true})
		Expect(k8s.Create(suiteCtx, userBinding(ns, "brief", "prod", "oauth2|"+uid, ""))).To(Succeed())
		waitReady(ns, "brief")
		waitReason(ns, "brief", "False/"+authv1alpha1.ReasonTokenExpired)
		Eventually(func(g Gomega) {
			g.Expect(readyReason(getBinding(ns, "brief").Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
		}).WithTimeout(40 * time.Second).WithPolling(time.Second).Should(Succeed())
	})

	It("keeps refreshing at the IdP while Auth0 is down", func() {
		uid := newUser("microsoft", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "outage", "prod", uid, ""))).To(Succeed())
		waitReady(ns, "outage")
		By("waiting for a first refresh, which resolves and caches the IdP endpoint")
		Eventually(func() *metav1.Time { return getBinding(ns, "outage").Status.LastRefreshTime }).
			WithTimeout(idpLifetime).WithPolling(time.Second).ShouldNot(BeNil())
		first := getBinding(ns, "outage").Status.LastRefreshTime.Time

		sim.SetFault("/api/v2/", auth0sim.Fault{Status: 503})
		sim.SetFault("/oauth/token", auth0sim.Fault{Status: 503})
		DeferCleanup(sim.ClearFaults)
		Eventually(func(g Gomega) {
			b := getBinding(ns, "outage")
			g.Expect(b.Status.LastRefreshTime.Time).To(BeTemporally(">", first))
			g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
			s, err := getSecret(ns, "outage-token")
			g.Expect(err).NotTo(HaveOccurred())
			_, ok := sim.AccessTokenValid(string(s.Data["access_token"]))
			g.Expect(ok).To(BeTrue())
		}).WithTimeout(idpLifetime).WithPolling(time.Second).Should(Succeed())
	})
})
