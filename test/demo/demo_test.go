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
// binding (the operator renews 30 s after it obtained a token), and so the restart of the
// Deployment named by the templated binding, 5 s after the first.
const runFor = 65 * time.Second

// lastLine is the form scripts read; ", <K> restarts" was appended to it.
var lastLine = regexp.MustCompile(`^demo: (\d+) bindings, (\d+) refreshes, (\d+) expired, (\d+) restarts$`)

// config/samples/demo: six bindings of a namespaced Auth0Tenant (one, frank-vault, through
// Token Vault; one, carol-github-netrc, templated, naming the Deployment git-mirror as its
// rollout restart target), and three of the ClusterAuth0Tenant "shared" in team-a and team-b,
// of which team-b/erin-google is refused; and the re-login step's idptoken-demo/grace-brief.
const wantBindings, wantRefused = 10, 1

// reloginRow is the summary row saying that the re-login binding, TokenExpired without a
// refresh token, was Ready with its user's new token within HealWithin of the new login.
var reloginRow = regexp.MustCompile(`(?m)^  auth0 events: idptoken-demo/grace-brief \(user oauth2\|sim-brief\|7007, no refresh token\): ` +
	`Ready=False TokenExpired from t\+\d+s \(\d+ poll\(s\), its Secret holding the expired token\); its user logged in again at t\+\d+s ` +
	`and it was Ready with the new token (\d+\.\d) s later \(Auth0 event user\.updated; within 15s\); not counted as expired$`)

// templateRow is the summary row saying that the templated binding's Secret held exactly the
// template's keys, and no access_token, at every poll that saw it.
var templateRow = regexp.MustCompile(`(?m)^  template: idptoken-demo/carol-github-netrc: Secret carol-github-netrc \(mergePolicy Replace\) ` +
	`held exactly the template's keys \(\.netrc, authorization\), no access_token, at (\d+) of (\d+) polls$`)

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
	restarts, _ := strconv.Atoi(m[4])
	if bindings != wantBindings {
		t.Errorf("bindings = %d, want %d (config/samples/demo)", bindings, wantBindings)
	}
	if expired != 0 {
		t.Errorf("expired = %d, want 0", expired)
	}
	if refreshes < bindings-wantRefused {
		t.Errorf("refreshes = %d, want at least one per binding that is not refused (%d) in %s with 45s tokens", refreshes, bindings-wantRefused, runFor)
	}
	if restarts < 1 {
		t.Errorf("restarts = %d, want at least 1: the templated binding's token is renewed %s into the run, and its "+
			"rollout restart target is restarted 5 s later", restarts, 45*time.Second*2/3)
	}
	if tm := templateRow.FindStringSubmatch(out.String()); tm == nil {
		t.Errorf("the summary has no row saying that the templated Secret held exactly the template's keys (%s)", templateRow)
	} else if tm[1] != tm[2] || tm[2] == "0" {
		t.Errorf("the templated Secret held the template's keys at %s of %s polls, want all of at least one", tm[1], tm[2])
	}
	if !refusedRow.MatchString(out.String()) {
		t.Errorf("the summary has no row saying that team-b/erin-google was refused with NotPermitted, as expected (%s)", refusedRow)
	}
	if rm := reloginRow.FindStringSubmatch(out.String()); rm == nil {
		t.Errorf("the summary has no row saying that idptoken-demo/grace-brief was Ready with its user's new token after the login (%s)", reloginRow)
	} else {
		t.Logf("the re-login binding was Ready with the new token %s s after the login", rm[1])
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
