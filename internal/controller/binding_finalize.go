package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// reconcileFinalizer keeps the Retain finalizer exactly on bindings with deletionPolicy Retain.
func (r *BindingReconciler) reconcileFinalizer(ctx context.Context, b *authv1alpha1.IdPTokenBinding) error {
	want := b.Spec.DeletionPolicy == authv1alpha1.DeletionPolicyRetain
	if want == controllerutil.ContainsFinalizer(b, authv1alpha1.FinalizerRetain) {
		return nil
	}
	base := b.DeepCopy()
	if want {
		controllerutil.AddFinalizer(b, authv1alpha1.FinalizerRetain)
	} else {
		controllerutil.RemoveFinalizer(b, authv1alpha1.FinalizerRetain)
	}
	return r.Client.Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
}

// finalize releases a retained Secret: the operator's labels and annotations are removed so
// that it becomes an ordinary Secret, with its data, that nothing refreshes any more.
func (r *BindingReconciler) finalize(ctx context.Context, b *authv1alpha1.IdPTokenBinding) error {
	if !controllerutil.ContainsFinalizer(b, authv1alpha1.FinalizerRetain) {
		return nil
	}
	target, err := r.cachedSecret(ctx, b.Namespace, b.Spec.Secret.Name)
	if err != nil {
		return err
	}
	if target != nil && binding.ManagedBy(target, b) {
		denied, err := r.denied(ctx, b)
		if err != nil {
			return err
		}
		if denied {
			// Retain keeps a Secret when its binding goes, never a token the namespace may no
			// longer hold.
			if err := r.Client.Delete(ctx, target, client.Preconditions{UID: &target.UID}); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting secret %q of a binding no longer permitted: %w", target.Name, err)
			}
		} else {
			if err := r.release(ctx, target); err != nil {
				return err
			}
			r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "Retained", "Delete",
				"Released Secret %s: it keeps its last token and is no longer refreshed", target.Name)
		}
	}
	base := b.DeepCopy()
	controllerutil.RemoveFinalizer(b, authv1alpha1.FinalizerRetain)
	return client.IgnoreNotFound(r.Client.Patch(ctx, b, client.MergeFrom(base)))
}

// denied tells whether the binding's ClusterAuth0Tenant no longer lets it hold its token.
func (r *BindingReconciler) denied(ctx context.Context, b *authv1alpha1.IdPTokenBinding) (bool, error) {
	in := &bindingInput{tenantKey: tenantKeyOf(b)}
	in.Binding = b
	if err := r.gatherTenant(ctx, in); err != nil {
		return false, err
	}
	return in.Tenant.Found && in.Tenant.Denied != "", nil
}

// release removes the operator's labels and annotations from a Secret it keeps, so that it
// becomes an ordinary Secret that nothing manages.
func (r *BindingReconciler) release(ctx context.Context, s *corev1.Secret) error {
	base := s.DeepCopy()
	for _, k := range []string{authv1alpha1.LabelManagedBy, authv1alpha1.LabelBinding} {
		delete(s.Labels, k)
	}
	for _, k := range []string{authv1alpha1.AnnotationExpiresAt, authv1alpha1.AnnotationProvider, authv1alpha1.AnnotationConnection, authv1alpha1.AnnotationBindingUID} {
		delete(s.Annotations, k)
	}
	if err := r.Client.Patch(ctx, s, client.MergeFrom(base)); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("releasing secret %q: %w", s.Name, err)
	}
	return nil
}

// patchStatus writes the status only when it changed.
func (r *BindingReconciler) patchStatus(ctx context.Context, base, b *authv1alpha1.IdPTokenBinding) error {
	if equality.Semantic.DeepEqual(base.Status, b.Status) {
		return nil
	}
	// Optimistic: a pass that started from a cache older than the last status write must not
	// put back conditions that write removed (conditions are one list in a merge patch).
	if err := r.Client.Status().Patch(ctx, b, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{})); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("updating status: %w", err)
	}
	if r.status != nil {
		r.status.wrote(client.ObjectKeyFromObject(b), base.ResourceVersion, b.ResourceVersion)
	}
	return nil
}
