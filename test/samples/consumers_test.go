package samples_test

import (
	"encoding/base64"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// secretKeyChars are the characters of a Secret key, so of a file name in its volume.
var secretKeyChars = regexp.MustCompile(`^[-._a-zA-Z0-9]+`)

// tokenMount is where a container sees the binding's Secret as files: path → key.
type tokenMount struct {
	dir   string
	files map[string]string
}

// checkConsumers checks the workloads of one sample file against its binding's Secret s:
//   - a volume of the Secret (secret, or a projected source) is mounted whole, never with
//     subPath, which the kubelet never updates; its items name keys the Secret has;
//   - every path under such a mount that a command, an argument or an env value names is a key
//     of the Secret, and a gcloud token file holds the token and nothing else;
//   - an env var reads a key the Secret has, and then the binding restarts the workload
//     (rolloutRestartTargets), since an env var never changes in a running container;
//   - an image pull Secret is a dockerconfigjson whose auth is user:password with the token;
//   - each workload reads the Secret one of these ways.
func checkConsumers(t *testing.T, file string, b *authv1alpha1.IdPTokenBinding, s *corev1.Secret, workloads []*unstructured.Unstructured) {
	t.Helper()
	for _, w := range workloads {
		spec := podSpecOf(t, file, w)
		where := file + ": " + w.GetKind() + " " + w.GetName()
		reads := 0
		for _, ref := range spec.ImagePullSecrets {
			if ref.Name == s.Name {
				reads++
				checkDockerConfig(t, where, s)
			}
		}
		volumes := map[string]map[string]string{} // volume → file → key
		for _, v := range spec.Volumes {
			if files, ok := secretFiles(v, s); ok {
				volumes[v.Name] = files
				for _, key := range files {
					if _, ok := s.Data[key]; !ok {
						t.Errorf("%s: volume %s projects key %s, which Secret %s does not have", where, v.Name, key, s.Name)
					}
				}
			}
		}
		for _, ctr := range append(spec.InitContainers, spec.Containers...) {
			var mounts []tokenMount
			for _, m := range ctr.VolumeMounts {
				if files, ok := volumes[m.Name]; ok {
					reads++
					if m.SubPath != "" || m.SubPathExpr != "" {
						t.Errorf("%s: container %s mounts the token volume %s with subPath, which the kubelet never updates", where, ctr.Name, m.Name)
					}
					mounts = append(mounts, tokenMount{dir: strings.TrimSuffix(m.MountPath, "/"), files: files})
				}
			}
			texts := append(append([]string{}, ctr.Command...), ctr.Args...)
			for _, e := range ctr.Env {
				texts = append(texts, e.Value)
				if e.Name == "CLOUDSDK_AUTH_ACCESS_TOKEN_FILE" {
					if key, ok := keyAt(mounts, e.Value); !ok || string(s.Data[key]) != sampleToken {
						t.Errorf("%s: %s must name a file of the Secret that holds the access token and nothing else", where, e.Name)
					}
				}
				if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil && ref.SecretKeyRef.Name == s.Name {
					reads++
					if _, ok := s.Data[ref.SecretKeyRef.Key]; !ok {
						t.Errorf("%s: env %s reads key %s, which Secret %s does not have", where, e.Name, ref.SecretKeyRef.Key, s.Name)
					}
					if !restartedBy(b, w) {
						t.Errorf("%s: env %s reads the token only at start, and binding %s does not name the workload in rolloutRestartTargets", where, e.Name, b.Name)
					}
				}
			}
			for _, text := range texts {
				for _, m := range mounts {
					for rest := text; strings.Contains(rest, m.dir+"/"); {
						rest = rest[strings.Index(rest, m.dir+"/")+len(m.dir)+1:]
						if name := secretKeyChars.FindString(rest); m.files[name] == "" {
							t.Errorf("%s: container %s names %s/%s, which is no key of Secret %s", where, ctr.Name, m.dir, name, s.Name)
						}
					}
				}
			}
		}
		if reads == 0 {
			t.Errorf("%s does not read Secret %s", where, s.Name)
		}
	}
}

// podSpecOf is the pod spec of a Pod or a Deployment.
func podSpecOf(t *testing.T, file string, w *unstructured.Unstructured) *corev1.PodSpec {
	t.Helper()
	switch w.GetKind() {
	case "Pod":
		p := &corev1.Pod{}
		fromUnstructured(t, file, w, p)
		return &p.Spec
	case "Deployment":
		d := &appsv1.Deployment{}
		fromUnstructured(t, file, w, d)
		return &d.Spec.Template.Spec
	}
	t.Fatalf("%s: %s %s is not a kind this test knows how to read", file, w.GetKind(), w.GetName())
	return nil
}

func fromUnstructured(t *testing.T, file string, u *unstructured.Unstructured, into any) {
	t.Helper()
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s: %s %s: %v", file, u.GetKind(), u.GetName(), err)
	}
}

