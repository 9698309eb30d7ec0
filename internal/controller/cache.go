package controller

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// ParseNamespaces splits the --watch-namespace value; empty means every namespace.
func ParseNamespaces(s string) []string {
	var out []string
	for _, ns := range strings.Split(s, ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			out = append(out, ns)
		}
	}
	return out
}

// ManagedSecretSelector selects the Secrets the operator manages, the only ones it caches.
var ManagedSecretSelector = labels.SelectorFromSet(labels.Set{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue})

// CacheOptions caches only the Secrets the operator manages, and only in the watched namespaces
// (plus clusterResourceNamespace, home of ClusterAuth0Tenants' refresh state). Credentials
// Secrets are read through the API reader so that the cluster's other Secrets cost nothing.
func CacheOptions(namespaces []string, clusterResourceNamespace string) cache.Options {
	// Target Secrets are cached with digests for data (binding.DigestTargetData): drift is
	// found by comparing digests, and no token value is held by the cache.
	secrets := cache.ByObject{Label: ManagedSecretSelector, Transform: stripUnreadAndDigest}
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{&corev1.Secret{}: secrets},
		// The operator never reads managedFields nor kubectl's last-applied copy of a spec; they
		// are most of a small object's size.
		DefaultTransform: stripUnread,
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = make(map[string]cache.Config, len(namespaces))
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
		if clusterResourceNamespace != "" {
			secrets.Namespaces = maps.Clone(opts.DefaultNamespaces)
			secrets.Namespaces[clusterResourceNamespace] = cache.Config{}
			opts.ByObject[&corev1.Secret{}] = secrets
		}
	}
	return opts
}

var stripManagedFields = cache.TransformStripManagedFields()

// stripUnreadAndDigest is stripUnread, then the data of a target Secret replaced by digests.
func stripUnreadAndDigest(obj any) (any, error) {
	if s, ok := obj.(*corev1.Secret); ok {
		binding.DigestTargetData(s)
	}
	return stripUnread(obj)
}

// stripUnread drops what the operator never reads from every cached object: managedFields and
// kubectl's last-applied-configuration annotation (a second copy of an applied binding's spec);
// then it interns the strings bindings and Secrets repeat (internObject).
func stripUnread(obj any) (any, error) {
	obj, err := stripManagedFields(obj)
	if err != nil {
		return obj, err
	}
	if o, ok := obj.(metav1.Object); ok {
		if a := o.GetAnnotations(); a != nil {
			if _, has := a[corev1.LastAppliedConfigAnnotation]; has {
				delete(a, corev1.LastAppliedConfigAnnotation)
				o.SetAnnotations(a)
			}
		}
	}
	internObject(obj)
	return obj, nil
}
