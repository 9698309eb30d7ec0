package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/internal/controller"
)

// eventsSection is the events row's small table: one line per measurement, with its goal.
func eventsSection(r *result) string {
	e := r.events
	var b strings.Builder
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(&b, format, args...) }
	p("\n%s (tenant rateLimit %d/s):\n\n", r.w, effectiveRate(r.w))
	p("| events measurement | measured | goal |\n|---|---|---|\n")
	notRun := func(what string) { p("| %s | not measured | |\n", what) }

	what := fmt.Sprintf("re-login heal: %d users, each with a binding Ready=False TokenExpired (%s tokens, no refresh token), log in again over %s",
		healUsers.n, briefLifetime, loginSpread)
	if h := e.heal; h.users == 0 {
		notRun(what)
	} else {
		p("| %s | login → binding Ready=True with the new login's token in its Secret: %s (%d over %s); %d of %d healed; Auth0 user reads %d (%s) | p99 < %s (%s); 1 read per user (%s) |\n",
			what, h.latency, h.slow, secs(eventsGoal), h.healed, h.users, sum(h.reads), histogram(h.reads),
			secs(eventsGoal), verdict(h.latency.n > 0 && h.latency.p99 < eventsGoal), verdict(h.healed > 0 && maxReads(h.reads) <= 1))
	}

	what = fmt.Sprintf("deleted users: %d users with a Ready binding deleted over %s", deleteUsers.n, loginSpread)
	if d := e.del; d.users == 0 {
		notRun(what)
	} else {
		p("| %s | delete → target Secret gone: %s (%d over %s); %d of %d Secrets gone, %d bindings Ready=False UserNotFound; Secrets written back: %d before the stream-cut part turned events off and on, %d at the end of the row; Auth0 user reads %d (%s) | p99 < %s (%s) |\n",
			what, d.latency, d.slow, secs(eventsGoal), d.gone, d.users, d.notFound, d.backBeforeToggle, d.writtenBack, sum(d.reads), histogram(d.reads),
			secs(eventsGoal), verdict(d.latency.n > 0 && d.latency.p99 < eventsGoal))
	}

	what = fmt.Sprintf("duplicates and out of order: %s user.updated events over %d users (%d bindings each) in %s, every %dth delivered twice, in swapped pairs",
		thousands(dupEvents), dupUsers.n, dupUsers.perUser, dupSpread, dupEvery)
	if d := e.dup; d.users == 0 {
		notRun(what)
	} else {
		p("| %s | %s published, %s frames delivered; Auth0 user reads in the %s from the first: max %d per user (%s), %d in all | ≤ 2 per user in %s: one at once, one when the %s spacing ends (%s) |\n",
			what, thousands(d.published), thousands(d.delivered), dupWindow, maxReads(d.reads), histogram(d.reads), sum(d.reads),
			dupWindow, controller.NoticeSpacing, verdict(maxReads(d.reads) <= 2))
	}

	what = fmt.Sprintf("stream cut: each events stream closed after %s (spec.events turned off and on first, so that the open stream takes the option); %s of logins, one every %s over %d users with Ready bindings (hour-long tokens)",
		cutClose, e.cutWindow, loginEvery, cutUsers.n)
	if c := e.cut; c.logins == 0 {
		notRun(what)
	} else {
		settled := "never within " + (controller.NoticeSpacing + 5*time.Second).String()
		if c.lost == 0 {
			settled = secs(c.settled)
		}
		p("| %s | %d logins, %d events published, %d streams opened (%d refused, %d expired); lost %d (users whose Secret holds no token minted at or after their latest login; every Secret current %s after the last login); login → Secret renewed: %s (%d logins never seen by the harness's watch, which listed again %d times); %d Auth0 requests (%d user reads, %d M2M tokens), %d IdP refreshes; refresh-state Secret writes %s | 0 lost (%s) |\n",
			what, c.logins, c.published, c.opened, c.refused, c.expired, c.lost, settled, c.latency, c.unseen, c.lists,
			c.auth0Reqs, c.userReads, c.m2m, c.idpRefreshes, c.stateWrites, verdict(c.lost == 0))
	}

	what = "events off (spec.events removed, counted from 15 s after that change of the tenant): the stream-cut logins, one every " + loginEvery.String()
	if o := e.off; o.logins == 0 {
		notRun(what)
	} else {
		p("| %s, for %s | %d logins; %d Auth0 requests (%d user reads, %d M2M tokens), %d streams opened; %d logins renewed their user's Secret; refresh-state Secret writes %s | 0 Auth0 requests in steady state (%s) |\n",
			what, o.window, o.logins, o.auth0Reqs, o.userReads, o.m2m, o.opened, o.updated, o.stateWrites, verdict(o.auth0Reqs == 0))
	}
	return b.String()
}
