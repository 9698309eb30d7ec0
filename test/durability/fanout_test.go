package durability

import (
	"fmt"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

var _ = Describe("Refreshes per identity", func() {
	It("stay at one lineage's renewals per lifetime with 1, 3 and 10 bindings of the identity", func() {
		ns := newNamespace("fanout-")
		newTenant(ns, "prod")
		// One strict IdP per identity, so that each identity's refreshes are counted apart.
		type identity struct {
			idp      string
			bindings []bindingRef
		}
		var ids []identity
		var all []bindingRef
		for _, n := range []int{1, 3, 10} {
			idp := fmt.Sprintf("fanout-%d", n)
			conn := addIdP(idp, lifetime, 0)
			uid := addUser(idp, idp, conn)
			id := identity{idp: idp}
			for i := range n {
				ref := bindingRef{ns, fmt.Sprintf("%s-%02d", idp, i)}
				newBinding(ref, authv1alpha1.TenantKindNamespaced, "prod", uid, conn)
				id.bindings = append(id.bindings, ref)
			}
			ids = append(ids, id)
			all = append(all, id.bindings...)
		}
		waitServed(all...)

		// One lineage renews at most once per 30 s (the minimum spacing of renewals), whatever
		// the number of bindings: lineages per binding would refresh 3 or 10 times as often.
		base := sim.Stats()
		start := time.Now()
		window := 3 * lifetime
		checks := 0
		for time.Since(start) < window {
			for _, b := range all {
				Expect(secretTokenValid(b)).To(Succeed(), "%v into the window", time.Since(start).Round(time.Second))
			}
			checks++
			time.Sleep(time.Second)
		}
		observed := time.Since(start)
		end := sim.Stats()
		lifetimes := float64(observed) / float64(lifetime)

		var table strings.Builder
		fmt.Fprintf(&table, "\n%d checks of %d Secrets over %v, IdP access-token lifetime %v, renewals at least 30 s apart\n", checks, len(all), observed.Round(time.Second), lifetime)
		fmt.Fprintf(&table, "%8s | %17s | %9s | %23s | %13s\n", "bindings", "lifetimes observed", "refreshes", "refreshes per lifetime", "invalid_grant")
		refreshes := map[string]int{}
		for _, id := range ids {
			refreshes[id.idp] = end.IdPRefreshes[id.idp] - base.IdPRefreshes[id.idp]
			fmt.Fprintf(&table, "%8d | %17.2f | %9d | %23.2f | %13s\n", len(id.bindings), lifetimes, refreshes[id.idp],
				float64(refreshes[id.idp])/lifetimes, "(all) "+fmt.Sprint(end.InvalidGrants-base.InvalidGrants))
		}
		GinkgoWriter.Print(table.String())
		AddReportEntry("refreshes per identity per lifetime", table.String())

		Expect(end.InvalidGrants - base.InvalidGrants).To(BeZero())
		spacingBound := int(observed/(30*time.Second)) + 1
		for _, id := range ids {
			Expect(refreshes[id.idp]).To(BeNumerically("<=", spacingBound),
				"%d bindings of one identity: %d refreshes in %v, more than one per 30 s", len(id.bindings), refreshes[id.idp], observed.Round(time.Second))
			Expect(refreshes[id.idp]).To(BeNumerically("<=", refreshes[ids[0].idp]+1),
				"%d bindings of one identity refreshed %d times, one binding %d times: the bindings do not share one lineage", len(id.bindings), refreshes[id.idp], refreshes[ids[0].idp])
			Expect(refreshes[id.idp]).To(BeNumerically(">=", 1), "%d bindings of one identity: tokens stayed valid for 3 lifetimes without a refresh", len(id.bindings))
		}
	})
})
