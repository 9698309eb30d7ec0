// Package metrics defines the operator's Prometheus metrics, served by controller-runtime's
// /metrics endpoint. Names and labels are part of the public contract (DESIGN.md, "Operating it").
// No label ever carries a user id, an email, a URL query or a token.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Metric names, fixed by the contract. Tests of the alert rules and dashboard check that every
// name they use is one of these.
const (
	BindingReadyStatus         = "idptoken_binding_ready_status"
	BindingExpirationTimestamp = "idptoken_binding_expiration_timestamp_seconds"
	BindingRenewalTimestamp    = "idptoken_binding_renewal_timestamp_seconds"
	Auth0RequestsTotal         = "idptoken_auth0_requests_total"
	Auth0RequestDuration       = "idptoken_auth0_request_duration_seconds"
	Auth0RateLimitRemaining    = "idptoken_auth0_ratelimit_remaining"
	Auth0M2MQuotaRemaining     = "idptoken_auth0_m2m_quota_remaining"
	IdPRefreshTotal            = "idptoken_idp_refresh_total"
	IdPRefreshDuration         = "idptoken_idp_refresh_duration_seconds"
	TokenVaultExpiryGap        = "idptoken_tokenvault_expiry_gap_seconds"
	RolloutRestartsTotal       = "idptoken_rollout_restarts_total"
	Auth0EventsTotal           = "idptoken_auth0_events_total"
	Auth0EventsLagSeconds      = "idptoken_auth0_events_lag_seconds"
	Auth0EventsSubscribed      = "idptoken_auth0_events_subscribed"
)

// unknownLabel stands in for a label value the caller could not name.
const unknownLabel = "unknown"

// Names lists every metric the operator exports, for tests and tooling.
var Names = []string{
	BindingReadyStatus, BindingExpirationTimestamp, BindingRenewalTimestamp,
	Auth0RequestsTotal, Auth0RequestDuration, Auth0RateLimitRemaining,
	IdPRefreshTotal, IdPRefreshDuration, TokenVaultExpiryGap, Auth0M2MQuotaRemaining,
	RolloutRestartsTotal, Auth0EventsTotal, Auth0EventsLagSeconds, Auth0EventsSubscribed,
}

// Results of an IdP refresh, the values of idptoken_idp_refresh_total's result label.
const (
	ResultSuccess       = "success"
	ResultInvalidGrant  = "invalid_grant"
	ResultInvalidClient = "invalid_client"
	ResultTransient     = "transient"
	ResultBadResponse   = "bad_response"
	ResultRejected      = "rejected"
	ResultError         = "error"
)

var (
	auth0Requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: Auth0RequestsTotal,
		Help: "Requests sent to Auth0, by tenant object, endpoint kind and HTTP status code (\"error\" when no response arrived).",
	}, []string{"tenant", "endpoint", "code"})

	auth0Duration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    Auth0RequestDuration,
		Help:    "Duration of requests to Auth0 until the response headers arrived, by tenant object and endpoint kind.",
		Buckets: prometheus.DefBuckets,
	}, []string{"tenant", "endpoint"})

	auth0Remaining = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: Auth0RateLimitRemaining,
		Help: "The x-ratelimit-remaining header of the tenant's latest Auth0 response: requests left in the current window.",
	}, []string{"tenant"})

	auth0M2MQuota = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: Auth0M2MQuotaRemaining,
		Help: "M2M tokens left in each bucket of the tenant's fine-grained M2M token quota (client/per_hour, client/per_day, organization/...), from the latest /oauth/token answer that named it.",
	}, []string{"tenant", "bucket"})

	idpRefreshes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: IdPRefreshTotal,
		Help: "Refresh-token grants sent to identity providers, by provider (Auth0 connection strategy) and result.",
	}, []string{"provider", "result"})

	idpRefreshDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    IdPRefreshDuration,
		Help:    "Duration of refresh-token grants at identity providers, by provider.",
		Buckets: prometheus.DefBuckets,
	}, []string{"provider"})

	tokenVaultGap = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    TokenVaultExpiryGap,
		Help:    "Seconds between a Token Vault token's expiry and the arrival of its successor in the Secret (0 when it arrived in time).",
		Buckets: []float64{0, 1, 2, 5, 10, 30, 60, 120, 300, 600},
	})
)

func init() {
	ctrlmetrics.Registry.MustRegister(auth0Requests, auth0Duration, auth0Remaining, auth0M2MQuota, idpRefreshes, idpRefreshDuration, tokenVaultGap)
}

// ObserveRefresh records one refresh-token grant at an identity provider. provider is the Auth0
// connection strategy (google-oauth2, waad, github, oauth2...), never a user or connection id;
// result is one of the Result constants.
func ObserveRefresh(provider, result string, d time.Duration) {
	if provider == "" {
		provider = unknownLabel
	}
	idpRefreshes.WithLabelValues(provider, result).Inc()
	idpRefreshDuration.WithLabelValues(provider).Observe(d.Seconds())
}

// ObserveTokenVaultExpiryGap records how long a binding's Secret held an expired Token Vault
// token before its successor arrived; a successor that arrived before expiry counts as 0.
func ObserveTokenVaultExpiryGap(oldExpiry, newTokenWritten time.Time) {
	gap := newTokenWritten.Sub(oldExpiry)
	if gap < 0 {
		gap = 0
	}
	tokenVaultGap.Observe(gap.Seconds())
}

// ForgetTenant drops the Auth0 series of a tenant object that is gone, so that deleted tenants
// leave no stale series behind.
func ForgetTenant(tenant string) {
	match := prometheus.Labels{"tenant": tenant}
	auth0Requests.DeletePartialMatch(match)
	auth0Duration.DeletePartialMatch(match)
	auth0Remaining.DeletePartialMatch(match)
	auth0M2MQuota.DeletePartialMatch(match)
}

// SetAuth0M2MQuotaRemaining records the tokens left in one bucket of a tenant's M2M token quota.
// bucket is "<entity>/<name>" (client/per_hour); the caller bounds its values, which come from
// Auth0's headers.
func SetAuth0M2MQuotaRemaining(tenant, bucket string, remaining int64) {
	auth0M2MQuota.WithLabelValues(labelOrUnknown(tenant), bucket).Set(float64(remaining))
}

// DeleteAuth0M2MQuotaRemaining drops the series of a quota bucket Auth0 no longer reports.
func DeleteAuth0M2MQuotaRemaining(tenant, bucket string) {
	auth0M2MQuota.DeleteLabelValues(labelOrUnknown(tenant), bucket)
}

func labelOrUnknown(v string) string {
	if v == "" {
		return unknownLabel
	}
	return v
}
