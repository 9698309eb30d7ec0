package main

// The events row (issue 20): a tenant with spec.events subscribed to the simulated Auth0 Events
// API, and five measurements on one control plane, one after the other: re-login heals,
// deleted users, duplicates and out-of-order events, stream cuts, and the same logins with
// events off. It is selected with BENCH_ROWS only (about 7½ minutes with the default
// BENCH_EVENTS_CUT=5m).

import (
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

const (
	// briefIdP issues tokens that live briefLifetime, without refresh tokens: its bindings
	// reach Ready=False TokenExpired, and only a new login heals them.
	briefIdP      = "brief"
	briefConn     = "brief-sim"
	briefLifetime = 16 * time.Second
	// eventsGoal is the goal for a login or a deletion to reach the cluster (p99).
	eventsGoal = 3 * time.Second
	// eventsGiveUp: a heal or a deletion not seen this long after the last one was asked for
	// is a failure (without the event it would take an hour, the fallback interval).
	eventsGiveUp = time.Minute
	// loginEvery spaces the logins of the stream-cut and events-off measurements.
	loginEvery = 2 * time.Second
	// cutClose is how long the simulator keeps each events stream open in the stream-cut part.
	cutClose = 10 * time.Second
	// offWindow is the events-off part's length (at most BENCH_EVENTS_CUT).
	offWindow = time.Minute
)

// The user groups of the row: user IDs are userID(first+i); group k of users has perUser
// bindings each, named bindingOf(user, j).
type userGroup struct {
	first, n, perUser int
	conn              string
}

var (
	healUsers   = userGroup{first: 0, n: 50, perUser: 1, conn: briefConn}
	deleteUsers = userGroup{first: 100, n: 50, perUser: 1, conn: connName}
	dupUsers    = userGroup{first: 200, n: 20, perUser: 2, conn: connName}
	cutUsers    = userGroup{first: 300, n: 30, perUser: 1, conn: connName}
	eventGroups = []userGroup{healUsers, deleteUsers, dupUsers, cutUsers}
)

func (g userGroup) user(i int) string { return userID(g.first + i) }

func (g userGroup) users() []string {
	out := make([]string, g.n)
	for i := range out {
		out[i] = g.user(i)
	}
	return out
}

func bindingOf(user, j int) string { return fmt.Sprintf("ev-%05d-%d", user, j) }

// eventsResult is what the events row measured.
type eventsResult struct {
	cutWindow time.Duration
	heal      healResult
	del       deleteResult
	dup       dupResult
	cut       cutResult
	off       offResult
}

// measureEvents runs the events row.
func measureEvents(ctx context.Context, w workload, o clusterOptions) *result {
	r := &result{w: w, events: &eventsResult{cutWindow: eventsCutWindow()}}
	fail := func(format string, args ...any) *result {
		r.failures = append(r.failures, fmt.Sprintf(format, args...))
		return r
	}
	c, err := startCluster(ctx, o)
	if err != nil {
		return fail("setting up: %v", err)
	}
	defer c.stop()
	c.sim.AddM2MClient(m2mClientID, m2mClientSecret, append(slices.Clone(controller.RequiredScopes), auth0sim.ScopeReadEvents)...)
	c.sim.AddIdP(auth0sim.IdPOptions{Name: briefIdP, ClientID: briefIdP + "-client", ClientSecret: "sim_cs_" + briefIdP,
		Rotation: auth0sim.RotationNone, AccessTokenLifetime: briefLifetime})
	c.sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_" + briefIdP, Name: briefConn, Strategy: "oauth2", IdP: briefIdP})
	for _, g := range eventGroups {
		for i := range g.n {
			idp := idpName
			if g.conn == briefConn {
				idp = briefIdP
			}
			c.sim.AddUser(g.user(i), auth0sim.IdentitySpec{Connection: g.conn, Provider: "oauth2",
				UserID: fmt.Sprintf("bench-u%05d", g.first+i), IdP: idp, OfflineAccess: g.conn != briefConn})
		}
	}
	if err := c.createTenant(ctx, w.tenantRate); err != nil {
		return fail("creating the tenant: %v", err)
	}
	if err := c.setEvents(ctx, true); err != nil {
		return fail("enabling events: %v", err)
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ew := c.watchEvents(watchCtx)
	progress("  creating the bindings of %d users; the %d brief-token bindings then wait for TokenExpired", 150, healUsers.n)
	for _, g := range eventGroups {
		if err := c.createGroupBindings(ctx, g); err != nil {
			return fail("%v", err)
		}
	}
	for _, g := range eventGroups[1:] {
		if err := waitGroup(ctx, c, ew, g, readySynced, 2*time.Minute); err != nil {
			return fail("%v", err)
		}
	}
	if err := waitGroup(ctx, c, ew, healUsers, "False/"+authv1alpha1.ReasonTokenExpired, 2*time.Minute); err != nil {
		return fail("%v", err)
	}
	steps := []func(context.Context, *cluster, *eventsWatch, *eventsResult) []string{measureHeal, measureDeletes, measureDuplicates, measureCut, measureOff, measureDeletedStayGone}
	for _, step := range steps {
		for _, f := range step(ctx, c, ew, r.events) {
			fail("%s", f)
		}
		if err := c.managerExited(); err != nil {
			return fail("%v", err)
		}
		if ctx.Err() != nil {
			return fail("interrupted")
		}
	}
	return r
}

// eventsCutWindow is BENCH_EVENTS_CUT (a Go duration), default 5 minutes.
func eventsCutWindow() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("BENCH_EVENTS_CUT")); err == nil && d > 0 {
		return d
	}
	return 5 * time.Minute
}

