package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// stateWriteTimeout bounds the write of the refresh-state Secret.
const stateWriteTimeout = 15 * time.Second

// applyState persists the held token in the identity's refresh-state Secret when it changed, and
// returns the token the lineage holds afterwards. The write is optimistic: a conflict is re-read
// and resolved (a newer token written by someone else wins over ours only when it is newer),
// never dropped.
func (r *BindingReconciler) applyState(ctx context.Context, in *bindingInput, h *binding.Token) (*binding.Token, error) {
	// A rotated refresh token must not be lost to the end of the reconcile's deadline or to a
	// blip of the API server: this write has its own deadline and retries.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateWriteTimeout)
	defer cancel()
	current := in.stateSecret
	var foreign string
	write := func() error {
		data := h.StateData()
		if current != nil && binding.SameData(current.Data, data) && current.Annotations[authv1alpha1.AnnotationRefreshClaim] == "" {
			return nil
		}
		s := r.stateSecret(in, current, data)
		var err error
		from := ""
		if current == nil {
			err = r.Client.Create(ctx, s, client.FieldOwner(FieldManager))
		} else {
			from = current.ResourceVersion
			err = r.Client.Update(ctx, s, client.FieldOwner(FieldManager))
		}
		if err == nil {
			// Not filtered as an own write: its watch event fans the token out to the
			// identity's other bindings. Kept until the cache has it.
			if r.states != nil {
				r.states.wrote(from, s)
			}
			current = s
		}
		return err
	}
	err := retry.OnError(retry.DefaultBackoff, func(err error) bool {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			fresh := &corev1.Secret{}
			if gerr := r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.homeNamespace(in), Name: in.identity.StateName()}, fresh); gerr != nil {
				return apierrors.IsNotFound(gerr)
			}
			if ok, why := binding.AcceptState(fresh, in.stateOwner()); !ok {
				foreign = why // never overwritten: not the operator's state of this identity
				return false
			}
			current = fresh
			h = binding.MergeOnConflict(h, binding.ParseState(fresh.Data))
			return true
		}
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err)
	}, write)
	if foreign != "" {
		return nil, &foreignStateError{namespace: r.homeNamespace(in), name: in.identity.StateName(), why: foreign}
	}
	if err != nil {
		return nil, fmt.Errorf("writing refresh-state secret %q: %w", in.identity.StateName(), err)
	}
	in.stateSecret = current
	return h, nil
}

// foreignStateError: a Secret of the state's name exists that is not the operator's state of
// the identity; it is neither used nor overwritten.
type foreignStateError struct{ namespace, name, why string }

func (e *foreignStateError) Error() string {
	return fmt.Sprintf("Secret %s/%s has the name of the identity's refresh state but %s", e.namespace, e.name, e.why)
}

// failure is the binding's failure for it: the Secret must be deleted by whoever made it.
func (e *foreignStateError) failure() *binding.Failure {
	return binding.ForeignState(e.namespace, e.name, e.why)
}

// claim claims the identity's refresh for this manager on its state Secret (StepClaim), with
// an optimistic write: a conflict means another manager got there first, and the pass looks
// again after binding.BusyRetry instead of sending a refresh token it may have spent. With no
// state Secret yet, the claim creates it with the token held.
func (r *BindingReconciler) claim(ctx context.Context, in *bindingInput, p *binding.Pass) error {
	if in.stateSecret != nil && !binding.CanClaim(in.stateSecret.Annotations, r.Holder, in.Now) {
		p.RecordClaim(binding.ClaimBusy, nil)
		return nil
	}
	data := p.Held.StateData()
	if in.stateSecret != nil {
		data = in.stateSecret.Data
	}
	s := r.stateSecret(in, in.stateSecret, data)
	s.Annotations[authv1alpha1.AnnotationRefreshClaim] = binding.NewClaim(r.Holder, in.Now).String()
	var err error
	from := ""
	if in.stateSecret == nil {
		err = r.Client.Create(ctx, s, client.FieldOwner(FieldManager))
	} else {
		from = in.stateSecret.ResourceVersion
		err = r.Client.Update(ctx, s, client.FieldOwner(FieldManager))
	}
	switch {
	case apierrors.IsConflict(err):
		p.RecordClaim(binding.ClaimBusy, nil)
		return nil
	case apierrors.IsAlreadyExists(err):
		fresh := &corev1.Secret{}
		if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), fresh); gerr == nil {
			if ok, why := binding.AcceptState(fresh, in.stateOwner()); !ok {
				p.RecordClaim(binding.ClaimForeign, (&foreignStateError{namespace: s.Namespace, name: s.Name, why: why}).failure())
				return nil
			}
		}
		p.RecordClaim(binding.ClaimBusy, nil)
		return nil
	case err != nil:
		return fmt.Errorf("claiming the refresh on secret %q: %w", s.Name, err)
	}
	if r.states != nil {
		r.states.wrote(from, s)
	}
	in.stateSecret = s
	p.RecordClaim(binding.ClaimTaken, nil)
	return nil
}

