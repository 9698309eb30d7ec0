package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

const (
	// loginSpread is how long the logins of the heal part and the deletes of the delete part
	// are spread over.
	loginSpread = 5 * time.Second
	// readSettle: a healed user's Auth0 reads are counted this long after the heal (well before
	// its brief token's halfway re-read, briefLifetime/2 after it was obtained).
	readSettle = 3 * time.Second
	// dupEvents user.updated events are published over dupSpread, every dupEvery-th delivered
	// twice and in swapped pairs, and the user reads counted for dupWindow from the first.
	dupEvents = 1000
	dupSpread = 3 * time.Second
	dupEvery  = 10
	dupWindow = 35 * time.Second
)

type healResult struct {
	users, healed int
	latency       spread
	slow          int   // heals slower than eventsGoal
	reads         []int // per healed user, Auth0 user reads from its login to readSettle after its heal
}

type deleteResult struct {
	users, gone, notFound int
	slow                  int // deletions slower than eventsGoal
	writtenBack           int // target Secrets that exist again at the end of the row
	backBeforeToggle      int // … before the stream-cut part turned events off and on
	latency               spread
	reads                 []int // per user, Auth0 user reads from the deletes to the end of the part
}

type dupResult struct {
	users, published, delivered int
	reads                       []int // per user, Auth0 user reads in dupWindow
}

// measureHeal logs in again, over loginSpread, every user whose binding is TokenExpired, and
// times each login to its binding Ready=True with the login's token in its Secret.
func measureHeal(ctx context.Context, c *cluster, ew *eventsWatch, er *eventsResult) []string {
	g := healUsers
	progress("  re-login heal: %d users with TokenExpired bindings log in again over %s", g.n, loginSpread)
	before := c.sim.Stats().UserReads
	at := schedule(time.Now(), g.n, loginSpread)
	logins, healed := make([]time.Time, g.n), make([]time.Time, g.n)
	want, counted, reads := make([]tokenKey, g.n), make([]bool, g.n), make([]int, g.n)
	next, done := 0, 0
	deadline := at[g.n-1].Add(eventsGiveUp)
	for done < g.n && time.Now().Before(deadline) && ctx.Err() == nil {
		for next < g.n && !time.Now().Before(at[next]) {
			logins[next] = time.Now()
			c.sim.Login(g.user(next))
			want[next] = keyOf(c.sim.CurrentAccessToken(g.user(next), g.conn))
			next++
		}
		st := c.sim.Stats()
		for k := range next {
			if healed[k].IsZero() {
				if t, ok := ew.healedAt(bindingOf(g.first+k, 0), want[k], logins[k]); ok {
					healed[k] = t
				}
			}
			if !healed[k].IsZero() && !counted[k] && time.Since(healed[k]) >= readSettle {
				reads[k], counted[k] = st.UserReads[g.user(k)]-before[g.user(k)], true
				done++
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	h := &er.heal
	h.users = g.n
	var ds []time.Duration
	for k := range g.n {
		if !healed[k].IsZero() {
			ds = append(ds, healed[k].Sub(logins[k]))
			h.reads = append(h.reads, reads[k])
		}
	}
	h.healed, h.latency, h.slow = len(ds), spreadOf(ds), countOver(ds, eventsGoal)
	if h.healed < g.n {
		return []string{fmt.Sprintf("re-login heal: %d of %d TokenExpired bindings were not Ready with the new login's token %s after the last login", g.n-h.healed, g.n, eventsGiveUp)}
	}
	return nil
}

// measureDeletes deletes, over loginSpread, the users of Ready bindings and times each delete
// to the binding's target Secret being gone.
func measureDeletes(ctx context.Context, c *cluster, ew *eventsWatch, er *eventsResult) []string {
	g := deleteUsers
	progress("  deleted users: %d users deleted over %s", g.n, loginSpread)
	before := c.sim.Stats().UserReads
	at := schedule(time.Now(), g.n, loginSpread)
	deleted, gone := make([]time.Time, g.n), make([]time.Time, g.n)
	next, seen := 0, 0
	for deadline := at[g.n-1].Add(eventsGiveUp); seen < g.n && time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(10 * time.Millisecond) {
		for next < g.n && !time.Now().Before(at[next]) {
			deleted[next] = time.Now()
			c.sim.DeleteUser(g.user(next))
			next++
		}
		for k := range next {
			if t, ok := ew.deletedAt(bindingOf(g.first+k, 0) + "-token"); ok && gone[k].IsZero() && !t.Before(deleted[k]) {
				gone[k] = t
				seen++
			}
		}
	}
	d := &er.del
	d.users = g.n
	var ds []time.Duration
	for k := range g.n {
		if !gone[k].IsZero() {
			ds = append(ds, gone[k].Sub(deleted[k]))
		}
	}
	d.gone, d.latency, d.slow = len(ds), spreadOf(ds), countOver(ds, eventsGoal)
	var failures []string
	if d.gone < g.n {
		failures = append(failures, fmt.Sprintf("deleted users: %d of %d target Secrets were still there %s after the last delete", g.n-d.gone, g.n, eventsGiveUp))
	}
	err := waitGroup(ctx, c, ew, g, "False/"+authv1alpha1.ReasonUserNotFound, 15*time.Second)
	for k := range g.n {
		if ew.bindingReason(bindingOf(g.first+k, 0)) == "False/"+authv1alpha1.ReasonUserNotFound {
			d.notFound++
		}
	}
	if err != nil {
		failures = append(failures, "deleted users: "+err.Error())
	}
	d.reads = readsDelta(before, c.sim.Stats().UserReads, g.users())
	return failures
}

// measureDuplicates publishes dupEvents user.updated events over the group's users, with
// duplicates and out of order, and counts the Auth0 user reads they cause per user.
func measureDuplicates(ctx context.Context, c *cluster, ew *eventsWatch, er *eventsResult) []string {
	g := dupUsers
	progress("  duplicates: %d user.updated events over %d users in %s (every %dth twice, in swapped pairs); reads counted for %s",
		dupEvents, g.n, dupSpread, dupEvery, dupWindow)
	c.sim.SetEventsOptions(auth0sim.EventsOptions{DuplicateEvery: dupEvery, OutOfOrder: true})
	defer c.sim.SetEventsOptions(auth0sim.EventsOptions{})
	e0, before := c.sim.EventsStats(), c.sim.Stats().UserReads
	start := time.Now()
	for k, t := range schedule(start, dupEvents, dupSpread) {
		time.Sleep(time.Until(t))
		c.sim.PublishEvent(auth0sim.EventUserUpdated, map[string]any{"user_id": g.user(k % g.n)})
	}
	c.sim.FlushEvents()
	select {
	case <-ctx.Done():
	case <-time.After(time.Until(start.Add(dupWindow))):
	}
	e1 := c.sim.EventsStats()
	d := &er.dup
	d.users, d.published, d.delivered = g.n, e1.Published-e0.Published, e1.Delivered-e0.Delivered
	d.reads = readsDelta(before, c.sim.Stats().UserReads, g.users())
	if err := waitGroup(ctx, c, ew, g, readySynced, 10*time.Second); err != nil {
		return []string{"duplicates: " + err.Error()}
	}
	return nil
}

// maxReads is the most reads of one user; 0 for none.
func maxReads(reads []int) int {
	if len(reads) == 0 {
		return 0
	}
	return slices.Max(reads)
}
