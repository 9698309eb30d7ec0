package controller

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// serviceAccountNamespaceFile holds the namespace of the pod the manager runs in.
const serviceAccountNamespaceFile = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// InClusterNamespace is the namespace the manager's pod runs in, or "" outside a pod.
func InClusterNamespace() string {
	b, err := os.ReadFile(serviceAccountNamespaceFile)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// WarnUnservedClusterTenants says loudly, once the manager starts, that ClusterAuth0Tenants
// exist which this manager cannot serve because it does not know its own namespace.
func WarnUnservedClusterTenants(reader client.Reader, log logr.Logger) manager.Runnable {
	return manager.RunnableFunc(func(ctx context.Context) error {
		list := &authv1alpha1.ClusterAuth0TenantList{}
		if err := reader.List(ctx, list, client.Limit(1)); err != nil || len(list.Items) == 0 {
			return nil
		}
		log.Error(errors.New("the operator's namespace is not known"),
			"ClusterAuth0Tenants exist but cannot be served: start the manager with --cluster-resource-namespace=<the namespace holding their credentials>",
			"example", list.Items[0].Name)
		return nil
	})
}
