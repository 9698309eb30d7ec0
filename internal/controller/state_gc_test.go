package controller

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// The collector deletes a refresh-state Secret only when no binding's lineage refers to it,
// under its name or under the name earlier versions gave the lineage (not migrated yet).
func TestStateCollectorKeepsEveryStateABindingMayStillRead(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	b := testBinding()
	current, previous := identityIndexValues(b)[0], previousHashOf(b)
	state := func(name, id string, age time.Duration) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: b.Namespace, CreationTimestamp: metav1.NewTime(now.Add(-age)),
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				authv1alpha1.LabelRole:      authv1alpha1.RoleRefreshState,
				authv1alpha1.LabelIdentity:  id,
			},
		}}
	}
	objs := []client.Object{
		b,
		state("current", current, time.Hour),
		state("previous", previous, time.Hour),
		state("orphan", "0123456789abcdef", time.Hour),
		state("young-orphan", "fedcba9876543210", 10*time.Second),
	}
	sch := unitScheme(t)
	c := fake.NewClientBuilder().WithScheme(sch).WithObjects(objs...).
		WithIndex(&authv1alpha1.IdPTokenBinding{}, identityIndex, func(o client.Object) []string {
			return identityIndexValues(o.(*authv1alpha1.IdPTokenBinding))
		}).
		WithIndex(&corev1.Secret{}, secretRoleIndex, byLabel(authv1alpha1.LabelRole)).Build()
	gc := &stateCollector{client: c, clock: clocktesting.NewFakeClock(now), every: time.Minute}
	if err := gc.collect(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, kept := range map[string]bool{"current": true, "previous": true, "orphan": false, "young-orphan": true} {
		err := c.Get(context.Background(), client.ObjectKey{Namespace: b.Namespace, Name: name}, &corev1.Secret{})
		if gone := apierrors.IsNotFound(err); gone == kept || (err != nil && !gone) {
			t.Errorf("state %q: kept = %v (err %v), want kept = %v", name, !gone, err, kept)
		}
	}
}
