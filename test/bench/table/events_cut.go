package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

type cutResult struct {
	window                    time.Duration
	logins, users             int
	published, delivered      int
	opened, refused, expired  int // streams, from the simulator's EventsStats
	lost                      int // users whose Secret does not hold their latest login's token
	unseen                    int // logins whose token never reached a Secret
	latency                   spread
	auth0Reqs, userReads, m2m int
	idpRefreshes              int
	settled                   time.Duration // last login → every Secret holding its user's latest token
	stateWrites               writeCount    // the manager's refresh-state Secret writes, as watched
	lists                     int           // the harness's watches listed again (a watch ended)
}

type offResult struct {
	window                    time.Duration
	logins, updated           int // updated: logins whose user's Secret was renewed
	auth0Reqs, userReads, m2m int
	opened                    int
	stateWrites               writeCount
}

// login is one Login of the stream-cut and events-off parts, and when its access token expires.
type login struct {
	user    int // in cutUsers
	at, exp time.Time
}

func (l login) secret() string { return bindingOf(cutUsers.first+l.user, 0) + "-token" }

// loginRound logs in a user of cutUsers every loginEvery for window, the users in turn from
// first (each one again after cutUsers.n × loginEvery, longer than the notice spacing).
func loginRound(ctx context.Context, c *cluster, window time.Duration, first int, tick func([]login)) []login {
	g := cutUsers
	n := max(1, int(window/loginEvery))
	out := make([]login, 0, n)
	lastLog := time.Now()
	for k, t := range schedule(time.Now(), n, window) {
		select {
		case <-ctx.Done():
			return out
		case <-time.After(time.Until(t)):
		}
		u := (first + k) % g.n
		at := time.Now()
		c.sim.Login(g.user(u))
		out = append(out, login{user: u, at: at, exp: c.simExpiry(c.sim.CurrentAccessToken(g.user(u), g.conn))})
		if time.Since(lastLog) >= 30*time.Second {
			tick(out)
			lastLog = time.Now()
		}
	}
	return out
}

// measureCut has the simulator close each events stream after cutClose while users log in
// again, one every loginEvery, and checks that every login reaches its user's Secret: the
// Secret holds a token minted at or after the login (the login's access token, or a token the
// IdP issued for the login's refresh token: a token read from Auth0 has only an estimated
// expiry, and the operator refreshes it rather than write it).
func measureCut(ctx context.Context, c *cluster, ew *eventsWatch, er *eventsResult) []string {
	g, cr := cutUsers, &er.cut
	cr.window, cr.users = er.cutWindow, g.n
	progress("  stream cut: each stream closed after %s; a login every %s for %s over %d users (BENCH_EVENTS_CUT)", cutClose, loginEvery, cr.window, g.n)
	var failures []string
	if back, err := c.deletedBack(ctx); err == nil {
		er.del.backBeforeToggle = back
	}
	c.sim.SetEventsOptions(auth0sim.EventsOptions{CloseEvery: cutClose})
	defer c.sim.SetEventsOptions(auth0sim.EventsOptions{})
	// The simulator reads CloseEvery when a stream opens: the open stream is ended by turning
	// spec.events off and on (the subscription resumes from its kept offset).
	for _, on := range []bool{false, true} {
		if err := c.setEvents(ctx, on); err != nil {
			return []string{fmt.Sprintf("stream cut: turning events off and on: %v", err)}
		}
	}
	e0, s0 := c.sim.EventsStats(), c.sim.Stats()
	w0, l0 := ew.stateSnapshot()
	start := time.Now()
	logins := loginRound(ctx, c, cr.window, 0, func(ls []login) {
		progress("  … %s: %d logins, %d streams opened", time.Since(start).Round(time.Second), len(ls), c.sim.EventsStats().StreamsOpened-e0.StreamsOpened)
	})
	latest := map[string]time.Time{}
	for _, l := range logins {
		latest[l.secret()] = l.exp
	}
	last := time.Now()
	if len(logins) > 0 {
		last = logins[len(logins)-1].at
	}
	// A lost event would leave its Secret behind for good (hour-long tokens); a late one is
	// there within the notice spacing.
	// Read, not watched: the verdict does not depend on the harness's watch keeping up.
	for deadline := last.Add(controller.NoticeSpacing + 5*time.Second); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(200 * time.Millisecond) {
		current, err := c.targetExpiries(ctx)
		if err != nil {
			continue
		}
		if cr.lost = staleUsers(current, latest); cr.lost == 0 {
			cr.settled = time.Since(last)
			break
		}
	}
	e1, s1 := c.sim.EventsStats(), c.sim.Stats()
	w1, l1 := ew.stateSnapshot()
	cr.stateWrites, cr.lists = writesBetween(w0, w1), l1-l0
	var ds []time.Duration
	for _, l := range logins {
		if at, ok := ew.renewedAt(l.secret(), l.at, l.exp); ok {
			ds = append(ds, at.Sub(l.at))
		} else {
			cr.unseen++
		}
	}
	cr.logins, cr.latency = len(logins), spreadOf(ds)
	cr.published, cr.delivered = e1.Published-e0.Published, e1.Delivered-e0.Delivered
	cr.opened, cr.refused, cr.expired = e1.StreamsOpened-e0.StreamsOpened, e1.Refused-e0.Refused, e1.Expired-e0.Expired
	cr.auth0Reqs, cr.m2m = s1.APIRequests-s0.APIRequests, s1.M2MTokensIssued-s0.M2MTokensIssued
	cr.userReads = sum(readsDelta(s0.UserReads, s1.UserReads, g.users()))
	cr.idpRefreshes = s1.IdPRefreshes[idpName] - s0.IdPRefreshes[idpName]
	if cr.lost > 0 {
		return append(failures, fmt.Sprintf("stream cut: %d of %d users' Secrets do not hold their latest login's token %s after the last login (events lost)",
			cr.lost, len(latest), controller.NoticeSpacing+5*time.Second))
	}
	return failures
}

