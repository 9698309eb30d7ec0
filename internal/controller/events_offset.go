package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// +kubebuilder:rbac:groups="",resources=configmaps,verbs=get;create;update

// offsetKey is the ConfigMap key holding a tenant's events stream offset.
const offsetKey = "offset"

// OffsetConfigMapName is the ConfigMap, in the tenant's home namespace (an Auth0Tenant's own, the
// operator's for a ClusterAuth0Tenant), that keeps the offset a tenant's events stream resumes
// from after a restart or a new leader: idptoken-events-<tenant>, or a hash of the tenant's name
// when that would not be a valid name.
func OffsetConfigMapName(tenant string) string {
	name := "idptoken-events-" + tenant
	if len(name) <= 253 {
		return name
	}
	sum := sha256.Sum256([]byte(tenant))
	return "idptoken-events-" + hex.EncodeToString(sum[:16])
}

// offsetStore keeps one tenant's offset ConfigMap. Writes are coalesced by its caller (flush
// only sends what changed); the ConfigMap is read without a cache, once per subscription.
type offsetStore struct {
	reader client.Reader
	writer client.Client
	key    types.NamespacedName
	tenant string // TenantKey.String(), in the auth.idptoken.dev/tenant annotation

	mu      sync.Mutex
	latest  string // the newest offset reported
	written string // the offset the ConfigMap holds
	foreign bool   // a ConfigMap of that name belongs to something else: never written
}

// load reads the kept offset; "" when there is none.
func (o *offsetStore) load(ctx context.Context) (string, error) {
	if o.key.Namespace == "" {
		return "", nil
	}
	cm := &corev1.ConfigMap{}
	if err := o.reader.Get(ctx, o.key, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return "", nil
		}
		return "", fmt.Errorf("reading ConfigMap %s: %w", o.key, err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if cm.Annotations[authv1alpha1.AnnotationTenant] != o.tenant {
		o.foreign = true
		return "", fmt.Errorf("ConfigMap %s exists and is not the events offset of %s: rename or delete it", o.key, o.tenant)
	}
	o.latest, o.written = cm.Data[offsetKey], cm.Data[offsetKey]
	return o.latest, nil
}

// current is the newest offset reported (or loaded).
func (o *offsetStore) current() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.latest
}

// set records the newest offset; flush writes it.
func (o *offsetStore) set(offset string) {
	o.mu.Lock()
	o.latest = offset
	o.mu.Unlock()
}

// flush writes the newest offset if the ConfigMap does not hold it yet.
func (o *offsetStore) flush(ctx context.Context) error {
	o.mu.Lock()
	offset, skip := o.latest, o.foreign || o.latest == o.written
	o.mu.Unlock()
	if skip {
		return nil
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: o.key.Name, Namespace: o.key.Namespace,
		Labels:      map[string]string{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue},
		Annotations: map[string]string{authv1alpha1.AnnotationTenant: o.tenant},
	}, Data: map[string]string{offsetKey: offset}}
	err := o.writer.Update(ctx, cm)
	if apierrors.IsNotFound(err) {
		err = o.writer.Create(ctx, cm)
	}
	if err != nil {
		return fmt.Errorf("writing ConfigMap %s: %w", o.key, err)
	}
	o.mu.Lock()
	o.written = offset
	o.mu.Unlock()
	return nil
}
