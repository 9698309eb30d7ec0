// Package monitoring checks the alert rules and the Grafana dashboard of dist/chart with
// Prometheus's own rule and PromQL parsers and engine: every rule and query parses, uses only
// metrics the manager exports, and the alerts fire on the situations they name.
package monitoring

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/promql/promqltest"

	"github.com/idptoken/idptoken-operator/internal/metrics"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

func chartFile(parts ...string) string {
	return testenv.Path(append([]string{"dist", "chart", "files"}, parts...)...)
}

var promql = parser.NewParser(parser.Options{})

func loadRules(t *testing.T) map[string]rulefmt.Rule {
	t.Helper()
	groups, errs := rulefmt.ParseFile(chartFile("prometheus", "rules.yaml"), false, model.UTF8Validation, promql, promslog.NewNopLogger())
	if len(errs) > 0 {
		t.Fatalf("the alert rules do not parse: %v", errs)
	}
	alerts := map[string]rulefmt.Rule{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts[r.Alert] = r
		}
	}
	return alerts
}

// The alerts of the contract, each with its hold time.
func TestAlertRules(t *testing.T) {
	alerts := loadRules(t)
	want := map[string]time.Duration{
		"IdPTokenBindingNotReady":        10 * time.Minute,
		"IdPTokenExpiringWithoutRenewal": time.Minute,
		"IdPTokenRefreshesFailing":       15 * time.Minute,
		"IdPTokenAuth0RateLimited":       5 * time.Minute,
		"IdPTokenAuth0EventsDown":        15 * time.Minute,
	}
	if len(alerts) != len(want) {
		t.Errorf("%d alerts, want %d", len(alerts), len(want))
	}
	for name, hold := range want {
		r, ok := alerts[name]
		if !ok {
			t.Errorf("no alert %s", name)
			continue
		}
		if time.Duration(r.For) != hold {
			t.Errorf("%s: for %v, want %v", name, time.Duration(r.For), hold)
		}
		if r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
			t.Errorf("%s: no severity label or summary", name)
		}
		checkQuery(t, name, r.Expr)
	}
}

// grafanaVariables are replaced by what Grafana substitutes before the queries are parsed.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h")

func TestDashboardQueries(t *testing.T) {
	data, err := os.ReadFile(chartFile("dashboards", "idptoken-operator.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dashboard struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dashboard); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	used := map[string]bool{}
	queries := 0
	for _, p := range dashboard.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, target := range p.Targets {
			queries++
			expr := grafanaVariables.Replace(target.Expr)
			if strings.Contains(expr, "$") {
				t.Errorf("panel %q: unknown variable in %q", p.Title, target.Expr)
				continue
			}
			for _, m := range checkQuery(t, p.Title, expr) {
				used[m] = true
			}
		}
	}
	if queries == 0 {
		t.Fatal("the dashboard has no queries")
	}
	// The dashboard shows every metric of the contract.
	for _, name := range metrics.Names {
		if !used[name] {
			t.Errorf("no panel shows %s", name)
		}
	}
}

// histogramSeries maps a histogram's series names to its metric name.
var histogramSeries = regexp.MustCompile(`_(bucket|sum|count)$`)

// checkQuery parses expr and fails when it selects a metric the manager does not export.
// It returns the exported metrics the query uses.
func checkQuery(t *testing.T, what, expr string) []string {
	t.Helper()
	ast, err := promql.ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", what, expr, err)
		return nil
	}
	var used []string
	parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
		vs, ok := node.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if !slices.Contains(metrics.Names, name) {
			name = histogramSeries.ReplaceAllString(name, "")
		}
		if !slices.Contains(metrics.Names, name) {
			t.Errorf("%s: %q selects %q, which the manager does not export", what, expr, vs.Name)
			return nil
		}
		used = append(used, name)
		return nil
	})
	if len(used) == 0 {
		t.Errorf("%s: %q uses none of the operator's metrics", what, expr)
	}
	return used
}

