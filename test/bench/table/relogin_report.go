package main

import (
	"fmt"
	"strings"
)

// reloginLabel names the re-login part of row w.
func reloginLabel(w workload, rr *reloginResult) string {
	return fmt.Sprintf("re-login: %s users log in again (%d/s over %s), events on, after the sync of %s bindings",
		thousands(rr.users), rr.rate, secs(rr.logins), thousands(w.bindings))
}

// reloginRow is the re-login part's line below the main table, in its columns.
func reloginRow(r *result) string {
	rr, n := r.relogin, float64(r.w.bindings)
	perUser := float64(rr.auth0Reqs) / float64(rr.users)
	renewed := "never: " + thousands(rr.stale) + " Secrets not renewed"
	if rr.stale == 0 {
		renewed = "every Secret renewed " + secs(rr.allDone) + " after the first login"
	}
	sw, st, other := rr.reqs.writes(isSecret), rr.reqs.writes(isStatus), rr.reqs.writes(isOther)
	return fmt.Sprintf("| %s | %s | %.2f Auth0 requests per changed user ≤ 1.00 (%s) | %d (%.2f) | %d | %.2f (Secret %.2f, status %.2f, other %.2f) | %.2f | login → all the user's Secrets renewed: %s | | %.1f s in the %s window | |\n",
		reloginLabel(r.w, rr), renewed, perUser, verdict(perUser <= 1), rr.auth0Reqs, perUser, rr.rateLimited,
		float64(sw+st+other)/n, float64(sw)/n, float64(st)/n, float64(other)/n, float64(rr.reqs.gets("secrets"))/n,
		rr.latency, rr.mgrCPU, secs(rr.window))
}

// reloginDetails is the re-login part's detail lines.
func reloginDetails(rr *reloginResult) string {
	var b strings.Builder
	_, _ = fmt.Fprintf(&b, "  … re-login: %s logins over %s; Auth0 user reads %d (%s); %d IdP refreshes; %s of %s Secrets hold their user's login token itself at the end (the others a token refreshed with the login's refresh token); %s window from the first login (%s after the last Secret renewed)\n",
		thousands(rr.users), secs(rr.logins), sum(rr.reads), histogram(rr.reads), rr.idpRefreshes, thousands(rr.own), thousands(rr.secrets),
		secs(rr.window), reloginSettle)
	_, _ = fmt.Fprintf(&b, "  … during the re-login window: %s\n", rr.reqs)
	return b.String()
}
