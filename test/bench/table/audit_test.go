package main

import (
	"os"
	"path/filepath"
	"testing"
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
		"uncached Secret reads":                {got.count("get", "secrets"), 1},
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
