package controller

import (
	"context"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// An event about a user queues one binding of each of the user's lineages at once, and the
// lineage's other bindings fanOutLag later (the lead's state write brings them sooner); a
// deletion queues every binding at once.
func TestAnEventQueuesOneBindingPerLineageFirst(t *testing.T) {
	sch := unitScheme(t)
	bind := func(name, user, conn string) client.Object {
		return &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team-a"},
			Spec: authv1alpha1.IdPTokenBindingSpec{
				TenantRef: authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindNamespaced, Name: "prod"},
				User:      &authv1alpha1.UserSource{ID: user, Connection: conn},
				Secret:    authv1alpha1.SecretTarget{Name: name},
			},
		}
	}
	c := fake.NewClientBuilder().WithScheme(sch).
		WithObjects(bind("a1", "auth0|alice", "google"), bind("a2", "auth0|alice", "google"), bind("a3", "auth0|alice", "google"),
			bind("a-gh", "auth0|alice", "github"), bind("b1", "auth0|bob", "google")).
		WithIndex(&authv1alpha1.IdPTokenBinding{}, auth0SubjectIndex, func(o client.Object) []string {
			return eventsIndexValues(o.(*authv1alpha1.IdPTokenBinding))
		}).Build()
	e := NewEvents(c, c, NewTenantClients(nil), clock.RealClock{})
	key := TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "prod"}}

	n := e.bindingsOf(context.Background(), key, eventSubject("auth0|alice", ""))
	names := func(reqs []reconcile.Request) []string {
		var out []string
		for _, r := range reqs {
			out = append(out, r.Name)
		}
		slices.Sort(out)
		return out
	}
	if len(n.leads) != 2 || len(n.others) != 2 || slices.Contains(names(n.others), "a-gh") {
		t.Fatalf("leads %v, others %v: want one google binding and a-gh as leads, the two other google bindings after", names(n.leads), names(n.others))
	}

	for _, deleted := range []bool{false, true} {
		q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
		if err := e.bindingSource().Start(context.Background(), q); err != nil {
			t.Fatal(err)
		}
		e.enqueue(n, deleted)
		want := 2
		if deleted {
			want = 4
		}
		if q.Len() != want {
			t.Errorf("deleted=%v: %d queued at once, want %d", deleted, q.Len(), want)
		}
		if !deleted {
			time.Sleep(fanOutLag + 500*time.Millisecond)
			if q.Len() != 4 {
				t.Errorf("%d queued after fanOutLag, want all 4", q.Len())
			}
		}
		q.ShutDown()
	}
}
