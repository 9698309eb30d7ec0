package demo

import (
	"context"
	"fmt"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// runRelogin starts the re-login step next to the polls. Its notes go to the output of a
// headless run; the live view shows the last one. The returned function stops the step and
// waits for it.
func (w *watcher) runRelogin(ctx context.Context, headless bool) (stop func()) {
	if w.relogin == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	note := func(string, ...any) {}
	if headless {
		note = w.say
	}
	go w.relogin.run(ctx, note)
	return func() { cancel(); <-w.relogin.done }
}

// reloginExcused tells whether t is the re-login binding and may, at now, be TokenExpired with
// its expired token in its Secret.
func (w *watcher) reloginExcused(t *track, now time.Time) bool {
	if !t.relogin || w.relogin == nil {
		return false
	}
	times, _, _, _, _ := w.relogin.snapshot()
	return times.excused(now)
}

// excuseNotReady notes a poll of the re-login binding that the step excuses: TokenExpired, or
// its expired token in the Secret, before its user logged in again. It returns false for any
// other poll.
func (w *watcher) excuseNotReady(t *track, now time.Time) bool {
	if t.reason != authv1alpha1.ReasonTokenExpired || !w.reloginExcused(t, now) {
		return false
	}
	t.excusedPolls++
	return true
}

// excuseExpired records an expired token in the re-login binding's Secret when the step excuses
// it, and says so once per token.
func (w *watcher) excuseExpired(t *track, now time.Time, fp string) bool {
	if !w.reloginExcused(t, now) {
		return false
	}
	if t.excused == nil {
		t.excused = map[string]bool{}
	}
	if !t.excused[fp] {
		t.excused[fp] = true
		w.say("%-32s Secret %s holds its expired token %s (expired %s ago): no refresh token, so it waits for its user to log in again",
			t.key, t.secret, fp, since(now, t.expiresAt))
	}
	return true
}

// checkRelogin checks, at the end of a run, that the re-login binding healed. If it did not,
// the expired tokens its Secret held count as expired.
func (w *watcher) checkRelogin(t *track) {
	if w.relogin == nil {
		return
	}
	times, _, _, failure, _ := w.relogin.snapshot()
	if !times.healedAt.IsZero() {
		return
	}
	if t.expired == nil {
		t.expired = map[string]bool{}
	}
	for fp := range t.excused {
		t.expired[fp] = true
	}
	if failure != "" {
		w.fail("%s", failure)
		return
	}
	w.fail("binding %s did not heal: the run ended before its user logged in again and it was Ready with the new token", t)
}

// reloginLine is the summary's row of the re-login step; "" without one.
func (w *watcher) reloginLine() string {
	if w.relogin == nil {
		return ""
	}
	t := w.tracks[w.relogin.key]
	times, expiredAt, latency, failure, _ := w.relogin.snapshot()
	head := fmt.Sprintf("auth0 events: %s (user %s, no refresh token)", w.relogin.key, UserGrace)
	at := func(tm time.Time) string { return fmt.Sprintf("t+%ds", int(tm.Sub(w.started).Seconds())) }
	switch {
	case t == nil:
		return head + ": not watched"
	case !times.healedAt.IsZero():
		return fmt.Sprintf("%s: Ready=False TokenExpired from %s (%d poll(s), its Secret holding the expired token); its user logged in "+
			"again at %s and it was Ready with the new token %.1f s later (Auth0 event %s; within %s); not counted as expired",
			head, at(expiredAt), t.excusedPolls, at(times.loginAt), latency.Seconds(), authv1alpha1.EventUserUpdated, HealWithin)
	case failure != "":
		return fmt.Sprintf("%s: FAILED: %s; its expired token counts as expired", head, failure)
	}
	return head + ": did not heal before the run ended; its expired token counts as expired"
}

// reloginPassed is what a passing run says of the re-login binding's expired token.
func (w *watcher) reloginPassed() string {
	if w.relogin == nil {
		return ""
	}
	times, _, latency, _, _ := w.relogin.snapshot()
	if times.healedAt.IsZero() {
		return ""
	}
	return fmt.Sprintf(", except %s's, which has no refresh token, until its user logged in again (Ready with the new token %.1f s later)",
		w.relogin.key, latency.Seconds())
}
