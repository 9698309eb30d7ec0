// Command manager runs the idptoken-operator controllers.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"os"
	"time"

	memlimit "github.com/KimMachineGun/automemlimit/memlimit"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	_ "k8s.io/client-go/plugin/pkg/client/auth"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

var (
	scheme   = runtime.NewScheme()
	setupLog = ctrl.Log.WithName("setup")
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr             string
		probeAddr               string
		enableLeaderElection    bool
		secureMetrics           bool
		enableHTTP2             bool
		maxConcurrentReconciles int
		pprofAddr               string
		watchNamespaces         string
		clusterResourceNS       string
		watchLabelSelector      string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8080",
		"The address the metrics endpoint binds to. Use :8443 with --metrics-secure for HTTPS, or 0 to disable it.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election, so that only one manager is active at a time.")
	flag.BoolVar(&secureMetrics, "metrics-secure", false, "Serve metrics over HTTPS with authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false, "Enable HTTP/2 for the metrics server (off because of HTTP/2 rapid-reset CVEs).")
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", 16,
		"How many IdPTokenBindings are reconciled at once.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		"Serve Go's pprof profiles (heap, CPU) on this address, e.g. 127.0.0.1:6060; empty (the default) serves none.")
	flag.StringVar(&watchNamespaces, "watch-namespace", "",
		"Comma-separated namespaces to watch; empty watches all namespaces.")
	flag.StringVar(&clusterResourceNS, "cluster-resource-namespace", "",
		"The namespace holding ClusterAuth0Tenants' credentials and their identities' refresh state. "+
			"Default: the namespace the manager runs in (from its service account).")
	flag.StringVar(&watchLabelSelector, "watch-label-selector", "",
		"Serve only the IdPTokenBindings matching this label selector (e.g. sharding.idptoken.dev/shard=a), so that several managers can split the bindings.")
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))

	// A soft memory limit of 80% of the container's: the garbage collector works harder near the
	// limit instead of the kernel killing the pod. An explicit GOMEMLIMIT wins.
	if limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithRatio(0.8), memlimit.WithProvider(memlimit.FromCgroup)); err == nil && limit > 0 {
		setupLog.Info("Set GOMEMLIMIT from the container's memory limit", "bytes", limit)
	}

	percent, fromEnv := setGCPercent(os.LookupEnv)
	setupLog.Info("Garbage collection", "GOGC", percent, "fromEnvironment", fromEnv)

	if maxConcurrentReconciles < 1 {
		setupLog.Error(fmt.Errorf("--max-concurrent-reconciles must be at least 1, got %d", maxConcurrentReconciles), "Invalid flags")
		os.Exit(1)
	}

	shard, err := controller.ParseWatchLabelSelector(watchLabelSelector)
	if err != nil {
		setupLog.Error(err, "Invalid flags")
		os.Exit(1)
	}

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}

	if clusterResourceNS == "" {
		clusterResourceNS = controller.InClusterNamespace()
	}
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                 scheme,
		Metrics:                metricsOptions(metricsAddr, secureMetrics, tlsOpts),
		HealthProbeBindAddress: probeAddr,
		PprofBindAddress:       pprofAddr,
		LeaderElection:         enableLeaderElection,
		LeaderElectionID:       controller.ShardLeaderElectionID(shard),
		Cache:                  controller.WithBindingSelector(controller.CacheOptions(controller.ParseNamespaces(watchNamespaces), clusterResourceNS), shard),
	})
	if err != nil {
		setupLog.Error(err, "Failed to create the manager")
		os.Exit(1)
	}

	if clusterResourceNS == "" {
		setupLog.Info("The operator's namespace is not known (no --cluster-resource-namespace, not running in a pod): ClusterAuth0Tenants will not be served")
		if err := mgr.Add(controller.WarnUnservedClusterTenants(mgr.GetAPIReader(), setupLog)); err != nil {
			setupLog.Error(err, "Failed to set up the manager")
			os.Exit(1)
		}
	}
	if err := controller.SetupWithManager(mgr, controller.Options{
		Clock:                    clock.RealClock{},
		MaxConcurrentReconciles:  maxConcurrentReconciles,
		ClusterResourceNamespace: clusterResourceNS,
		OnVaultGap:               metrics.ObserveTokenVaultExpiryGap,
		StateGCInterval:          stateGCInterval(watchLabelSelector),
		ClaimHolder:              controller.ClaimHolderName(hostname(), watchNamespaces, watchLabelSelector),
	}); err != nil {
		setupLog.Error(err, "Failed to set up the controllers")
		os.Exit(1)
	}

	if err := metrics.RegisterBindingCollector(mgr.GetCache(), mgr.Elected()); err != nil {
		setupLog.Error(err, "Failed to register the binding metrics")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up the health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "Failed to set up the ready check")
		os.Exit(1)
	}

	setupLog.Info("Starting the manager", "watchNamespaces", watchNamespaces, "watchLabelSelector", shard.String(),
		"maxConcurrentReconciles", maxConcurrentReconciles, "clusterResourceNamespace", clusterResourceNS)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		setupLog.Error(err, "The manager stopped with an error")
		os.Exit(1)
	}
}

// stateGCInterval turns the collection of unreferenced refresh state off in a shard: it sees only
// its own bindings, so it cannot tell that an identity has none left.
func stateGCInterval(watchLabelSelector string) time.Duration {
	if watchLabelSelector != "" {
		return -1
	}
	return 0 // the default
}

// metricsOptions serves metrics; with --metrics-secure over HTTPS, to callers the API server
// authenticates and authorises (TokenReview, SubjectAccessReview).
func metricsOptions(addr string, secure bool, tlsOpts []func(*tls.Config)) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: addr, SecureServing: secure, TLSOpts: tlsOpts}
	if secure {
		opts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	return opts
}

// hostname is the pod's name in a pod; "" when it cannot be read.
func hostname() string {
	h, _ := os.Hostname()
	return h
}
