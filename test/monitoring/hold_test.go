package monitoring

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql/promqltest"
)

// firingAt evaluates the alert name of the chart's rules every minute from 0 to end, as a
// Prometheus with a 1m evaluation interval does, on the series that load describes, with
// Prometheus's engine. It returns, for each minute, the value of the label by of the alerts that
// were firing: a series the expression has returned at every evaluation for the rule's "for"
// (Prometheus's pending → firing; the rules package itself needs modules go.sum does not hold).
func firingAt(t *testing.T, name, load, by string, end time.Duration) map[time.Duration][]string {
	t.Helper()
	r, ok := loadRules(t)[name]
	if !ok {
		t.Fatalf("no alert %s", name)
	}
	storage := promqltest.LoadedStorage(t, load)
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	activeSince := map[string]time.Duration{}
	firing := map[time.Duration][]string{}
	for at := time.Duration(0); at <= end; at += time.Minute {
		q, err := engine.NewInstantQuery(context.Background(), storage, nil, r.Expr, time.Unix(0, 0).Add(at))
		if err != nil {
			t.Fatalf("%s at %v: %v", name, at, err)
		}
		vector, err := q.Exec(context.Background()).Vector()
		q.Close()
		if err != nil {
			t.Fatalf("%s at %v: %v", name, at, err)
		}
		active := map[string]time.Duration{}
		for _, sample := range vector {
			key := sample.Metric.Get(by)
			since, ok := activeSince[key]
			if !ok {
				since = at
			}
			active[key] = since
			if at-since >= time.Duration(r.For) {
				firing[at] = append(firing[at], key)
			}
		}
		activeSince = active
	}
	return firing
}

// IdPTokenAuth0EventsDown waits 15 minutes: a stream that reconnects within them (Auth0 cuts
// streams, 429s are waited out) does not fire.
func TestAuth0EventsDownHoldsFor15Minutes(t *testing.T) {
	// "down" never opens; "flapping" is closed for 14 minutes at a time; "open" stays open.
	firing := firingAt(t, "IdPTokenAuth0EventsDown", `
load 1m
  idptoken_auth0_events_subscribed{tenant="Auth0Tenant/a/down"} 0+0x30
  idptoken_auth0_events_subscribed{tenant="Auth0Tenant/a/flapping"} 0+0x13 1 0+0x13 1 0+0x2
  idptoken_auth0_events_subscribed{tenant="ClusterAuth0Tenant/open"} 1+0x30
`, "tenant", 30*time.Minute)
	for at := time.Duration(0); at <= 30*time.Minute; at += time.Minute {
		var want []string
		if at >= 15*time.Minute {
			want = []string{"Auth0Tenant/a/down"}
		}
		if got := firing[at]; !slices.Equal(got, want) {
			t.Errorf("at %v firing for %v, want %v", at, got, want)
		}
	}
}
