package demo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// controlPlane is a local kube-apiserver and etcd started through envtest, with the CRDs of
// config/crd/bases installed.
type controlPlane struct {
	env        *envtest.Environment
	cfg        *rest.Config
	kubeconfig []byte
}

func startControlPlane(assets, crdDir, logDir string) (*controlPlane, error) {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return nil, fmt.Errorf("control plane binary missing (run `make envtest-assets`): %w", err)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        []string{crdDir},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: 90 * time.Second,
		ControlPlaneStopTimeout:  15 * time.Second,
	}
	api := env.ControlPlane.GetAPIServer()
	if f, err := os.Create(filepath.Join(logDir, "kube-apiserver.log")); err == nil {
		api.Out, api.Err = f, f
	}
	// envtest binds the apiserver and etcd to 127.0.0.1 / localhost only.
	if _, err := env.Start(); err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("starting kube-apiserver and etcd: %w", err)
	}
	user, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("creating the admin user: %w", err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		_ = env.Stop()
		return nil, fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	cfg := user.Config()
	cfg.QPS, cfg.Burst = 50, 100
	return &controlPlane{env: env, cfg: cfg, kubeconfig: kc}, nil
}

func (c *controlPlane) stop() error { return c.env.Stop() }

// newClient returns an uncached client that knows the operator's types.
func newClient(cfg *rest.Config) (client.Client, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	return client.New(cfg, client.Options{Scheme: scheme})
}

// managerProcess is bin/manager run as a child process, its output going to a log file.
type managerProcess struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  *os.File
}

// OperatorNamespace is the demo's operator namespace (--cluster-resource-namespace): it holds
// the ClusterAuth0Tenant's credentials Secret of config/samples/demo and its refresh state.
const OperatorNamespace = "idptoken-system"

func startManager(binary, kubeconfig, logPath string, extraArgs []string) (*managerProcess, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{
		"--kubeconfig=" + kubeconfig,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--cluster-resource-namespace=" + OperatorNamespace,
	}, extraArgs...)
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	// Own process group: Ctrl-C reaches the driver, which stops the manager first, then the
	// simulator and the control plane. Pdeathsig stops it should the driver die.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	m := &managerProcess{cmd: cmd, done: make(chan struct{}), log: logFile}
	go func() {
		m.err = cmd.Wait()
		close(m.done)
	}()
	return m, nil
}

// exited reports whether the manager has exited, and how.
func (m *managerProcess) exited() (bool, error) {
	select {
	case <-m.done:
		return true, m.err
	default:
		return false, nil
	}
}

// stop sends SIGTERM (the manager shuts down gracefully) and SIGKILL after a grace period.
func (m *managerProcess) stop(grace time.Duration) {
	defer func() { _ = m.log.Close() }()
	if done, _ := m.exited(); done {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(grace):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

// renderSamples reads the templates of dir in name order and expands ${NAME} from vars, as
// envsubst would (comment lines are left out). A reference to an unknown variable is an error.
func renderSamples(dir string, vars map[string]string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no *.yaml in %s", dir)
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var missing []string
		lines := strings.Split(string(raw), "\n")
		for i, line := range lines {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				lines[i] = "" // comments may show shell usage with $ in it
				continue
			}
			lines[i] = os.Expand(line, func(k string) string {
				v, ok := vars[k]
				if !ok {
					missing = append(missing, k)
				}
				return v
			})
		}
		text := strings.Join(lines, "\n")
		if len(missing) > 0 {
			return nil, fmt.Errorf("%s: unknown template variables %s", f, strings.Join(missing, ", "))
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(text)), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			if len(u.Object) == 0 {
				continue
			}
			objs = append(objs, u)
		}
	}
	return objs, nil
}

