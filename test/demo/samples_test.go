package demo

import (
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

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
	checkConsumeSamples(t, objs, smp)
}

// checkConsumeSamples: the samples show consuming a token, once each way: one templated binding
// (Replace, without an access_token key), and one Deployment that it names as its rollout
// restart target, at most once a minute, so that a 65 s headless run restarts it once. The
// Deployment comes before the binding, and so does the operator namespace, where the operator
// keeps the key of status.secretMAC: a Secret written before that key can be had has no MAC, and
// its next change restarts nothing.
func checkConsumeSamples(t *testing.T, objs []*unstructured.Unstructured, smp samples) {
	t.Helper()
	index := func(kind, ns, name string) int {
		return slices.IndexFunc(objs, func(o *unstructured.Unstructured) bool {
			return o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name
		})
	}
	var templated []sampleBinding
	for _, b := range smp.bindings {
		if len(b.templateKeys) > 0 {
			templated = append(templated, b)
		}
	}
	if len(templated) != 1 {
		t.Fatalf("%d bindings have a spec.secret.template, want 1", len(templated))
	}
	b := templated[0]
	if b.mergePolicy != authv1alpha1.MergePolicyReplace || slices.Contains(b.templateKeys, authv1alpha1.SecretKeyAccessToken) {
		t.Errorf("binding %s: mergePolicy %s, template keys %v; want Replace without %s", b, b.mergePolicy, b.templateKeys, authv1alpha1.SecretKeyAccessToken)
	}
	rs := restartTracks(smp)
	if len(rs) != 1 || len(rs[0].bindings) != 1 || rs[0].bindings[0] != b.key {
		t.Fatalf("want one Deployment named by the rolloutRestartTargets of %s alone; have %d", b, len(rs))
	}
	if rs[0].minInterval != time.Minute {
		t.Errorf("Deployment %s: rolloutRestartMinInterval %s, want 1m", rs[0].key, rs[0].minInterval)
	}
	bi := index("IdPTokenBinding", b.key.Namespace, b.key.Name)
	if di := index("Deployment", rs[0].key.Namespace, rs[0].key.Name); di > bi {
		t.Errorf("Deployment %s is created after binding %s, which names it", rs[0].key, b)
	}
	if ni := index("Namespace", "", OperatorNamespace); ni < 0 || ni > bi {
		t.Errorf("the operator namespace %s is created after the templated binding %s", OperatorNamespace, b)
	}
}
