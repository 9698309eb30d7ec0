package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

func resetAuth0Events(t *testing.T) {
	t.Helper()
	reset := func() {
		auth0Events.Reset()
		auth0EventsLag.Reset()
		auth0EventsSubscribed.Reset()
	}
	reset()
	t.Cleanup(reset)
}

const (
	eventsHelp = `# HELP idptoken_auth0_events_total Events received from the tenant's Auth0 Events API stream, by tenant object and event type (user.updated, user.deleted, connection.updated), duplicates dropped.
# TYPE idptoken_auth0_events_total counter
`
	lagHelp = `# HELP idptoken_auth0_events_lag_seconds Seconds between the time Auth0 gives the tenant's latest event and its arrival at the operator.
# TYPE idptoken_auth0_events_lag_seconds gauge
`
	subscribedHelp = `# HELP idptoken_auth0_events_subscribed 1 while the tenant's Auth0 Events API stream is open, 0 while spec.events is enabled but the stream is not (the tenant's EventsReady condition says why).
# TYPE idptoken_auth0_events_subscribed gauge
`
)

func TestAuth0EventsAreCountedByTypeWithTheLatestLag(t *testing.T) {
	type event struct {
		tenant, typ string
		lag         time.Duration
	}
	tests := []struct {
		name            string
		events          []event
		wantTotal, want string
	}{{
		name: "counted per tenant and type, the lag is the latest event's",
		events: []event{
			{"Auth0Tenant/a/prod", "user.updated", 3 * time.Second},
			{"Auth0Tenant/a/prod", "user.updated", 1500 * time.Millisecond},
			{"Auth0Tenant/a/prod", "user.deleted", 2 * time.Second},
			{"ClusterAuth0Tenant/shared", "connection.updated", 40 * time.Millisecond},
		},
		wantTotal: `
idptoken_auth0_events_total{tenant="Auth0Tenant/a/prod",type="user.deleted"} 1
idptoken_auth0_events_total{tenant="Auth0Tenant/a/prod",type="user.updated"} 2
idptoken_auth0_events_total{tenant="ClusterAuth0Tenant/shared",type="connection.updated"} 1
`,
		want: `
idptoken_auth0_events_lag_seconds{tenant="Auth0Tenant/a/prod"} 2
idptoken_auth0_events_lag_seconds{tenant="ClusterAuth0Tenant/shared"} 0.04
`,
	}, {
		name:      "an event stamped after its arrival (clocks that disagree) lags 0",
		events:    []event{{"Auth0Tenant/a/prod", "user.updated", -5 * time.Second}},
		wantTotal: `idptoken_auth0_events_total{tenant="Auth0Tenant/a/prod",type="user.updated"} 1` + "\n",
		want:      `idptoken_auth0_events_lag_seconds{tenant="Auth0Tenant/a/prod"} 0` + "\n",
	}, {
		name:      "labels the caller could not name are unknown",
		events:    []event{{"", "", time.Second}},
		wantTotal: `idptoken_auth0_events_total{tenant="unknown",type="unknown"} 1` + "\n",
		want:      `idptoken_auth0_events_lag_seconds{tenant="unknown"} 1` + "\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resetAuth0Events(t)
			for _, e := range tt.events {
				ObserveAuth0Event(e.tenant, e.typ, e.lag)
			}
			if err := testutil.CollectAndCompare(auth0Events, strings.NewReader(eventsHelp+tt.wantTotal)); err != nil {
				t.Error(err)
			}
			if err := testutil.CollectAndCompare(auth0EventsLag, strings.NewReader(lagHelp+tt.want)); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAuth0EventsSubscribedFollowsTheStream(t *testing.T) {
	resetAuth0Events(t)
	SetAuth0EventsSubscribed("Auth0Tenant/a/prod", true)
	SetAuth0EventsSubscribed("ClusterAuth0Tenant/shared", true)
	SetAuth0EventsSubscribed("ClusterAuth0Tenant/shared", false)
	want := subscribedHelp + `
idptoken_auth0_events_subscribed{tenant="Auth0Tenant/a/prod"} 1
idptoken_auth0_events_subscribed{tenant="ClusterAuth0Tenant/shared"} 0
`
	if err := testutil.CollectAndCompare(auth0EventsSubscribed, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

func TestForgetAuth0EventsDropsOnlyThatTenantsSeries(t *testing.T) {
	resetAuth0Events(t)
	for _, tenant := range []string{"Auth0Tenant/a/gone", "Auth0Tenant/a/kept"} {
		ObserveAuth0Event(tenant, "user.updated", time.Second)
		ObserveAuth0Event(tenant, "user.deleted", time.Second)
		SetAuth0EventsSubscribed(tenant, true)
	}
	ForgetAuth0Events("Auth0Tenant/a/gone")
	// Through the manager's registry, as /metrics serves them.
	want := eventsHelp + `
idptoken_auth0_events_total{tenant="Auth0Tenant/a/kept",type="user.deleted"} 1
idptoken_auth0_events_total{tenant="Auth0Tenant/a/kept",type="user.updated"} 1
` + lagHelp + `idptoken_auth0_events_lag_seconds{tenant="Auth0Tenant/a/kept"} 1
` + subscribedHelp + `idptoken_auth0_events_subscribed{tenant="Auth0Tenant/a/kept"} 1
`
	if err := testutil.GatherAndCompare(ctrlmetrics.Registry, strings.NewReader(want),
		Auth0EventsTotal, Auth0EventsLagSeconds, Auth0EventsSubscribed); err != nil {
		t.Error(err)
	}
}
