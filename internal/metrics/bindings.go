package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// listTimeout bounds one scrape's read of the cache, which only waits when the cache is not synced.
const listTimeout = 10 * time.Second

var (
	readyDesc = prometheus.NewDesc(BindingReadyStatus,
		"The status of the binding's Ready condition: 1 for the current status, 0 for the two others.",
		[]string{"namespace", "name", "condition"}, nil)
	expirationDesc = prometheus.NewDesc(BindingExpirationTimestamp,
		"The expiry of the token in the binding's Secret (status.expiresAt), in Unix seconds; absent while unknown.",
		[]string{"namespace", "name"}, nil)
	renewalDesc = prometheus.NewDesc(BindingRenewalTimestamp,
		"When the binding's token is next renewed or re-read (status.nextRefreshTime), in Unix seconds; absent while unscheduled.",
		[]string{"namespace", "name"}, nil)
)

var conditionStatuses = []metav1.ConditionStatus{metav1.ConditionTrue, metav1.ConditionFalse, metav1.ConditionUnknown}

// BindingCollector reports every IdPTokenBinding's state from the manager's informer cache at
// scrape time, as cert-manager does for Certificates: no per-binding bookkeeping, and a deleted
// binding's series vanish with it.
type BindingCollector struct {
	reader client.Reader
	// elected, when set, holds the collector silent until it is closed, so that only the leader
	// reports bindings and standby replicas neither double the series nor fill their caches.
	elected <-chan struct{}
}

// NewBindingCollector reads bindings through reader, normally the manager's cache.
// elected may be nil (always report) or the manager's Elected() channel.
func NewBindingCollector(reader client.Reader, elected <-chan struct{}) *BindingCollector {
	return &BindingCollector{reader: reader, elected: elected}
}

// RegisterBindingCollector registers a BindingCollector on controller-runtime's registry, the
// one the manager's /metrics endpoint serves.
func RegisterBindingCollector(reader client.Reader, elected <-chan struct{}) error {
	return ctrlmetrics.Registry.Register(NewBindingCollector(reader, elected))
}

// Describe implements prometheus.Collector.
func (c *BindingCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- readyDesc
	ch <- expirationDesc
	ch <- renewalDesc
}

// Collect implements prometheus.Collector.
func (c *BindingCollector) Collect(ch chan<- prometheus.Metric) {
	if c.elected != nil {
		select {
		case <-c.elected:
		default:
			return
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), listTimeout)
	defer cancel()
	var list authv1alpha1.IdPTokenBindingList
	// The objects are only read, so the cache's copies are used as they are.
	if err := c.reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		logf.Log.WithName("metrics").Error(err, "Failed to list IdPTokenBindings for a scrape")
		return
	}
	for i := range list.Items {
		collectBinding(ch, &list.Items[i])
	}
}

func collectBinding(ch chan<- prometheus.Metric, b *authv1alpha1.IdPTokenBinding) {
	status := metav1.ConditionUnknown
	if cond := meta.FindStatusCondition(b.Status.Conditions, authv1alpha1.ConditionReady); cond != nil {
		status = cond.Status
	}
	for _, s := range conditionStatuses {
		v := 0.0
		if s == status {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(readyDesc, prometheus.GaugeValue, v, b.Namespace, b.Name, string(s))
	}
	if t := b.Status.ExpiresAt; t != nil {
		ch <- prometheus.MustNewConstMetric(expirationDesc, prometheus.GaugeValue, float64(t.Unix()), b.Namespace, b.Name)
	}
	if t := b.Status.NextRefreshTime; t != nil {
		ch <- prometheus.MustNewConstMetric(renewalDesc, prometheus.GaugeValue, float64(t.Unix()), b.Namespace, b.Name)
	}
}
