package demo

import (
	"slices"
	"testing"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

// TestDemoSamplesMatchTheFixture renders config/samples/demo and checks that every binding
// names a user and connection the simulated tenant has, and that the ClusterAuth0Tenant part
// is there: two team namespaces served, one binding expected to be refused.
func TestDemoSamplesMatchTheFixture(t *testing.T) {
	tenant, err := StartTenant(TenantOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tenant.Close()
	objs, err := renderSamples(testenv.Path("config", "samples", "demo"), tenant.Vars())
	if err != nil {
		t.Fatal(err)
	}
	smp := samplesOf(objs)

	var connectionIDs []string
	for _, p := range tenant.IdPs() {
		connectionIDs = append(connectionIDs, p.ConnectionID)
	}
	clusterNamespaces := map[string]bool{}
	refused := 0
	for _, b := range smp.bindings {
		switch {
		case b.userID == "" && !slices.Contains(connectionIDs, b.connection):
			t.Errorf("binding %s names connection %q, which the simulated tenant does not have", b, b.connection)
		case b.userID != "":
			i := slices.IndexFunc(Users(), func(u UserInfo) bool { return u.ID == b.userID })
			if i < 0 {
				t.Errorf("binding %s names user %q, whom the simulated tenant does not have", b, b.userID)
			} else if !slices.Contains(Users()[i].Connections, b.connection) {
				t.Errorf("binding %s names connection %q, which user %q has no identity on", b, b.connection, b.userID)
			}
		}
		if b.tenant == "shared (cluster)" {
			clusterNamespaces[b.key.Namespace] = true
		}
		if b.expect == authv1alpha1.ReasonNotPermitted {
			refused++
		}
	}
	if len(clusterNamespaces) != 2 {
		t.Errorf("the ClusterAuth0Tenant serves bindings in %d namespaces, want 2", len(clusterNamespaces))
	}
	if refused != 1 {
		t.Errorf("%d bindings are expected to be refused (annotation %s: NotPermitted), want 1", refused, ExpectAnnotation)
	}
	if !slices.Contains(smp.namespaces, OperatorNamespace) {
		t.Errorf("the samples do not create the operator namespace %s the manager is started with", OperatorNamespace)
	}
}
