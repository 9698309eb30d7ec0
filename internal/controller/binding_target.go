package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// applyTarget writes the target Secret: created with its final content in one write when the
// cache has none (a Secret of that name the binding does not manage makes the create fail:
// SecretConflict), else server-side applied. A write the API server refuses (4xx) is a failure
// of the binding's spec, reported as SecretWriteFailed rather than retried in a hot loop.
func (r *BindingReconciler) applyTarget(ctx context.Context, in *bindingInput, h *binding.Token) (*binding.Failure, error) {
	b := in.Binding
	want, err := binding.DesiredTarget(b, h)
	if err != nil {
		return binding.TemplateRejected(b, err), nil // nothing is written: never a partial Secret
	}
	current := in.Target // the planner's input is left as it was gathered
	if current != nil && current.Type != want.Type {
		// A Secret's type is immutable: replace it.
		if err := r.Client.Delete(ctx, current); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("replacing secret %q to change its type: %w", current.Name, err)
		}
		current = nil
	}
	var rv *string
	if current == nil {
		s := targetSecret(want, b)
		if err = r.Client.Create(ctx, s, client.FieldOwner(FieldManager)); err == nil {
			rv = &s.ResourceVersion
		} else if apierrors.IsAlreadyExists(err) {
			existing := &corev1.Secret{}
			if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), existing); gerr != nil {
				return nil, fmt.Errorf("reading secret %q: %w", s.Name, gerr)
			}
			if !binding.ManagedBy(existing, b) {
				return binding.TargetConflict(s.Name), nil
			}
			err = nil // the cache lags behind our own write: apply below
			current = existing
		}
	}
	if err == nil && current != nil {
		ac := targetApplyConfiguration(want, b)
		if err = r.Client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err == nil {
			rv = ac.ResourceVersion
		}
	}
	switch {
	case err == nil:
		r.recordWrite(b.Namespace, b.Spec.Secret.Name, rv)
		return nil, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err):
		return binding.TargetWriteRefused(b.Spec.Secret.Name, safetext.Clip(err.Error(), 300)), nil
	default:
		return nil, fmt.Errorf("writing secret %q: %w", b.Spec.Secret.Name, err)
	}
}

func (r *BindingReconciler) recordWrite(namespace, name string, rv *string) {
	if r.writes != nil {
		r.writes.wrote(types.NamespacedName{Namespace: namespace, Name: name}, rv)
	}
}

// secret is the target Secret to create.
func targetSecret(d binding.Target, b *authv1alpha1.IdPTokenBinding) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: b.Spec.Secret.Name, Namespace: b.Namespace, Labels: d.Labels, Annotations: d.Annotations},
		Type:       d.Type,
		Data:       d.Data,
	}
	if d.Owned {
		s.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: authv1alpha1.GroupVersion.String(), Kind: "IdPTokenBinding", Name: b.Name, UID: b.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
	}
	return s
}

// applyConfiguration is the target Secret to apply.
func targetApplyConfiguration(d binding.Target, b *authv1alpha1.IdPTokenBinding) *corev1ac.SecretApplyConfiguration {
	ac := corev1ac.Secret(b.Spec.Secret.Name, b.Namespace).
		WithType(d.Type).
		WithLabels(d.Labels).
		WithAnnotations(d.Annotations).
		WithData(d.Data)
	if d.Owned {
		ac.WithOwnerReferences(ownerRef(b))
	}
	return ac
}

func ownerRef(b *authv1alpha1.IdPTokenBinding) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(authv1alpha1.GroupVersion.String()).
		WithKind("IdPTokenBinding").
		WithName(b.Name).
		WithUID(b.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}

// dropTargets deletes the Secrets this binding wrote under a previous spec.secret.name, or all of
// them when the binding lost its permission. Only Secrets that carry the binding's UID are
// touched. A binding that may no longer use its tenant loses its Secrets whatever its
// deletionPolicy: Retain keeps a Secret when its binding is deleted, never a token the
// namespace may no longer hold.
func (r *BindingReconciler) dropTargets(ctx context.Context, in *bindingInput, all, userDeleted bool) error {
	b := in.Binding
	list := &corev1.SecretList{}
	// A label selector, not an index: this runs only when the binding's targets change.
	if err := r.Client.List(ctx, list, client.InNamespace(b.Namespace), client.MatchingLabels{authv1alpha1.LabelBinding: b.Name}); err != nil {
		return fmt.Errorf("listing the binding's secrets: %w", err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if s.Labels[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState || (!all && s.Name == b.Spec.Secret.Name) || !binding.ManagedBy(s, b) {
			continue
		}
		if all || binding.HasControllerRef(s, b) {
			if err := r.Client.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting secret %q, no longer the binding's target: %w", s.Name, err)
			}
		} else if err := r.release(ctx, s); err != nil {
			return err
		}
		switch {
		case userDeleted:
			r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, "SecretDeleted", "WriteSecret",
				"Deleted Secret %s: Auth0 reported the user deleted", s.Name)
		case all:
			r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, "SecretDeleted", "WriteSecret",
				"Deleted Secret %s: the binding may no longer use its tenant", s.Name)
		default:
			r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "SecretReleased", "WriteSecret",
				"Secret %s is no longer the binding's target (spec.secret.name is %s)", s.Name, b.Spec.Secret.Name)
		}
	}
	return nil
}
