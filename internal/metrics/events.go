package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

var (
	auth0Events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: Auth0EventsTotal,
		Help: "Events received from the tenant's Auth0 Events API stream, by tenant object and event type (user.updated, user.deleted, connection.updated), duplicates dropped.",
	}, []string{"tenant", "type"})

	auth0EventsLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: Auth0EventsLagSeconds,
		Help: "Seconds between the time Auth0 gives the tenant's latest event and its arrival at the operator.",
	}, []string{"tenant"})

	auth0EventsSubscribed = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: Auth0EventsSubscribed,
		Help: "1 while the tenant's Auth0 Events API stream is open, 0 while spec.events is enabled but the stream is not (the tenant's EventsReady condition says why).",
	}, []string{"tenant"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(auth0Events, auth0EventsLag, auth0EventsSubscribed)
}

// ObserveAuth0Event counts one event of typ received for tenant, and how late it arrived (a
// negative lag, from clocks that disagree, counts as 0).
func ObserveAuth0Event(tenant, typ string, lag time.Duration) {
	tenant = labelOrUnknown(tenant)
	auth0Events.WithLabelValues(tenant, labelOrUnknown(typ)).Inc()
	auth0EventsLag.WithLabelValues(tenant).Set(max(lag, 0).Seconds())
}

// SetAuth0EventsSubscribed records whether the tenant's events stream is open.
func SetAuth0EventsSubscribed(tenant string, open bool) {
	v := 0.0
	if open {
		v = 1
	}
	auth0EventsSubscribed.WithLabelValues(labelOrUnknown(tenant)).Set(v)
}

// ForgetAuth0Events drops the events series of a tenant whose subscription ended (events
// disabled, the tenant deleted).
func ForgetAuth0Events(tenant string) {
	match := prometheus.Labels{"tenant": tenant}
	auth0Events.DeletePartialMatch(match)
	auth0EventsLag.DeletePartialMatch(match)
	auth0EventsSubscribed.DeletePartialMatch(match)
}