// secretFiles are the files a volume shows of Secret s (file → key), when it shows any.
func secretFiles(v corev1.Volume, s *corev1.Secret) (map[string]string, bool) {
	var items []corev1.KeyToPath
	switch {
	case v.Secret != nil && v.Secret.SecretName == s.Name:
		items = v.Secret.Items
	case v.Projected != nil:
		found := false
		for _, src := range v.Projected.Sources {
			if src.Secret != nil && src.Secret.Name == s.Name {
				found, items = true, src.Secret.Items
			}
		}
		if !found {
			return nil, false
		}
	default:
		return nil, false
	}
	files := map[string]string{}
	for _, it := range items {
		files[it.Path] = it.Key
	}
	if len(items) == 0 {
		for key := range s.Data {
			files[key] = key
		}
	}
	return files, true
}

// keyAt is the key of the Secret file at path, under one of the mounts.
func keyAt(mounts []tokenMount, path string) (string, bool) {
	for _, m := range mounts {
		if key, ok := m.files[strings.TrimPrefix(path, m.dir+"/")]; ok && strings.HasPrefix(path, m.dir+"/") {
			return key, true
		}
	}
	return "", false
}

// restartedBy tells whether b's rolloutRestartTargets name the workload w, by name or by a
// selector of the workload's own labels (not its pods').
func restartedBy(b *authv1alpha1.IdPTokenBinding, w *unstructured.Unstructured) bool {
	for _, target := range b.Spec.RolloutRestartTargets {
		if string(target.Kind) != w.GetKind() {
			continue
		}
		if target.Name == w.GetName() {
			return true
		}
		if target.Selector != nil {
			if sel, err := metav1.LabelSelectorAsSelector(target.Selector); err == nil && sel.Matches(labels.Set(w.GetLabels())) {
				return true
			}
		}
	}
	return false
}

// checkDockerConfig checks that s is a dockerconfigjson whose every registry has the token as
// its password and "user:password" in base64 as its auth, as docker login writes them.
func checkDockerConfig(t *testing.T, where string, s *corev1.Secret) {
	t.Helper()
	if s.Type != corev1.SecretTypeDockerConfigJson {
		t.Errorf("%s: image pull Secret %s has type %s, want %s", where, s.Name, s.Type, corev1.SecretTypeDockerConfigJson)
		return
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(s.Data[corev1.DockerConfigJsonKey], &cfg); err != nil || len(cfg.Auths) == 0 {
		t.Errorf("%s: %s of Secret %s is not a docker config with auths", where, corev1.DockerConfigJsonKey, s.Name)
		return
	}
	for registry, a := range cfg.Auths {
		auth, err := base64.StdEncoding.DecodeString(a.Auth)
		if a.Password != sampleToken || err != nil || string(auth) != a.Username+":"+a.Password {
			t.Errorf("%s: the credentials for %s in Secret %s are not the token as password, with auth = base64(user:password)", where, registry, s.Name)
		}
	}
}
