package controller

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// TestEventsLeaveNoConnectionOrGoroutineBehind: a tenant's subscription holds one stream while
// wanted; disabling it, changing it, or the manager stopping leaves no stream open at Auth0 and
// no goroutine of it running.
func TestEventsLeaveNoConnectionOrGoroutineBehind(t *testing.T) {
	sim, err := auth0sim.New(auth0sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	sim.AddM2MClient("leak-m2m", "sim_cs_leak", append(append([]string{}, RequiredScopes...), auth0sim.ScopeReadEvents)...)
	newAPI := func() ManagementAPI {
		c, err := auth0.NewClient(auth0.Config{Domain: sim.Domain(), Audience: sim.Audience(), ClientID: "leak-m2m", ClientSecret: "sim_cs_leak",
			CABundle: sim.CAPEM(), RequestsPerSecond: 50, Burst: 50})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	sch := unitScheme(t)
	c := fake.NewClientBuilder().WithScheme(sch).
		WithIndex(&authv1alpha1.IdPTokenBinding{}, auth0SubjectIndex, func(o client.Object) []string {
			return eventsIndexValues(o.(*authv1alpha1.IdPTokenBinding))
		}).Build()

	events := NewEvents(c, c, NewTenantClients(nil), clock.RealClock{})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = events.Start(ctx); close(stopped) }()

	key := TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "prod"}}
	open := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for sim.EventsStats().StreamsOpen != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d streams open at Auth0, want %d", sim.EventsStats().StreamsOpen, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	want := &eventsWanted{api: newAPI(), domain: sim.Domain(), types: []string{authv1alpha1.EventUserUpdated}, home: "team-a"}
	for range 3 {
		events.Sync(key, want)
		open(1)
		events.Sync(key, nil)
		open(0)
	}
	// A changed subscription replaces the stream, never adds one.
	events.Sync(key, want)
	open(1)
	changed := *want
	changed.api = newAPI()
	events.Sync(key, &changed)
	open(1)
	if s, ok := events.Status(key); !ok || !s.Open || s.Reason != authv1alpha1.ReasonSubscribed {
		t.Fatalf("status = %+v, %v; want open, Subscribed", s, ok)
	}

	cancel()
	<-stopped
	open(0)
	// No goroutine of a subscription is left (idle keep-alive connections of the clients' pools
	// are not a subscription's and may stay).
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		if !strings.Contains(stacks, "internal/auth0events.") && !strings.Contains(stacks, "controller.(*subscription)") &&
			!strings.Contains(stacks, "controller.(*Events)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a subscription's goroutine is still running:\n%s", stacks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
