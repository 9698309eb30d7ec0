// Package demo_test runs `make demo` headless (hack/demo with --for) as a smoke test of the
// whole operator: a real kube-apiserver and etcd, the manager binary, and the simulated
// Auth0 tenant with its identity providers.
package demo_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/demo"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

// runFor is how long the demo runs headless: with 45 s tokens it sees two refreshes per
// binding (the operator renews 30 s after it obtained a token).
const runFor = 65 * time.Second

var lastLine = regexp.MustCompile(`^demo: (\d+) bindings, (\d+) refreshes, (\d+) expired$`)

// config/samples/demo: five bindings of a namespaced Auth0Tenant (one, frank-vault, through
// Token Vault), and three of the ClusterAuth0Tenant "shared" in team-a and team-b, of which
// team-b/erin-google is refused.
const wantBindings, wantRefused = 8, 1

// vaultRow is the summary row of the Token Vault binding: Ready, never refused.
var vaultRow = regexp.MustCompile(`(?m)^  idptoken-demo/frank-vault +sim +sim-vault +True +t\+\d+s `)

// refusedRow is the summary row of the refused binding.
var refusedRow = regexp.MustCompile(`(?m)^  team-b/erin-google +shared \(cluster\) +sim-google +False NotPermitted \(expected\) +never \(expected\) +0 `)

func TestDemoHeadless(t *testing.T) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: this test runs a real kube-apiserver and etcd; " + testenv.AssetsHint("./test/demo/"))
	}
	if testing.Short() {
		t.Skip("-short: the demo smoke test runs for more than a minute")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the demo driver's process handling is Linux-only")
	}
	repo := testenv.RepoRoot()
	bin := t.TempDir()
	state := t.TempDir()
	build(t, repo, filepath.Join(bin, "manager"), "./cmd")
	build(t, repo, filepath.Join(bin, "demo"), "./hack/demo")

	ctx, cancel := context.WithTimeout(context.Background(), runFor+3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "demo"),
		"--repo", repo, "--state-dir", state, "--assets", assets,
		"--manager", filepath.Join(bin, "manager"),
		"--for", runFor.String(), "--token-lifetime", "45s")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// On timeout the driver gets SIGINT and stops what it started; SIGKILL only if it hangs.
	// Should this test process die, the driver gets SIGINT too.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGINT}
	t.Cleanup(func() {
		// Whatever happened, nothing the driver started may outlive the test.
		if err := demo.Reclaim(state, t.Logf); err != nil {
			t.Errorf("cleaning up after the demo: %v", err)
		}
	})

	start := time.Now()
	err := cmd.Run()
	t.Logf("demo output (%s):\n%s", time.Since(start).Round(time.Second), out.String())
	if err != nil {
		t.Fatalf("the demo failed: %v", err)
	}

	if m := auth0sim.TokenPattern.FindString(out.String()); m != "" {
		t.Errorf("the demo's output contains a token")
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	last := lines[len(lines)-1]
	m := lastLine.FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q does not match %s", last, lastLine)
	}
	bindings, _ := strconv.Atoi(m[1])
	refreshes, _ := strconv.Atoi(m[2])
	expired, _ := strconv.Atoi(m[3])
	if bindings != wantBindings {
		t.Errorf("bindings = %d, want %d (config/samples/demo)", bindings, wantBindings)
	}
	if expired != 0 {
		t.Errorf("expired = %d, want 0", expired)
	}
	if refreshes < bindings-wantRefused {
		t.Errorf("refreshes = %d, want at least one per binding that is not refused (%d) in %s with 45s tokens", refreshes, bindings-wantRefused, runFor)
	}
	if !refusedRow.MatchString(out.String()) {
		t.Errorf("the summary has no row saying that team-b/erin-google was refused with NotPermitted, as expected (%s)", refusedRow)
	}
	if !vaultRow.MatchString(out.String()) {
		t.Errorf("the summary has no row saying that the Token Vault binding idptoken-demo/frank-vault is Ready (%s)", vaultRow)
	}
	if _, err := os.Stat(filepath.Join(state, "pids")); !os.IsNotExist(err) {
		t.Errorf("the demo left its pids file behind (stat: %v): it did not finish its cleanup", err)
	}
}

func build(t *testing.T, repo, out, pkg string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}
