package durability

import (
	"fmt"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

var _ = Describe("An Auth0 outage longer than a token lifetime across a manager restart", func() {
	It("keeps the tokens of identities with refresh tokens fresh from the IdP alone", func() {
		const idp = "outage"
		conn := addIdP(idp, lifetime, 0)
		uid := addUser("outage-1", idp, conn)
		ns := newNamespace("outage-")
		newTenant(ns, "prod")
		bindings := []bindingRef{{ns, "one"}, {ns, "two"}}
		for _, b := range bindings {
			newBinding(b, authv1alpha1.TenantKindNamespaced, "prod", uid, conn)
		}
		waitServed(bindings...)

		// Usually no refresh has happened yet: the lineage's endpoint was kept with its state at
		// the first read, which is what lets the first refresh happen without Auth0.
		AddReportEntry("outage: IdP refreshes before the outage", sim.Stats().IdPRefreshes[idp])

		By("Auth0 fails, its IdP does not; the manager is killed and a new one starts")
		down := auth0sim.Fault{Status: http.StatusServiceUnavailable}
		sim.SetFault("/api/v2/", down)
		sim.SetFault("/oauth/token", down)
		DeferCleanup(sim.ClearFaults)
		base, baseRequests := sim.Stats(), requests.snapshot()
		killManager()
		startManager()
		restarted := time.Now()

		window := lifetime * 16 / 10
		checks := 0
		for time.Since(restarted) < window {
			for _, b := range bindings {
				if err := secretTokenValid(b); err != nil {
					st := sim.Stats()
					GinkgoWriter.Printf("outage: token invalid %v after the restart; during the outage the IdP saw %d refreshes, Auth0 %d requests, invalid_grant %d\n",
						time.Since(restarted).Round(time.Second), st.IdPRefreshes[idp]-base.IdPRefreshes[idp], st.APIRequests-base.APIRequests, st.InvalidGrants-base.InvalidGrants)
					GinkgoWriter.Printf("outage: requests to the simulator since the restart: %s\n", requests.since(baseRequests, "/oauth/", "/api/", "/idp/"+idp+"/"))
					printConditions(bindings)
					AddReportEntry("outage: first invalid token after the restart", time.Since(restarted).Round(time.Second).String())
					Fail(fmt.Sprintf("%v after the restart during the Auth0 outage: %v", time.Since(restarted).Round(time.Second), err))
				}
			}
			checks++
			time.Sleep(time.Second)
		}
		end := sim.Stats()
		refreshes := end.IdPRefreshes[idp] - base.IdPRefreshes[idp]
		report := fmt.Sprintf("%v of Auth0 outage after the restart (%.1f lifetimes): %d checks of %d Secrets all valid, %d refreshes at the IdP, %d invalid_grant; requests: %s",
			window, float64(window)/float64(lifetime), checks, len(bindings), refreshes, end.InvalidGrants-base.InvalidGrants, requests.since(baseRequests, "/oauth/", "/api/", "/idp/"+idp+"/"))
		GinkgoWriter.Println(report)
		AddReportEntry("outage across a restart", report)
		Expect(refreshes).To(BeNumerically(">=", 1), "tokens stayed valid for longer than a lifetime, so the IdP must have refreshed them")
		Expect(end.InvalidGrants - base.InvalidGrants).To(BeZero())

		By("Auth0 is back: the tenant and the bindings are Ready")
		sim.ClearFaults()
		waitServed(bindings...)
	})
})

// printConditions shows the bindings' conditions and their tenant's Ready (messages never hold
// a token value).
func printConditions(refs []bindingRef) {
	for _, ref := range refs {
		b := &authv1alpha1.IdPTokenBinding{}
		if err := k8s.Get(suiteCtx, ref.key(), b); err != nil {
			continue
		}
		for _, c := range b.Status.Conditions {
			GinkgoWriter.Printf("binding %s: %s=%s %s: %s\n", ref, c.Type, c.Status, c.Reason, c.Message)
		}
		t := &authv1alpha1.Auth0Tenant{}
		if err := k8s.Get(suiteCtx, client.ObjectKey{Namespace: ref.ns, Name: b.Spec.TenantRef.Name}, t); err == nil {
			for _, c := range t.Status.Conditions {
				GinkgoWriter.Printf("tenant %s/%s: %s=%s %s: %s\n", ref.ns, t.Name, c.Type, c.Status, c.Reason, c.Message)
			}
		}
	}
}
