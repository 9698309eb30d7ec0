package controller

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
)

// ownWrites remembers the resourceVersion each of the operator's Secret writes produced, so
// that the watch event echoing a write does not queue its binding again. Without this, every
// renewal queued two needless passes ahead of other bindings' due renewals.
type ownWrites struct {
	mu sync.Mutex
	rv map[types.NamespacedName]string
}

func newOwnWrites() *ownWrites {
	return &ownWrites{rv: map[types.NamespacedName]string{}}
}

// wrote records the resourceVersion returned by a write.
func (w *ownWrites) wrote(key types.NamespacedName, rv *string) {
	if rv == nil || *rv == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rv[key] = *rv
}

// isEcho tells whether o is exactly the object the operator's last write of it produced.
func (w *ownWrites) isEcho(o client.Object) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rv[client.ObjectKeyFromObject(o)] == o.GetResourceVersion()
}

func (w *ownWrites) forget(o client.Object) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.rv, client.ObjectKeyFromObject(o))
}

// predicate lets through every Secret event but the echoes of the operator's own writes.
func (w *ownWrites) predicate() predicate.Predicate {
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return !w.isEcho(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool { return !w.isEcho(e.ObjectNew) },
		DeleteFunc: func(e event.DeleteEvent) bool {
			w.forget(e.Object)
			return true
		},
	}
}
