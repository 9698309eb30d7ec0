package main

// The re-login row: the usual sync with spec.events on, then every user logs in again in Auth0,
// paced within the Auth0 budget, and the bench times each login to all of its user's Secrets
// holding a token of that login, and counts what the operator asked of Auth0 and of the API
// server meanwhile.

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/controller"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

const (
	// defaultReloginRate is how many users log in again per second unless BENCH_RELOGIN_RATE
	// says otherwise: a fifth of the rows' 50 req/s Management API budget. The goal is one read
	// per changed user; logging every user in at once would queue those reads behind the token
	// bucket and time the bucket, not the operator. At full scale each login renews 10 Secrets
	// (about 23 API-server writes): at 25/s the two cores' API server is the bottleneck, and a
	// login waits behind those before it (the README gives both figures).
	defaultReloginRate = 10
	// reloginGiveUp: a Secret without a token of its user's new login this long after the last
	// login is a failure (without the event it would wait for the token's renewal, an hour).
	reloginGiveUp = 2 * time.Minute
	// reloginSettle: requests and writes are still counted this long after the last Secret was
	// renewed (a binding's status write follows its Secret's).
	reloginSettle = 5 * time.Second
)

// reloginResult is what the re-login part of a row measured.
type reloginResult struct {
	users, secrets int
	rate           int           // logins per second
	logins         time.Duration // the logins' span
	latency        spread        // per user: login → every Secret of the user renewed
	allDone        time.Duration // first login → every Secret renewed
	window         time.Duration // first login → reloginSettle after allDone (or the give-up)
	stale          int           // Secrets never renewed
	own            int           // Secrets holding their user's login token itself at the end
	auth0Reqs      int
	rateLimited    int
	idpRefreshes   int
	reads          []int // per user, Auth0 user reads in the window
	reqs           requestCounts
	mgrCPU         float64
}

// createRowTenant creates the row's tenant; a re-login row's has spec.events on (subscribed),
// its M2M client granted read:events.
func (c *cluster) createRowTenant(ctx context.Context, w workload) error {
	if w.relogin {
		c.sim.AddM2MClient(m2mClientID, m2mClientSecret, append(slices.Clone(controller.RequiredScopes), auth0sim.ScopeReadEvents)...)
	}
	if err := c.createTenant(ctx, w.tenantRate); err != nil {
		return err
	}
	if w.relogin {
		if err := c.setEvents(ctx, true); err != nil {
			return fmt.Errorf("enabling events: %w", err)
		}
	}
	return nil
}

// watchTargets follows the operator's target Secrets of the namespace (not the bindings or
// the refresh-state Secrets) with the events row's watch.
func (c *cluster) watchTargets(ctx context.Context) *eventsWatch {
	w := newEventsWatch(c.simExpiry)
	target, _ := labels.Parse(authv1alpha1.LabelManagedBy + "=" + authv1alpha1.ManagedByValue + ",!" + authv1alpha1.LabelRole)
	go c.follow(ctx, &corev1.SecretList{}, []client.ListOption{client.InNamespace(c.ns), client.MatchingLabelsSelector{Selector: target}}, w.seeSecret, w.listed)
	return w
}

// secretsOf is, per user, the target Secrets of its bindings: binding i names user i mod users
// (createBindings without a pace).
func secretsOf(bindings, users int) [][]string {
	out := make([][]string, users)
	for i := range bindings {
		out[i%users] = append(out[i%users], bindingName(i)+"-token")
	}
	return out
}

// allRenewedAt is when the last of the Secrets was first seen, at or after since, with a token
// expiring no earlier than expiry (the login's token or one refreshed from it); false while one
// has none.
func (w *eventsWatch) allRenewedAt(secrets []string, since, expiry time.Time) (time.Time, bool) {
	var last time.Time
	for _, s := range secrets {
		at, ok := w.renewedAt(s, since, expiry)
		if !ok {
			return time.Time{}, false
		}
		last = later(last, at)
	}
	return last, true
}

// staleOf counts the Secrets not renewed since the login.
func staleOf(w *eventsWatch, secrets []string, since, expiry time.Time) int {
	n := 0
	for _, s := range secrets {
		if _, ok := w.renewedAt(s, since, expiry); !ok {
			n++
		}
	}
	return n
}

