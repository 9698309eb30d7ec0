package metrics_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/metrics"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

const (
	m2mID     = "m2m-app"
	m2mSecret = "sim_cs_m2m-secret-value"
	userID    = "google-oauth2|metrics-probe-user"
)

func newSim(t *testing.T) *auth0sim.Server {
	t.Helper()
	sim, err := auth0sim.New(auth0sim.Options{RateLimitPerSecond: 50})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.AddM2MClient(m2mID, m2mSecret, "read:users", "read:user_idp_tokens", "read:connections", "read:connections_options")
	sim.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "google-client", ClientSecret: "sim_cs_google", AccessTokenLifetime: time.Hour})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_google", Name: "google-sim", Strategy: "oauth2", IdP: "google"})
	sim.AddUser(userID, auth0sim.IdentitySpec{Connection: "google-sim", Provider: "google-oauth2", UserID: "metrics-probe-user", IdP: "google", OfflineAccess: true})
	return sim
}

func newClient(t *testing.T, sim *auth0sim.Server, tenant string) *auth0.Client {
	t.Helper()
	c, err := auth0.NewClient(auth0.Config{
		Domain: sim.Domain(), ClientID: m2mID, ClientSecret: m2mSecret, CABundle: sim.CAPEM(),
		RequestsPerSecond: 50, Burst: 50, MetricsTenant: tenant,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAuth0RequestsAreCountedByTenantEndpointAndCode(t *testing.T) {
	sim := newSim(t)
	const tenant = "Auth0Tenant/team-a/counted"
	c := newClient(t, sim, tenant)
	ctx := context.Background()

	if _, err := c.GetUser(ctx, userID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, "google-oauth2|nobody"); err == nil {
		t.Fatal("reading an unknown user succeeded")
	}
	if _, err := c.GetConnectionByName(ctx, "google-sim"); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		endpoint, code string
		want           float64
	}{
		{metrics.EndpointOAuthToken, "200", 1},
		{metrics.EndpointUsers, "200", 1},
		{metrics.EndpointUsers, "404", 1},
		{metrics.EndpointConnections, "200", 1},
	} {
		got := value(t, metrics.Auth0RequestsTotal, map[string]string{"tenant": tenant, "endpoint": tc.endpoint, "code": tc.code})
		if got != tc.want {
			t.Errorf("%s{endpoint=%q,code=%q} = %v, want %v", metrics.Auth0RequestsTotal, tc.endpoint, tc.code, got, tc.want)
		}
	}
	if got := value(t, metrics.Auth0RequestDuration, map[string]string{"tenant": tenant, "endpoint": metrics.EndpointUsers}); got != 2 {
		t.Errorf("%s{endpoint=users} counted %v requests, want 2", metrics.Auth0RequestDuration, got)
	}
	// The simulator allows 50 requests per second and the client sent three API requests in this window at most.
	if got := value(t, metrics.Auth0RateLimitRemaining, map[string]string{"tenant": tenant}); got < 47 || got > 49 {
		t.Errorf("%s = %v, want the simulator's x-ratelimit-remaining (47..49)", metrics.Auth0RateLimitRemaining, got)
	}
	assertNoLeaks(t)
}

func TestIdPCallsThroughTheTenantClientAreNotAuth0Requests(t *testing.T) {
	sim := newSim(t)
	const tenant = "Auth0Tenant/team-a/idp-only"
	c := newClient(t, sim, tenant)
	// The same client carries IdP token requests (same CA bundle); they must not count as Auth0's.
	resp, err := c.HTTPClient().PostForm(sim.TokenURL("google"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"bogus"}})
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if series := seriesOf(t, metrics.Auth0RequestsTotal, tenant); len(series) != 0 {
		t.Errorf("an IdP call was counted as an Auth0 request: %v", series)
	}
}

func TestTokenExchangeIsToldApartByContext(t *testing.T) {
	sim := newSim(t)
	const tenant = "ClusterAuth0Tenant/exchange"
	c := newClient(t, sim, tenant)
	ctx := metrics.WithEndpoint(context.Background(), metrics.EndpointTokenExchange)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+sim.Domain()+"/oauth/token",
		strings.NewReader(url.Values{"grant_type": {"urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"}}.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := c.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	got := value(t, metrics.Auth0RequestsTotal, map[string]string{"tenant": tenant, "endpoint": metrics.EndpointTokenExchange, "code": strconv.Itoa(resp.StatusCode)})
	if got != 1 {
		t.Errorf("a token exchange answered %d was counted %v times under endpoint=token_exchange, want 1", resp.StatusCode, got)
	}
	if n := len(seriesOf(t, metrics.Auth0RequestsTotal, tenant)); n != 1 {
		t.Errorf("%d series for the tenant, want only the token_exchange one", n)
	}
}

func TestForgetTenantDropsItsSeries(t *testing.T) {
	sim := newSim(t)
	const gone, kept = "Auth0Tenant/team-a/gone", "Auth0Tenant/team-a/kept"
	for _, tenant := range []string{gone, kept} {
		if _, err := newClient(t, sim, tenant).GetUser(context.Background(), userID); err != nil {
			t.Fatal(err)
		}
	}
	for _, tenant := range []string{gone, kept} {
		metrics.SetAuth0M2MQuotaRemaining(tenant, "client/per_hour", 7)
	}
	metrics.ForgetTenant(gone)
	if series := seriesOf(t, "", gone); len(series) != 0 {
		t.Errorf("series left for a forgotten tenant: %v", series)
	}
	for _, name := range []string{metrics.Auth0RequestsTotal, metrics.Auth0M2MQuotaRemaining} {
		if series := seriesOf(t, name, kept); len(series) == 0 {
			t.Errorf("ForgetTenant dropped another tenant's %s", name)
		}
	}
}

func TestM2MQuotaRemainingIsSetAndDeletedPerBucket(t *testing.T) {
	const tenant = "ClusterAuth0Tenant/quota"
	metrics.SetAuth0M2MQuotaRemaining(tenant, "client/per_hour", 12)
	metrics.SetAuth0M2MQuotaRemaining(tenant, "client/per_day", 340)
	metrics.SetAuth0M2MQuotaRemaining(tenant, "client/per_hour", 11)
	if got := value(t, metrics.Auth0M2MQuotaRemaining, map[string]string{"tenant": tenant, "bucket": "client/per_hour"}); got != 11 {
		t.Errorf("client/per_hour = %v, want the latest value, 11", got)
	}
	metrics.DeleteAuth0M2MQuotaRemaining(tenant, "client/per_hour")
	series := seriesOf(t, metrics.Auth0M2MQuotaRemaining, tenant)
	if len(series) != 1 || !strings.Contains(series[0], "client/per_day") {
		t.Errorf("series after deleting client/per_hour: %v, want only client/per_day", series)
	}
}

func TestRefreshAndTokenVaultObservations(t *testing.T) {
	metrics.ObserveRefresh("observe-test", metrics.ResultInvalidGrant, 300*time.Millisecond)
	if got := value(t, metrics.IdPRefreshTotal, map[string]string{"provider": "observe-test", "result": metrics.ResultInvalidGrant}); got != 1 {
		t.Errorf("%s = %v, want 1", metrics.IdPRefreshTotal, got)
	}
	if got := value(t, metrics.IdPRefreshDuration, map[string]string{"provider": "observe-test"}); got != 1 {
		t.Errorf("%s counted %v, want 1", metrics.IdPRefreshDuration, got)
	}
	before := value(t, metrics.TokenVaultExpiryGap, nil)
	expiry := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	metrics.ObserveTokenVaultExpiryGap(expiry, expiry.Add(-time.Minute)) // in time: a gap of 0
	metrics.ObserveTokenVaultExpiryGap(expiry, expiry.Add(7*time.Second))
	h := histogram(t, metrics.TokenVaultExpiryGap)
	if got := float64(h.GetSampleCount()) - before; got != 2 {
		t.Errorf("%s counted %v observations, want 2", metrics.TokenVaultExpiryGap, got)
	}
	for _, b := range h.GetBucket() {
		if b.GetUpperBound() == 5 && b.GetCumulativeCount() < 1 {
			t.Errorf("the in-time successor is not in the 0..5s buckets: %v", h)
		}
	}
}

// value returns a counter's or gauge's value, or a histogram's sample count, for the series with
// exactly these labels; 0 when there is none.
func value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	for _, f := range gather(t) {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			case m.GetHistogram() != nil:
				return float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return 0
}

func histogram(t *testing.T, name string) *dto.Histogram {
	t.Helper()
	for _, f := range gather(t) {
		if f.GetName() == name && len(f.GetMetric()) == 1 {
			return f.GetMetric()[0].GetHistogram()
		}
	}
	t.Fatalf("no histogram %s", name)
	return nil
}

// seriesOf lists the series of name (every idptoken_ metric when empty) labelled with tenant.
func seriesOf(t *testing.T, name, tenant string) []string {
	t.Helper()
	var out []string
	for _, f := range gather(t) {
		if name != "" && f.GetName() != name || !strings.HasPrefix(f.GetName(), "idptoken_") {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, map[string]string{"tenant": tenant}) {
				out = append(out, f.GetName()+m.String())
			}
		}
	}
	return out
}

// assertNoLeaks fails when any label of the operator's metrics carries a user id, a secret or a query.
func assertNoLeaks(t *testing.T) {
	t.Helper()
	for _, f := range gather(t) {
		if !strings.HasPrefix(f.GetName(), "idptoken_") {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				v := l.GetValue()
				if strings.Contains(v, "metrics-probe-user") || strings.Contains(v, "nobody") || strings.Contains(v, "sim_") ||
					strings.ContainsAny(v, "?|") || strings.HasPrefix(v, "/") {
					t.Errorf("%s has label %s=%q", f.GetName(), l.GetName(), v)
				}
			}
		}
	}
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range m.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}

func gather(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	families, err := ctrlmetrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	return families
}