// setEvents turns the tenant's spec.events on (waiting for EventsReady=True) or off (waiting
// for the condition to go and the simulator's streams to close).
func (c *cluster) setEvents(ctx context.Context, on bool) error {
	key := client.ObjectKey{Namespace: c.ns, Name: tenantName}
	t := &authv1alpha1.Auth0Tenant{}
	if err := c.k8s.Get(ctx, key, t); err != nil {
		return err
	}
	base := t.DeepCopy()
	t.Spec.Events = nil
	if on {
		t.Spec.Events = &authv1alpha1.EventsSpec{Enabled: true}
	}
	if err := c.k8s.Patch(ctx, t, client.MergeFrom(base)); err != nil {
		return err
	}
	want := "True/" + authv1alpha1.ReasonSubscribed
	if !on {
		want = ""
	}
	got := ""
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err := c.k8s.Get(ctx, key, t); err != nil {
			return err
		}
		got = ""
		if cond := meta.FindStatusCondition(t.Status.Conditions, authv1alpha1.ConditionEventsReady); cond != nil {
			got = string(cond.Status) + "/" + cond.Reason
		}
		if got == want && (on || c.sim.EventsStats().StreamsOpen == 0) {
			return nil
		}
	}
	return fmt.Errorf("the tenant's EventsReady is %q after a minute, not %q (%d streams open)", got, want, c.sim.EventsStats().StreamsOpen)
}

// createGroupBindings creates the bindings of the group's users.
func (c *cluster) createGroupBindings(ctx context.Context, g userGroup) error {
	for i := range g.n {
		for j := range g.perUser {
			name := bindingOf(g.first+i, j)
			err := c.k8s.Create(ctx, &authv1alpha1.IdPTokenBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.ns},
				Spec: authv1alpha1.IdPTokenBindingSpec{
					TenantRef: authv1alpha1.TenantRef{Name: tenantName},
					User:      &authv1alpha1.UserSource{ID: g.user(i), Connection: g.conn},
					Secret:    authv1alpha1.SecretTarget{Name: name + "-token"},
				},
			})
			if err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("creating binding %s: %w", name, err)
			}
		}
	}
	return nil
}

// waitGroup waits until every binding of the group shows the Ready condition want.
func waitGroup(ctx context.Context, c *cluster, ew *eventsWatch, g userGroup, want string, limit time.Duration) error {
	missing := 0
	for deadline := time.Now().Add(limit); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(100 * time.Millisecond) {
		missing = 0
		for i := range g.n {
			for j := range g.perUser {
				if ew.bindingReason(bindingOf(g.first+i, j)) != want {
					missing++
				}
			}
		}
		if missing == 0 {
			return nil
		}
		if err := c.managerExited(); err != nil {
			return err
		}
	}
	return fmt.Errorf("%d of %d bindings of users %d… were not %s after %s", missing, g.n*g.perUser, g.first, want, limit)
}