// applyObjects creates the objects, in order. The control plane is fresh, so they are new.
func applyObjects(ctx context.Context, c client.Client, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if err := c.Create(ctx, o.DeepCopy(), client.FieldOwner("idptoken-demo")); err != nil {
			return fmt.Errorf("creating %s %s/%s: %w", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	return nil
}

// ExpectAnnotation on a sample IdPTokenBinding names the Ready=False reason the demo expects
// of it, such as NotPermitted for a binding its ClusterAuth0Tenant's policy refuses. A binding
// without it must become Ready and stay Ready.
const ExpectAnnotation = "demo.idptoken.dev/expect"

// sampleBinding is what the samples say of one IdPTokenBinding.
type sampleBinding struct {
	key        types.NamespacedName
	expect     string // the expected Ready=False reason; "" expects Ready
	userID     string // spec.user.id; "" for a connection binding
	connection string // spec.user.connection or spec.connection.id
	tokenVault bool   // spec.user.source TokenVault
	secretName string // spec.secret.name
	tenant     string // the tenant's name, "(cluster)" appended for a ClusterAuth0Tenant
	// Of spec.secret.template: its data's keys, sorted (nil without a template), and its
	// mergePolicy.
	templateKeys []string
	mergePolicy  authv1alpha1.MergePolicy
	// restartTargets are the Deployments spec.rolloutRestartTargets names by name, in the
	// binding's namespace; minInterval is rolloutRestartMinInterval (0 when unset).
	restartTargets []string
	minInterval    time.Duration
	// relogin: the binding of the re-login step (relogin.go), not of the samples.
	relogin bool
}

func (b sampleBinding) String() string { return b.key.String() }

// sampleTenant is an Auth0Tenant (with its namespace) or a ClusterAuth0Tenant (without).
type sampleTenant struct {
	kind string
	key  types.NamespacedName
}

func (t sampleTenant) String() string {
	if t.key.Namespace == "" {
		return t.key.Name + " (" + t.kind + ")"
	}
	return t.key.Name + " (" + t.kind + ", " + t.key.Namespace + ")"
}

// samples is what the demo watches among the applied objects.
type samples struct {
	bindings   []sampleBinding // sorted by namespace/name
	tenants    []sampleTenant
	namespaces []string // every namespace the samples create or use, sorted
	// deployments the samples create, in the order of the samples: the rollout restart targets.
	deployments []types.NamespacedName
}

// samplesOf finds the bindings, tenants and namespaces among objs.
func samplesOf(objs []*unstructured.Unstructured) samples {
	var out samples
	nss := map[string]bool{}
	for _, o := range objs {
		if o.GetNamespace() != "" {
			nss[o.GetNamespace()] = true
		}
		switch o.GetKind() {
		case "Namespace":
			nss[o.GetName()] = true
		case "Deployment":
			out.deployments = append(out.deployments, types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()})
		case "Auth0Tenant", "ClusterAuth0Tenant":
			out.tenants = append(out.tenants, sampleTenant{kind: o.GetKind(), key: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}})
		case "IdPTokenBinding":
			b := sampleBinding{key: types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}, expect: o.GetAnnotations()[ExpectAnnotation]}
			b.userID, _, _ = unstructured.NestedString(o.Object, "spec", "user", "id")
			if b.userID != "" {
				b.connection, _, _ = unstructured.NestedString(o.Object, "spec", "user", "connection")
				source, _, _ := unstructured.NestedString(o.Object, "spec", "user", "source")
				b.tokenVault = source == string(authv1alpha1.TokenSourceTokenVault)
			} else {
				b.connection, _, _ = unstructured.NestedString(o.Object, "spec", "connection", "id")
			}
			b.secretName, _, _ = unstructured.NestedString(o.Object, "spec", "secret", "name")
			b.tenant, _, _ = unstructured.NestedString(o.Object, "spec", "tenantRef", "name")
			if kind, _, _ := unstructured.NestedString(o.Object, "spec", "tenantRef", "kind"); kind == string(authv1alpha1.TenantKindCluster) {
				b.tenant += " (cluster)"
			}
			consumeOf(o, &b)
			out.bindings = append(out.bindings, b)
		}
	}
	sort.Slice(out.bindings, func(i, j int) bool { return out.bindings[i].key.String() < out.bindings[j].key.String() })
	for ns := range nss {
		out.namespaces = append(out.namespaces, ns)
	}
	sort.Strings(out.namespaces)
	return out
}