// targetExpiries reads the access token of every target Secret of the namespace and returns
// when each expires (the simulator's word), by Secret name.
func (c *cluster) targetExpiries(ctx context.Context) (map[string]time.Time, error) {
	list := &corev1.SecretList{}
	if err := c.k8s.List(ctx, list, client.InNamespace(c.ns), client.MatchingLabels{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue}); err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for i := range list.Items {
		if s := &list.Items[i]; s.Labels[authv1alpha1.LabelRole] == "" {
			out[s.Name] = c.simExpiry(string(s.Data[authv1alpha1.SecretKeyAccessToken]))
		}
	}
	return out, nil
}

// deletedBack counts the deleted users' target Secrets that exist.
func (c *cluster) deletedBack(ctx context.Context) (int, error) {
	current, err := c.targetExpiries(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for i := range deleteUsers.n {
		if _, back := current[bindingOf(deleteUsers.first+i, 0)+"-token"]; back {
			n++
		}
	}
	return n, nil
}

// measureDeletedStayGone checks, at the end of the row, that no deleted user's target Secret
// was written back (after events were turned off, say).
func measureDeletedStayGone(ctx context.Context, c *cluster, _ *eventsWatch, er *eventsResult) []string {
	back, err := c.deletedBack(ctx)
	if err != nil {
		return []string{fmt.Sprintf("reading the Secrets: %v", err)}
	}
	er.del.writtenBack = back
	if back > 0 || er.del.backBeforeToggle > 0 {
		return []string{fmt.Sprintf("deleted users: their target Secrets were written back: %d of %d before events were turned off and on for the stream cut, %d at the end of the row",
			er.del.backBeforeToggle, deleteUsers.n, back)}
	}
	return nil
}

// offSettle is how long the events-off part waits after the tenant's change before it counts.
const offSettle = 15 * time.Second

// measureOff turns spec.events off and repeats the stream-cut part's logins for offWindow (at
// most BENCH_EVENTS_CUT), counting the Auth0 requests the manager makes meanwhile.
func measureOff(ctx context.Context, c *cluster, ew *eventsWatch, er *eventsResult) []string {
	o := &er.off
	o.window = min(offWindow, er.cutWindow)
	if err := c.setEvents(ctx, false); err != nil {
		return []string{fmt.Sprintf("events off: %v", err)}
	}
	// Turning events off is a change of the tenant: every binding of it is looked at once (a
	// deleted user's binding reads Auth0 again). That settles before the steady state is counted.
	time.Sleep(offSettle)
	progress("  events off: a login every %s for %s", loginEvery, o.window)
	e0, s0 := c.sim.EventsStats(), c.sim.Stats()
	w0, _ := ew.stateSnapshot()
	logins := loginRound(ctx, c, o.window, 0, func([]login) {})
	time.Sleep(5 * time.Second) // what the events would have done by now
	e1, s1 := c.sim.EventsStats(), c.sim.Stats()
	w1, _ := ew.stateSnapshot()
	o.stateWrites = writesBetween(w0, w1)
	for _, l := range logins {
		if _, ok := ew.renewedAt(l.secret(), l.at, l.exp); ok {
			o.updated++
		}
	}
	o.logins = len(logins)
	o.auth0Reqs, o.m2m = s1.APIRequests-s0.APIRequests, s1.M2MTokensIssued-s0.M2MTokensIssued
	o.userReads = sum(readsDelta(s0.UserReads, s1.UserReads, cutUsers.users()))
	o.opened = e1.StreamsOpened - e0.StreamsOpened
	return nil
}
