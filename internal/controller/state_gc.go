package controller

import (
	"context"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// stateCollector deletes refresh-state Secrets that no binding refers to any more, so that a
// user's refresh token does not outlive the last binding of the user's identity.
type stateCollector struct {
	client client.Client
	clock  clock.Clock
	every  time.Duration
}

// NeedLeaderElection: only the leader deletes.
func (c *stateCollector) NeedLeaderElection() bool { return true }

// Start runs the collection every c.every until ctx ends.
func (c *stateCollector) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.clock.After(c.every):
			if err := c.collect(ctx); err != nil {
				logf.FromContext(ctx).Error(err, "Failed to collect unreferenced refresh-state Secrets")
			}
			if err := c.collectIdPClients(ctx); err != nil {
				logf.FromContext(ctx).Error(err, "Failed to collect the IdP clients of deleted tenants")
			}
		}
	}
}

func (c *stateCollector) collect(ctx context.Context) error {
	states := &corev1.SecretList{}
	if err := c.client.List(ctx, states, client.MatchingFields{secretRoleIndex: authv1alpha1.RoleRefreshState}); err != nil {
		return err
	}
	now := c.clock.Now()
	var previous map[string]bool // built when first needed: most runs find every state referred to
	for i := range states.Items {
		s := &states.Items[i]
		id := s.Labels[authv1alpha1.LabelIdentity]
		// A grace period keeps a new state Secret from being collected before the cache has seen
		// the binding that wrote it.
		if id == "" || now.Sub(s.CreationTimestamp.Time) < min(2*c.every, 2*time.Minute) {
			continue // a per-binding state of an earlier version goes with its binding (ownerReference)
		}
		refs := &authv1alpha1.IdPTokenBindingList{}
		if err := c.client.List(ctx, refs, client.MatchingFields{identityIndex: id}, client.Limit(1)); err != nil {
			return err
		}
		if len(refs.Items) > 0 {
			continue
		}
		if previous == nil {
			p, err := c.previousHashes(ctx)
			if err != nil {
				return err
			}
			previous = p
		}
		if previous[id] {
			continue // not migrated yet: a binding still reads it
		}
		if err := c.client.Delete(ctx, s, client.Preconditions{UID: &s.UID, ResourceVersion: &s.ResourceVersion}); client.IgnoreNotFound(err) != nil {
			return err
		}
		logf.FromContext(ctx).Info("Deleted a refresh-state Secret no binding refers to", "namespace", s.Namespace, "name", s.Name)
	}
	return nil
}

// previousHashes are the names versions before length-prefixed identity keys gave the lineages
// of all bindings (previousHashOf). They are computed here, on the collector's rare finding of an
// unreferenced state, rather than kept in the identity index for every binding.
func (c *stateCollector) previousHashes(ctx context.Context) (map[string]bool, error) {
	all := &authv1alpha1.IdPTokenBindingList{}
	if err := c.client.List(ctx, all, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(all.Items))
	for i := range all.Items {
		out[previousHashOf(&all.Items[i])] = true
	}
	return out, nil
}

// collectIdPClients deletes the IdP clients kept for Auth0 outages whose tenant is gone.
func (c *stateCollector) collectIdPClients(ctx context.Context) error {
	kept := &corev1.SecretList{}
	if err := c.client.List(ctx, kept, client.MatchingFields{secretRoleIndex: roleIdPClient}); err != nil {
		return err
	}
	for i := range kept.Items {
		s := &kept.Items[i]
		key, ok := parseTenantKey(s.Annotations[authv1alpha1.AnnotationTenant])
		if !ok {
			continue
		}
		var t client.Object = &authv1alpha1.Auth0Tenant{}
		if key.Kind == authv1alpha1.TenantKindCluster {
			t = &authv1alpha1.ClusterAuth0Tenant{}
		}
		if err := c.client.Get(ctx, key.NamespacedName, t); !apierrors.IsNotFound(err) {
			if err != nil {
				return err
			}
			continue
		}
		if err := c.client.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
			return err
		}
		logf.FromContext(ctx).Info("Deleted the IdP client kept for a deleted tenant", "namespace", s.Namespace, "name", s.Name, "tenant", key.String())
	}
	return nil
}

// parseTenantKey reads a TenantKey rendered by its String method.
func parseTenantKey(s string) (TenantKey, bool) {
	parts := strings.Split(s, "/")
	switch {
	case len(parts) == 2 && parts[0] == string(authv1alpha1.TenantKindCluster):
		return TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: parts[1]}}, true
	case len(parts) == 3 && parts[0] == string(authv1alpha1.TenantKindNamespaced):
		return TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: parts[1], Name: parts[2]}}, true
	}
	return TenantKey{}, false
}
