package controller

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// MACKeySecretName names the Secret, in the operator's namespace, holding the key of every
// binding's status.secretMAC. It is made once, by whichever manager needs it first, and never
// rotated by the operator: a new key changes every MAC (and restarts every restart target once).
const MACKeySecretName = "idptoken-hmac-key"

const (
	macKeyDataKey = "key"
	macKeyBytes   = 32
	roleMACKey    = "hmac-key"
)

// macKey holds the HMAC key once read or made.
type macKey struct {
	mu  sync.Mutex
	key []byte
}

// get returns the key, reading (or, the first time in a cluster, creating) its Secret; nil when
// the operator's namespace is not known.
func (m *macKey) get(ctx context.Context, c client.Client, reader client.Reader, ns string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.key != nil || ns == "" {
		return m.key, nil
	}
	key := client.ObjectKey{Namespace: ns, Name: MACKeySecretName}
	s := &corev1.Secret{}
	err := reader.Get(ctx, key, s)
	if apierrors.IsNotFound(err) {
		b := make([]byte, macKeyBytes)
		_, _ = rand.Read(b) // crypto/rand.Read never fails
		s = &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns, Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelRole: roleMACKey}},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{macKeyDataKey: b},
		}
		err = c.Create(ctx, s, client.FieldOwner(FieldManager))
		if apierrors.IsAlreadyExists(err) { // another manager made it first
			err = reader.Get(ctx, key, s)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading the secretMAC key %s: %w", key, err)
	}
	if len(s.Data[macKeyDataKey]) < macKeyBytes {
		return nil, fmt.Errorf("secret %s holds no key of %d bytes under %q", key, macKeyBytes, macKeyDataKey)
	}
	m.key = s.Data[macKeyDataKey]
	return m.key, nil
}

// secretMAC is status.secretMAC after the pass: the MAC of the data of a Secret that holds the
// token held, else the status's value as it was. A key that cannot be had leaves it as it was
// (and is logged): the MAC only informs, and triggers restarts.
func (r *BindingReconciler) secretMAC(ctx context.Context, in *bindingInput, p *binding.Pass) string {
	b, h := in.Binding, p.Held
	if h == nil || h.Lineage != in.Lineage {
		return b.Status.SecretMAC
	}
	want, err := binding.DesiredTarget(b, h)
	if err != nil {
		return b.Status.SecretMAC
	}
	if current := p.TargetWritten || (in.Target != nil && binding.TargetMatches(b, want, in.Target)); !current {
		return b.Status.SecretMAC
	}
	key, err := r.mac.get(ctx, r.Client, r.APIReader, r.ClusterResourceNamespace)
	if err != nil {
		logf.FromContext(ctx).Info("Could not compute status.secretMAC", "error", err.Error())
	}
	if key == nil {
		return b.Status.SecretMAC
	}
	return binding.SecretMAC(key, want.Data)
}
