package metrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestRolloutRestartsAreCountedPerNamespaceAndKind(t *testing.T) {
	rolloutRestarts.Reset()
	t.Cleanup(rolloutRestarts.Reset)
	ObserveRolloutRestart("team-a", "Deployment")
	ObserveRolloutRestart("team-a", "Deployment")
	ObserveRolloutRestart("team-a", "Rollout")
	ObserveRolloutRestart("team-b", "StatefulSet")
	ObserveRolloutRestart("", "")
	want := `
# HELP idptoken_rollout_restarts_total Workloads restarted (as by kubectl rollout restart) because a binding's Secret changed, by namespace and kind (Deployment, StatefulSet, DaemonSet, Rollout).
# TYPE idptoken_rollout_restarts_total counter
idptoken_rollout_restarts_total{kind="Deployment",namespace="team-a"} 2
idptoken_rollout_restarts_total{kind="Rollout",namespace="team-a"} 1
idptoken_rollout_restarts_total{kind="StatefulSet",namespace="team-b"} 1
idptoken_rollout_restarts_total{kind="unknown",namespace="unknown"} 1
`
	if err := testutil.CollectAndCompare(rolloutRestarts, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}