// The alerts fire on what they are named for, and stay silent otherwise, evaluated by
// Prometheus's engine on series shaped like the manager's.
func TestAlertsFireOnTheirSituation(t *testing.T) {
	alerts := loadRules(t)
	engine := promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery)
	tests := map[string]string{
		// At 5m (300 s): "near" expires at 420 with its renewal overdue since 200; "scheduled" expires
		// at 420 but renews at 410 (renewBefore 10s); "far" is overdue but expires in an hour.
		"IdPTokenExpiringWithoutRenewal": `
load 1m
  idptoken_binding_expiration_timestamp_seconds{namespace="a",name="near"} 420+0x10
  idptoken_binding_renewal_timestamp_seconds{namespace="a",name="near"} 200+0x10
  idptoken_binding_expiration_timestamp_seconds{namespace="a",name="scheduled"} 420+0x10
  idptoken_binding_renewal_timestamp_seconds{namespace="a",name="scheduled"} 410+0x10
  idptoken_binding_expiration_timestamp_seconds{namespace="a",name="far"} 4000+0x10
  idptoken_binding_renewal_timestamp_seconds{namespace="a",name="far"} 200+0x10

eval instant at 5m EXPR
  {namespace="a",name="near"} 120
`,
		"IdPTokenBindingNotReady": `
load 1m
  idptoken_binding_ready_status{namespace="a",name="failing",condition="True"} 0+0x10
  idptoken_binding_ready_status{namespace="a",name="failing",condition="False"} 1+0x10
  idptoken_binding_ready_status{namespace="a",name="failing",condition="Unknown"} 0+0x10
  idptoken_binding_ready_status{namespace="a",name="fine",condition="True"} 1+0x10
  idptoken_binding_ready_status{namespace="a",name="fine",condition="False"} 0+0x10
  idptoken_binding_ready_status{namespace="a",name="fine",condition="Unknown"} 0+0x10

eval instant at 5m EXPR
  {namespace="a",name="failing"} 1
`,
		// google fails 3 of 4 refreshes, github none.
		"IdPTokenRefreshesFailing": `
load 1m
  idptoken_idp_refresh_total{provider="google-oauth2",result="success"} 0+1x30
  idptoken_idp_refresh_total{provider="google-oauth2",result="invalid_grant"} 0+3x30
  idptoken_idp_refresh_total{provider="github",result="success"} 0+4x30

eval instant at 20m EXPR
  {provider="google-oauth2"} 0.75
`,
		"IdPTokenAuth0RateLimited": `
load 1m
  idptoken_auth0_requests_total{tenant="Auth0Tenant/a/prod",endpoint="users",code="429"} 0+6x10
  idptoken_auth0_requests_total{tenant="Auth0Tenant/a/prod",endpoint="users",code="200"} 0+60x10
  idptoken_auth0_requests_total{tenant="Auth0Tenant/b/calm",endpoint="users",code="200"} 0+60x10

eval instant at 5m EXPR
  {tenant="Auth0Tenant/a/prod"} 0.1
`,
		// "down" has no open stream; "open" does, and a second series at 0 (another replica) does
		// not hide that (max by tenant); "disabled" has events off, so no series at all.
		"IdPTokenAuth0EventsDown": `
load 1m
  idptoken_auth0_events_subscribed{tenant="Auth0Tenant/a/down",pod="leader"} 0+0x10
  idptoken_auth0_events_subscribed{tenant="ClusterAuth0Tenant/open",pod="leader"} 1+0x10
  idptoken_auth0_events_subscribed{tenant="ClusterAuth0Tenant/open",pod="standby"} 0+0x10
  idptoken_auth0_requests_total{tenant="Auth0Tenant/a/disabled",endpoint="users",code="200"} 0+60x10

eval instant at 5m EXPR
  {tenant="Auth0Tenant/a/down"} 0
`,
	}
	for name, script := range tests {
		t.Run(name, func(t *testing.T) {
			r, ok := alerts[name]
			if !ok {
				t.Fatalf("no alert %s", name)
			}
			expr := strings.Join(strings.Fields(r.Expr), " ")
			promqltest.RunTest(t, strings.Replace(script, "EXPR", expr, 1), engine)
		})
	}
}
