package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A restart row's audit log as detailedAuditPolicy writes it: Event and binding status bodies,
// metadata for the rest.
const restartAuditLog = `{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"events","apiGroup":"events.k8s.io"},"responseStatus":{"code":201},"requestObject":{"metadata":{"name":"b-00001.1871a"},"reason":"Refreshed","regarding":{"kind":"IdPTokenBinding","name":"b-00001"},"note":"refreshed"}}
{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"events","apiGroup":"events.k8s.io"},"responseStatus":{"code":201},"requestObject":{"metadata":{"name":"b-00001.1871b"},"reason":"RolloutRestarted","regarding":{"kind":"IdPTokenBinding","name":"b-00001"}}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"events","apiGroup":"events.k8s.io","name":"b-00001.1871b"},"responseStatus":{"code":200},"requestObject":{"series":{"count":2}}}
{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"events","apiGroup":"events.k8s.io"},"responseStatus":{"code":201},"requestObject":{"metadata":{"name":"bench-app.1871c"},"reason":"RolloutRestarted","regarding":{"kind":"Deployment","name":"bench-app"}}}
{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"events"},"responseStatus":{"code":201},"requestObject":{"metadata":{"name":"b-00002.1871d"},"reason":"RolloutRestartDeferred","involvedObject":{"kind":"IdPTokenBinding","name":"b-00002"}}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"events","name":"from-before"},"responseStatus":{"code":200},"requestObject":{"series":{"count":3}}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"idptokenbindings","subresource":"status","name":"b-00001"},"responseStatus":{"code":200},"requestObject":{"status":{"lastRolloutRestart":"2026-12-05T00:00:05Z"}}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"idptokenbindings","subresource":"status","name":"b-00001"},"responseStatus":{"code":200},"requestObject":{"metadata":{"resourceVersion":"12"},"status":{"secretMAC":"m2","lastRolloutRestart":"2026-12-05T00:00:05Z"}}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"idptokenbindings","subresource":"status","name":"b-00002"},"responseStatus":{"code":409},"requestObject":{"metadata":{"resourceVersion":"13"},"status":{"secretMAC":"m3"}}}
{"verb":"update","user":{"username":"bench-manager"},"objectRef":{"resource":"secrets","name":"b-00001-token"},"responseStatus":{"code":200}}
{"verb":"get","user":{"username":"bench-manager"},"objectRef":{"resource":"deployments","name":"bench-app"},"responseStatus":{"code":200}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"deployments","name":"bench-app"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-05T00:00:05.000000Z"}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"deployments","name":"bench-app"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-05T00:01:05.500000Z"}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"deployments","name":"bench-app"},"responseStatus":{"code":403},"requestReceivedTimestamp":"2026-12-05T00:01:06.000000Z"}
{"verb":"patch","user":{"username":"admin"},"objectRef":{"resource":"deployments","name":"bench-app"},"responseStatus":{"code":200},"requestReceivedTimestamp":"2026-12-05T00:01:07.000000Z"}
`

func TestRestartRowSortsTheManagersWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	if err := os.WriteFile(path, []byte(restartAuditLog), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &auditLog{path: path}
	got, err := a.read()
	if err != nil {
		t.Fatal(err)
	}
	b := breakdown(got)
	tests := map[string]struct{ got, want int }{
		"Secret writes": {b.secret, 1},
		"the reconciler's status writes, the refused one and one that keeps lastRolloutRestart included": {b.status, 2},
		"the Restarter's lastRolloutRestart patches":                                                     {b.lastRestart, 1},
		"Event writes":     {b.eventsAll, 6},
		"Refreshed Events": {b.events["IdPTokenBinding/Refreshed"], 1},
		"RolloutRestarted Events on a binding, with the patch of their series": {b.events["IdPTokenBinding/RolloutRestarted"], 2},
		"RolloutRestarted Events on the Deployment":                            {b.events["Deployment/RolloutRestarted"], 1},
		"RolloutRestartDeferred Events (core v1)":                              {b.events["IdPTokenBinding/RolloutRestartDeferred"], 1},
		"a series patch of an Event created before the log was read":           {b.events["?"], 1},
		"Deployment patches, the refused one included":                         {b.deployment, 3},
		"conflicts":                        {b.conflicts, 1},
		"other writes":                     {b.other, 0},
		"the generic status column counts": {got.writes(isStatus), 3},
		"the generic other column counts":  {got.writes(isOther), 9},
		"uncached Deployment reads":        {got.gets("deployments"), 1},
	}
	for name, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d (counts: %v)", name, tc.got, tc.want, got)
		}
	}

	s := spacing(a.takePatched())
	if s.targets != 1 || s.patches != 2 || len(s.gaps) != 1 || s.gaps[0] != 60500*time.Millisecond {
		t.Errorf("spacing: %+v, want the manager's 2 successful patches of 1 target, 60.5 s apart", s)
	}
	if per, ok := s.perInterval(); !ok || per < 0.99 || per > 0.995 {
		t.Errorf("per interval: %v %v, want 60 ÷ 60.5", per, ok)
	}
	if again := a.takePatched(); again != nil {
		t.Errorf("a second take returned %v, want nothing", again)
	}
}

func TestRestartRowIsPrintedWithItsBreakdown(t *testing.T) {
	w := workload{bindings: 200, users: 20, rate: 50, tenantRate: 50, renewals: restartRowWindow, restarts: true}
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	r := &result{w: w, ready: 200, elapsed: 2 * time.Second, renewals: &renewalResult{
		window: restartRowWindow, refreshes: 100, mgrCPU: 1,
		reqs: requestCounts{
			"update secrets 200": 1000, "patch idptokenbindings/status 200": 1000,
			"patch idptokenbindings/status[lastRolloutRestart] 200": 500,
			"create events[IdPTokenBinding/Refreshed] 201":          1000,
			"create events[IdPTokenBinding/RolloutRestarted] 201":   500,
			"patch deployments 200":                                 3,
		},
		patched: map[string][]time.Time{restartTargetName: {t0, t0.Add(time.Minute), t0.Add(2 * time.Minute)}},
	}}
	var out strings.Builder
	if err := printTable(&out, "small", []*result{r}); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"| renewals after 200 bindings / 20 users, Auth0 at 50 req/s, templated Secrets sharing 1 restart target, 45s tokens, 2m35s window, rolloutRestartMinInterval 1m |",
		"| 4.00 per binding renewal (Secret 1.00, status 1.00, lastRolloutRestart status patch 0.50, Event 1.50, Deployment patch 0.003, other 0.00); 3 Deployment patches of 1 target, 60.0 and 60.0 s apart: 1.00 per target per 1m |",
		"Event writes (creates and series patches) per binding renewal, by the kind of object and reason: IdPTokenBinding/Refreshed 1.000, IdPTokenBinding/RolloutRestarted 0.500; 0 write conflicts (409)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
}

func TestRestartRowChecksTheRenderedBearerKey(t *testing.T) {
	tests := map[string]struct {
		data  map[string][]byte
		token string
		want  bool
	}{
		"rendered":           {map[string][]byte{bearerKey: []byte("Bearer tok-1")}, "tok-1", true},
		"an older token":     {map[string][]byte{bearerKey: []byte("Bearer tok-0")}, "tok-1", false},
		"missing":            {map[string][]byte{}, "tok-1", false},
		"no token":           {map[string][]byte{bearerKey: []byte("Bearer ")}, "", false},
		"without the scheme": {map[string][]byte{bearerKey: []byte("tok-1")}, "tok-1", false},
	}
	for name, tc := range tests {
		if got := bearerRendered(&corev1.Secret{Data: tc.data}, tc.token); got != tc.want {
			t.Errorf("%s: %v, want %v", name, got, tc.want)
		}
	}
}