// stateSecret is the identity's refresh-state Secret with data, at current's resourceVersion.
func (r *BindingReconciler) stateSecret(in *bindingInput, current *corev1.Secret, data map[string][]byte) *corev1.Secret {
	id := in.identity
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      id.StateName(),
			Namespace: r.homeNamespace(in),
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				authv1alpha1.LabelRole:      authv1alpha1.RoleRefreshState,
				authv1alpha1.LabelIdentity:  id.Hash(),
			},
			Annotations: map[string]string{
				authv1alpha1.AnnotationTenant:     id.Tenant,
				authv1alpha1.AnnotationUserID:     id.UserID,
				authv1alpha1.AnnotationConnection: id.Connection,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if current != nil {
		s.ResourceVersion = current.ResourceVersion
		s.OwnerReferences = current.OwnerReferences
	}
	if t := in.tenantObject; t != nil && len(s.OwnerReferences) == 0 {
		gvk := authv1alpha1.GroupVersion.WithKind(string(in.tenantKey.Kind))
		s.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: t.GetName(), UID: t.GetUID(), Controller: ptr.To(true),
		}}
	}
	return s
}

// dropLegacyState deletes the per-binding refresh-state Secret of an earlier version once the
// identity's state holds the lineage.
func (r *BindingReconciler) dropLegacyState(ctx context.Context, in *bindingInput) error {
	if in.legacySecret == nil || in.stateSecret == nil {
		return nil
	}
	if err := r.Client.Delete(ctx, in.legacySecret, client.Preconditions{UID: &in.legacySecret.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the migrated refresh-state secret %q: %w", in.legacySecret.Name, err)
	}
	in.legacySecret = nil
	return nil
}

// dropState deletes the identity's refresh-state Secret after Auth0 reported its user deleted
// (binding.StepDropState): no refresh token of a deleted user stays in the cluster, and no
// later renewal can bring its token back.
func (r *BindingReconciler) dropState(ctx context.Context, in *bindingInput) error {
	s := in.stateSecret
	if s == nil {
		return nil
	}
	if err := r.Client.Delete(ctx, s, client.Preconditions{UID: &s.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the refresh state of a deleted user, secret %q: %w", s.Name, err)
	}
	in.stateSecret = nil
	r.Recorder.Eventf(in.Binding, nil, corev1.EventTypeWarning, "StateDeleted", "ReadAuth0",
		"Deleted the identity's refresh state (Secret %s/%s): Auth0 reported the user deleted", s.Namespace, s.Name)
	return nil
}

// reportRejectedState records, once per version of the Secret, that a Secret of the identity's
// state name was not used: it names the Secret and the rule it failed, never its data.
func (r *BindingReconciler) reportRejectedState(in *bindingInput) {
	s := in.rejected
	if s == nil {
		return
	}
	if prev, ok := r.rejectedStates.Swap(in.Binding.UID, s.ResourceVersion); ok && prev == s.ResourceVersion {
		return
	}
	r.Recorder.Eventf(in.Binding, nil, corev1.EventTypeWarning, ReasonStateRejected, "ReadState",
		"Ignored Secret %s/%s as the identity's refresh state: %s", s.Namespace, s.Name, in.rejectedWhy)
}

// ReasonStateRejected is the Event reason for a refresh-state Secret that was not used.
const ReasonStateRejected = "StateRejected"
