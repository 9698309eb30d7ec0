// Command demo is the driver of `make demo`: it runs kube-apiserver and etcd (envtest), a
// simulated Auth0 tenant (in this process), and bin/manager (with
// --cluster-resource-namespace=idptoken-system); applies config/samples/demo; and shows a live
// view of the bindings of every namespace until Ctrl-C, or, with --for, runs headless for that
// long and ends with the line "demo: <N> bindings, <R> refreshes, <E> expired, <K> restarts"
// (exit 0 when every binding stayed Ready after its first sync, every binding annotated
// demo.idptoken.dev/expect: <reason> stayed Ready=False with that reason and got no Secret, no
// Secret ever held an expired token, a templated Secret held exactly its template's keys, and
// each Deployment of the samples was restarted within 15 s after the token of a binding naming
// it changed, never at a Secret's first write, and at most once per rolloutRestartMinInterval).
//
// Usage (from the repository root; `make demo` does this):
//
//	go build -o bin/manager ./cmd && go build -o bin/demo ./hack/demo
//	bin/demo --assets bin/k8s/<ENVTEST_K8S_VERSION>-linux-amd64 [--for 90s] [--token-lifetime 45s]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/idptoken/idptoken-operator/test/demo"
)

func main() {
	var (
		cfg         demo.Config
		managerArgs string
	)
	flag.StringVar(&cfg.RepoDir, "repo", ".", "Repository root (config/crd/bases, config/samples/demo).")
	flag.StringVar(&cfg.StateDir, "state-dir", "", "Directory for the kubeconfig, logs and the simulator's CA (default <repo>/.demo).")
	flag.StringVar(&cfg.Assets, "assets", os.Getenv("KUBEBUILDER_ASSETS"), "Directory holding kube-apiserver, etcd and kubectl (default $KUBEBUILDER_ASSETS).")
	flag.StringVar(&cfg.Manager, "manager", filepath.Join("bin", "manager"), "The manager binary.")
	flag.StringVar(&managerArgs, "manager-args", "", "Extra flags for the manager, space-separated (e.g. --zap-devel).")
	flag.Func("for", "Run headless for this long (e.g. 90s) and check the run; empty or 0 shows the live view until Ctrl-C.", func(s string) error {
		if s = strings.TrimSpace(s); s == "" || s == "0" {
			cfg.For = 0
			return nil
		}
		d, err := time.ParseDuration(s)
		if err == nil && d < 0 {
			err = fmt.Errorf("must not be negative")
		}
		cfg.For = d
		return err
	})
	flag.Func("token-lifetime", "Lifetime of the simulated IdP access tokens (default 2m live, 45s headless).", func(s string) error {
		if s = strings.TrimSpace(s); s == "" {
			return nil
		}
		d, err := time.ParseDuration(s)
		if err == nil && d < 10*time.Second {
			err = fmt.Errorf("must be at least 10s")
		}
		cfg.TokenLifetime = d
		return err
	})
	flag.Parse()
	if cfg.Assets == "" {
		_, _ = fmt.Fprintln(os.Stderr, "demo: --assets (or KUBEBUILDER_ASSETS) is required: the directory of kube-apiserver and etcd (make envtest-assets)")
		os.Exit(2)
	}
	cfg.ManagerArgs = strings.Fields(managerArgs)
	if fi, err := os.Stdout.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		cfg.TTY = true
	}

	// Ctrl-C, SIGTERM and SIGHUP end the run; everything started is stopped before exit.
	// Further signals are absorbed so that cleanup is not cut short.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()

	sum, err := demo.Run(ctx, cfg)
	if err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "demo: error: %v\n", err)
		os.Exit(1)
	}
	if cfg.For > 0 && !sum.OK() {
		os.Exit(1)
	}
	if cfg.For == 0 && len(sum.Failures) > 0 {
		os.Exit(1)
	}
}
