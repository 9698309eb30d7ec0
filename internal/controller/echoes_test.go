package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
)

func TestOwnWritesFiltersOnlyEchoes(t *testing.T) {
	w := newOwnWrites()
	secret := func(rv string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s", ResourceVersion: rv}}
	}
	p := w.predicate()
	w.wrote(types.NamespacedName{Namespace: "ns", Name: "s"}, ptr.To("10"))

	if p.Create(event.CreateEvent{Object: secret("10")}) {
		t.Error("the echo of the operator's own create queued the binding")
	}
	if p.Update(event.UpdateEvent{ObjectOld: secret("9"), ObjectNew: secret("10")}) {
		t.Error("the echo of the operator's own update queued the binding")
	}
	if !p.Update(event.UpdateEvent{ObjectOld: secret("10"), ObjectNew: secret("11")}) {
		t.Error("an edit by someone else was filtered: the Secret would not be restored")
	}
	if !p.Delete(event.DeleteEvent{Object: secret("10")}) {
		t.Error("a deletion was filtered: the Secret would not be restored")
	}
	if !p.Create(event.CreateEvent{Object: secret("10")}) {
		t.Error("a deletion must forget the recorded write")
	}
}
