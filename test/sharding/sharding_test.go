package sharding

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

var _ = Describe("--watch-label-selector", func() {
	It("lets two managers split the bindings, each serving only the bindings of its shard", func() {
		ns := newNamespace()
		newTenant(ns, "prod")
		shardA := startShard(shardLabel + "=a")
		shardB := startShard(shardLabel + "=b")

		newBinding(ns, "a1", "a")
		newBinding(ns, "a2", "a")
		newBinding(ns, "b1", "b")
		newBinding(ns, "unsharded", "")
		for _, name := range []string{"a1", "a2", "b1"} {
			waitReady(ns, name)
		}

		Expect(cachedBindings(shardA, ns)).To(ConsistOf("a1", "a2"))
		Expect(cachedBindings(shardB, ns)).To(ConsistOf("b1"))
		Expect(shardA.wroteStatusOf()).To(ConsistOf(ns+"/a1", ns+"/a2"))
		Expect(shardB.wroteStatusOf()).To(ConsistOf(ns + "/b1"))
	})

	It("gives each shard its own leader election lease", func() {
		Expect(shardLeaseIDs("", shardLabel+"=a", shardLabel+"=b", "!"+shardLabel)).To(HaveLen(4))
	})
})

var _ = Describe("Binding metrics", func() {
	It("reports status.expiresAt and status.nextRefreshTime from the cache, and forgets a deleted binding", func() {
		ns := newNamespace()
		newTenant(ns, "prod")
		m := startShard("")
		newBinding(ns, "alice", "")
		waitReady(ns, "alice")

		reg := prometheus.NewRegistry()
		reg.MustRegister(metrics.NewBindingCollector(m.mgr.GetCache(), m.mgr.Elected()))
		Eventually(func(g Gomega) {
			b := &authv1alpha1.IdPTokenBinding{}
			g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "alice"}, b)).To(Succeed())
			g.Expect(b.Status.ExpiresAt).NotTo(BeNil())
			g.Expect(b.Status.NextRefreshTime).NotTo(BeNil())
			got := scrape(g, reg, ns, "alice")
			g.Expect(got).To(HaveKeyWithValue(metrics.BindingExpirationTimestamp, float64(b.Status.ExpiresAt.Unix())))
			g.Expect(got).To(HaveKeyWithValue(metrics.BindingRenewalTimestamp, float64(b.Status.NextRefreshTime.Unix())))
			g.Expect(got).To(HaveKeyWithValue(metrics.BindingReadyStatus+`{condition="True"}`, 1.0))
			g.Expect(got).To(HaveKeyWithValue(metrics.BindingReadyStatus+`{condition="False"}`, 0.0))
		}).Should(Succeed())

		Expect(k8s.Delete(suiteCtx, &authv1alpha1.IdPTokenBinding{ObjectMeta: objectMeta(ns, "alice")})).To(Succeed())
		Eventually(func(g Gomega) {
			g.Expect(scrape(g, reg, ns, "alice")).To(BeEmpty())
		}).Should(Succeed())
	})
})

func cachedBindings(m *shardManager, ns string) []string {
	GinkgoHelper()
	list := &authv1alpha1.IdPTokenBindingList{}
	Expect(m.mgr.GetCache().List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
	names := make([]string, 0, len(list.Items))
	for _, b := range list.Items {
		names = append(names, b.Name)
	}
	return names
}

// scrape returns the binding's series by metric name (the ready status also by condition).
func scrape(g Gomega, reg *prometheus.Registry, ns, name string) map[string]float64 {
	families, err := reg.Gather()
	g.Expect(err).NotTo(HaveOccurred())
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			if label(m, "namespace") != ns || label(m, "name") != name {
				continue
			}
			key := f.GetName()
			if c := label(m, "condition"); c != "" {
				key += `{condition="` + c + `"}`
			}
			out[key] = m.GetGauge().GetValue()
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
