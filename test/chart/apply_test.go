package chart

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/idptoken/idptoken-operator/test/testenv"
)

// The rendered chart, with each optional feature, is applied to a real API server with
// server-side apply: a field the schema does not know, a wrong type or an invalid value fails.
func TestRenderedManifestsApplyToAPIServer(t *testing.T) {
	logf.SetLogger(logr.Discard())
	env := &envtest.Environment{
		BinaryAssetsDirectory: testenv.AssetsDir(),
		// Only the Prometheus Operator's CRDs: the chart's own come from the rendered chart.
		CRDDirectoryPaths:     []string{generateMonitoringCRDs(t)},
		ErrorIfCRDPathMissing: true,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping envtest: %v", err)
		}
	})
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := apiextensionsv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	cases := map[string][]string{
		"defaults": nil,
		"everything on": {
			"replicaCount=2", "watchNamespaces={team-a,team-b}", "watchLabelSelector=sharding.idptoken.dev/shard=a",
			"metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true",
			"metrics.grafanaDashboard.enabled=true", "networkPolicy.enabled=true", "rolloutRestart.enabled=true",
		},
		"rollout restarts, cluster-wide":       {"rolloutRestart.enabled=true"},
		"insecure metrics, no leader election": {"metrics.secure=false", "metrics.port=8080", "leaderElection.enabled=false", "metrics.serviceMonitor.enabled=true"},
	}
	i := 0
	for name, set := range cases {
		i++
		t.Run(name, func(t *testing.T) {
			// A release and namespace per case, so that cluster-scoped names do not collide.
			rel, ns := fmt.Sprintf("r%d", i), fmt.Sprintf("idptoken-%d", i)
			objs := render(t, rel, ns, set...)
			for _, n := range []string{ns, "team-a", "team-b"} {
				err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}})
				if err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
			}
			crds := ofKind(objs, "CustomResourceDefinition")
			if len(crds) == 0 {
				t.Fatal("no CRDs rendered")
			}
			for _, o := range crds {
				apply(ctx, t, c, o)
			}
			for _, o := range crds {
				waitEstablished(ctx, t, c, o.GetName())
			}
			for _, o := range objs {
				if o.GetKind() != "CustomResourceDefinition" {
					apply(ctx, t, c, o)
				}
			}
		})
	}
}

func apply(ctx context.Context, t *testing.T, c client.Client, o *unstructured.Unstructured) {
	t.Helper()
	err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("chart-test"), client.ForceOwnership)
	if err != nil {
		t.Errorf("applying %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
}

func waitEstablished(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := c.Get(ctx, client.ObjectKey{Name: name}, crd); err != nil {
			return false, err
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("CRD %s not established: %v", name, err)
	}
}