// holding counts the Secrets whose current token is k.
func (w *eventsWatch) holding(secrets []string, k tokenKey) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, s := range secrets {
		if cur, ok := w.current[s]; ok && cur == k {
			n++
		}
	}
	return n
}

// measureRelogin logs every user in again, reloginRate a second, and times each login to all of
// its user's Secrets renewed.
func measureRelogin(ctx context.Context, c *cluster, w workload) (*reloginResult, []string) {
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	ew := c.watchTargets(watchCtx)
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, lists := ew.stateSnapshot(); lists > 0 {
			break
		}
	}
	secrets := secretsOf(w.bindings, w.users)
	rate := reloginRate()
	rr := &reloginResult{users: w.users, secrets: w.bindings, rate: rate, logins: time.Duration(w.users) * time.Second / time.Duration(rate)}
	progress("  re-login: %d users log in again over %s (%d/s, BENCH_RELOGIN_RATE), events on", w.users, rr.logins, rate)

	s0, m0 := c.sim.Stats(), sample(c.mgr.Pid())
	_, _ = c.audit.read()
	logins, exp, want := make([]time.Time, w.users), make([]time.Time, w.users), make([]tokenKey, w.users)
	var loggedIn atomic.Int64 // logins[:loggedIn] are written
	first := time.Now()
	go func() {
		for k, t := range schedule(first, w.users, rr.logins) {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Until(t)):
			}
			u := userID(k)
			logins[k] = time.Now()
			c.sim.Login(u)
			token := c.sim.CurrentAccessToken(u, connName)
			exp[k], want[k] = c.simExpiry(token), keyOf(token)
			loggedIn.Store(int64(k + 1))
		}
	}()

	done, finished := make([]time.Time, w.users), 0
	var lastLogin time.Time
	for finished < w.users && ctx.Err() == nil && c.managerExited() == nil {
		n := int(loggedIn.Load())
		if n == w.users && lastLogin.IsZero() {
			lastLogin = logins[n-1]
		}
		if !lastLogin.IsZero() && time.Since(lastLogin) > reloginGiveUp {
			break
		}
		for k := range n {
			if done[k].IsZero() {
				if at, ok := ew.allRenewedAt(secrets[k], logins[k], exp[k]); ok {
					done[k] = at
					finished++
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	end := time.Now()
	if finished == w.users {
		end = slices.MaxFunc(done, func(a, b time.Time) int { return a.Compare(b) })
		rr.allDone = end.Sub(first)
	}
	time.Sleep(time.Until(end.Add(reloginSettle)))
	s1, m1 := c.sim.Stats(), sample(c.mgr.Pid())
	rr.reqs, _ = c.audit.read()
	rr.window = time.Since(first)
	rr.mgrCPU = m1.cpu - m0.cpu
	rr.auth0Reqs, rr.rateLimited = s1.APIRequests-s0.APIRequests, s1.RateLimited-s0.RateLimited
	rr.idpRefreshes = s1.IdPRefreshes[idpName] - s0.IdPRefreshes[idpName]
	n := int(loggedIn.Load()) // a login after this (the manager exited, say) is not looked at
	users := make([]string, w.users)
	var ds []time.Duration
	for k := range w.users {
		users[k] = userID(k)
		switch {
		case k >= n:
			rr.stale += len(secrets[k])
		case done[k].IsZero():
			rr.stale += staleOf(ew, secrets[k], logins[k], exp[k])
		default:
			ds = append(ds, done[k].Sub(logins[k]))
		}
		if k < n {
			rr.own += ew.holding(secrets[k], want[k])
		}
	}
	rr.reads = readsDelta(s0.UserReads, s1.UserReads, users)
	rr.latency = spreadOf(ds)
	if rr.stale > 0 {
		return rr, []string{fmt.Sprintf("re-login: %d of %d Secrets held no token of their user's new login %s after the last login",
			rr.stale, rr.secrets, reloginGiveUp)}
	}
	return rr, nil
}

// reloginRate is BENCH_RELOGIN_RATE (logins per second), else defaultReloginRate.
func reloginRate() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_RELOGIN_RATE")); err == nil && n > 0 {
		return n
	}
	return defaultReloginRate
}
