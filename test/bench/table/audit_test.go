package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAuditLogCountsTheManagersRequests(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	lines := `{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":201}}
{"verb":"patch","user":{"username":"bench-manager"},"objectRef":{"resource":"idptokenbindings","subresource":"status"},"responseStatus":{"code":200}}
{"verb":"get","user":{"username":"bench-manager"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":404}}
{"verb":"create","user":{"username":"admin"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":201}}
{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"events"},"responseStatus":{"code":201}}
not json
{"verb":"update","user":{"username":"bench-manager"},"objectRef":{"resource":"secrets"},"responseStatus":{"code":409}}
{"verb":"create","user":{"username":"bench-manager"},"objectRef":{"resource":"sec`
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &auditLog{path: path}
	got, err := a.read()
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		got, want int
	}{
		"Secret writes, refused ones included": {got.writes(isSecret), 2},
		"status writes":                        {got.writes(isStatus), 1},
		"other writes":                         {got.writes(isOther), 1},
		"uncached Secret reads":                {got.gets("secrets"), 1},
	}
	for name, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s: %d, want %d (counts: %v)", name, tc.got, tc.want, got)
		}
	}
	// The partial last line is read once it is complete, and nothing is counted twice.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`rets"},"responseStatus":{"code":201}}` + "\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	more, err := a.read()
	if err != nil {
		t.Fatal(err)
	}
	if n := more.writes(isSecret); n != 1 || len(more) != 1 {
		t.Errorf("second read counted %v, want one Secret create", more)
	}
}

func TestProcReadsThisProcess(t *testing.T) {
	u := sample(os.Getpid())
	if u.peak == 0 || u.rss == 0 || u.peak < u.rss {
		t.Errorf("VmHWM %d KiB, VmRSS %d KiB: want both, peak ≥ current", u.peak, u.rss)
	}
	if _, err := procCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
}

func TestTablePrintsOneRowPerWorkloadAndTheSteadyState(t *testing.T) {
	results := []*result{
		{w: workload{bindings: 1000, users: 100, rate: 2}, ready: 1000, elapsed: 50 * time.Second, auth0Reqs: 100,
			reqs: requestCounts{"patch secrets 201": 2000, "patch idptokenbindings/status 200": 1000}},
		{w: workload{bindings: 10, users: 1, rate: 50, tenantRate: 50}, failures: []string{"no binding became Ready"}},
		{w: workload{bindings: 1000, users: 100, rate: 50, tenantRate: 50, steady: time.Minute}, ready: 1000, elapsed: 20 * time.Second,
			steady: &steadyResult{window: 30 * time.Second, auth0Reqs: 3}},
	}
	var out strings.Builder
	if err := printTable(&out, "small", results); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{
		"| 1,000 bindings / 100 users, Auth0 at 2 req/s | 50.0 s | ≤ 57.0 s (met) | 100 (1.00) | 0 | 3.00 (Secret 2.00, status 1.00, other 0.00) |",
		"| 10 bindings / 1 users, Auth0 at 50 req/s | FAILED: no binding became Ready |",
		"| steady state after 1,000 bindings / 100 users, Auth0 at 50 req/s, 30s window, no refresh due | 0 not Ready | 0 Auth0 requests | 6.0 per minute |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the table lacks %q:\n%s", want, text)
		}
	}
}
