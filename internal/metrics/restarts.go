package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var rolloutRestarts = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: RolloutRestartsTotal,
	Help: "Workloads restarted (as by kubectl rollout restart) because a binding's Secret changed, by namespace and kind (Deployment, StatefulSet, DaemonSet, Rollout).",
}, []string{"namespace", "kind"})

func init() {
	ctrlmetrics.Registry.MustRegister(rolloutRestarts)
}

// ObserveRolloutRestart counts one workload restarted: one patch of its pod template (or of an
// Argo Rollout's spec.restartAt), however many bindings asked for it.
func ObserveRolloutRestart(namespace, kind string) {
	rolloutRestarts.WithLabelValues(labelOrUnknown(namespace), labelOrUnknown(kind)).Inc()
}
