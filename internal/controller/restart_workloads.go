package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// RestartedAtAnnotation is the pod template annotation `kubectl rollout restart` sets.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

// RolloutGVK is an Argo Rollout, restarted through its spec.restartAt.
var RolloutGVK = schema.GroupVersionKind{Group: "argoproj.io", Version: "v1alpha1", Kind: "Rollout"}

var errRolloutsNotServed = errors.New("the cluster does not serve argoproj.io/v1alpha1 Rollouts (Argo Rollouts is not installed)")

// newWorkload returns an empty object of kind, and an empty list of it.
func newWorkload(kind authv1alpha1.RolloutRestartKind) (client.Object, client.ObjectList, error) {
	switch kind {
	case authv1alpha1.RolloutRestartDeployment:
		return &appsv1.Deployment{}, &appsv1.DeploymentList{}, nil
	case authv1alpha1.RolloutRestartStatefulSet:
		return &appsv1.StatefulSet{}, &appsv1.StatefulSetList{}, nil
	case authv1alpha1.RolloutRestartDaemonSet:
		return &appsv1.DaemonSet{}, &appsv1.DaemonSetList{}, nil
	case authv1alpha1.RolloutRestartRollout:
		obj, list := &unstructured.Unstructured{}, &unstructured.UnstructuredList{}
		obj.SetGroupVersionKind(RolloutGVK)
		list.SetGroupVersionKind(RolloutGVK.GroupVersion().WithKind(RolloutGVK.Kind + "List"))
		return obj, list, nil
	}
	return nil, nil, fmt.Errorf("unknown kind %q", kind)
}

// resolve reads the workloads a target names now: one by name, or those its selector matches.
func (r *Restarter) resolve(ctx context.Context, key restartKey, sel labels.Selector) ([]client.Object, error) {
	obj, list, err := newWorkload(key.Kind)
	if err != nil {
		return nil, err
	}
	if key.Kind == authv1alpha1.RolloutRestartRollout {
		if _, err := r.Client.RESTMapper().RESTMapping(RolloutGVK.GroupKind(), RolloutGVK.Version); meta.IsNoMatchError(err) {
			return nil, errRolloutsNotServed
		} else if err != nil {
			return nil, err
		}
	}
	if key.Name != "" {
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: key.Namespace, Name: key.Name}, obj); err != nil {
			return nil, err
		}
		return []client.Object{obj}, nil
	}
	if sel == nil {
		return nil, fmt.Errorf("no selector")
	}
	if err := r.APIReader.List(ctx, list, client.InNamespace(key.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, err
	}
	items, err := meta.ExtractList(list)
	if err != nil {
		return nil, err
	}
	objs := make([]client.Object, 0, len(items))
	for _, it := range items {
		if o, ok := it.(client.Object); ok {
			objs = append(objs, o)
		}
	}
	return objs, nil
}

// lastRestart is when the workload was last restarted: its pod template's restartedAt
// annotation, or an Argo Rollout's spec.restartAt; zero when never or unreadable.
func lastRestart(o client.Object) time.Time {
	var v string
	switch o := o.(type) {
	case *appsv1.Deployment:
		v = o.Spec.Template.Annotations[RestartedAtAnnotation]
	case *appsv1.StatefulSet:
		v = o.Spec.Template.Annotations[RestartedAtAnnotation]
	case *appsv1.DaemonSet:
		v = o.Spec.Template.Annotations[RestartedAtAnnotation]
	case *unstructured.Unstructured:
		v, _, _ = unstructured.NestedString(o.Object, "spec", "restartAt")
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}
	}
	if t.Equal(t.Truncate(time.Second)) {
		// Whole seconds, as kubectl and the operator write it: the restart may have come up to a
		// second later, and the minimum interval must not be cut short by that.
		t = t.Add(time.Second)
	}
	return t
}

// patchRestart restarts a workload as `kubectl rollout restart` does (Argo: spec.restartAt),
// with a merge patch of that one field.
func (r *Restarter) patchRestart(ctx context.Context, o client.Object, kind authv1alpha1.RolloutRestartKind, now time.Time) error {
	at := now.UTC().Format(time.RFC3339)
	var body map[string]any
	if kind == authv1alpha1.RolloutRestartRollout {
		body = map[string]any{"spec": map[string]any{"restartAt": at}}
	} else {
		body = map[string]any{"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
			"annotations": map[string]any{RestartedAtAnnotation: at}}}}}
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return r.Client.Patch(ctx, o, client.RawPatch(types.MergePatchType, raw), client.FieldOwner(FieldManager))
}
