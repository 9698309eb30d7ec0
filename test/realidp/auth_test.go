package realidp

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

var _ = Describe("The operator's client at fosite", func() {
	var ns string
	BeforeEach(func() {
		ns = newNamespace()
		newTenant(ns)
	})

	DescribeTable("retries a refresh fosite refused for its client with backoff, not in a loop at fosite or Auth0",
		func(force bool) {
			l := newLineage(strategyOAuth2)
			createBinding(ns, "backoff", l)
			// A binding left failing would keep calling fosite and Auth0 for the rest of the suite.
			DeferCleanup(func() {
				Expect(k8s.Delete(suiteCtx, &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{Name: "backoff", Namespace: ns}})).To(Succeed())
			})
			waitReady(ns, "backoff")
			reads := tenant.ConnectionReads(l.connection)
			Expect(idp.SetClientSecret(l.clientID, "realidp_cs_"+randomHex(8))).To(Succeed())
			if force {
				forceRefresh(ns, "backoff", "1")
			}
			Eventually(func(g Gomega) {
				g.Expect(l.operatorExchanges()).NotTo(BeEmpty())
			}).WithTimeout(waitFor).Should(Succeed())

			// Backoff after a failure is 5 s, 10 s, 20 s, ... (plus jitter): 2 attempts in the next
			// 12 s, 3 if the first retry comes early; each retry reads the connection again.
			Consistently(func(g Gomega) {
				g.Expect(len(l.operatorExchanges())).To(BeNumerically("<=", 4), "refresh attempts at fosite")
				g.Expect(tenant.ConnectionReads(l.connection)-reads).To(BeNumerically("<=", 4), "connection reads from Auth0")
			}).WithTimeout(12 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
			Expect(errorsOf(l.operatorExchanges())).To(HaveEach(Equal("invalid_client")))
		},
		Entry("when the renewal is due", false),
		Entry("when a refresh is forced", true),
	)

	DescribeTable("refreshes with the client authentication the connection names",
		func(strategy, method string) {
			l := newLineage(strategy)
			name := "auth-" + strategy
			createBinding(ns, name, l)
			waitReady(ns, name)
			forceRefresh(ns, name, "1")
			Eventually(func(g Gomega) {
				b := getBinding(g, ns, name)
				stopOnTerminal(b)
				if c := failing(b); c != nil && c.Reason == authv1alpha1.ReasonRefreshFailed &&
					len(l.operatorExchanges()) == 0 {
					StopTrying("the operator did not call fosite: " + c.Message).Now()
				}
				g.Expect(b.Status.LastRefreshTime).NotTo(BeNil())
			}).WithTimeout(30 * time.Second).Should(Succeed())

			ex := l.operatorExchanges()
			Expect(ex).NotTo(BeEmpty())
			for _, e := range ex {
				Expect(e.AuthMethod).To(Equal(method))
				Expect(e.Error).To(BeEmpty())
			}
			last := ex[len(ex)-1]
			at := accessToken(Default, ns, name)
			Expect(Fingerprint(at)).To(Equal(last.Access))
			Expect(idp.Active(at, false)).To(BeTrue())
			Expect(Fingerprint(l.stateRefreshToken(ns))).To(Equal(last.Refresh))
		},
		Entry("client_secret_post, through an oauth2 connection's options.tokenURL", strategyOAuth2, AuthClientSecretPost),
		Entry("client_secret_basic, through an oidc connection's options.token_endpoint and token_endpoint_auth_method",
			strategyOIDC, AuthClientSecretBasic),
	)
})
