package demo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// Fingerprint is the first 8 hex digits of a token's SHA-256: enough to see it change, never
// the token.
func Fingerprint(token string) string {
	if token == "" {
		return "-"
	}
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:4])
}

// track is what the watcher knows of one binding.
type track struct {
	sampleBinding
	secret, idp string

	exists          bool
	ready           string // status of the Ready condition, "" when absent
	reason, message string
	everReady       bool
	firstReady      time.Time
	notReadyPolls   int  // polls with Ready not True after the first Ready
	wasNotReady     bool // the previous poll saw Ready not True after the first Ready
	failedAttempts  int32
	syncFailing     string // reason of SyncFailing=True, if set

	// Of a binding expected to be refused (expect set):
	refused    bool // Ready=False with the expected reason was seen
	offPolls   int  // polls with another condition after the first refusal
	wasOff     bool // the previous poll saw another condition after the first refusal
	secretSeen bool // its target Secret existed at some poll

	fp          string // fingerprint of the token in the target Secret
	valid       bool
	expiresAt   time.Time // from the simulator: the truth about the token in the Secret
	nextRefresh time.Time
	refreshes   int // changes of the token in the target Secret
	expired     map[string]bool
	// Of a Token Vault binding: the expired token the Secret holds within VaultGapTolerance of
	// its expiry, and the gaps seen (expiry to the first poll that saw its successor).
	gapFP       string
	gaps        int
	maxGap      time.Duration
	lastRefresh time.Time // status.lastRefreshTime
	statusRefr  int       // distinct values of status.lastRefreshTime
	// firstRefresh is when the token in the Secret was first seen to change.
	firstRefresh time.Time

	// Of a templated binding: polls that saw its Secret, those whose keys were not the
	// template's, and the last difference.
	templatePolls, templateBad int
	templateProblem            string

	// Of the re-login binding: polls with Ready=False TokenExpired, and the expired tokens its
	// Secret held, before its user logged in again (see reloginTimes.excused).
	excusedPolls int
	excused      map[string]bool
}

// refusedAsExpected tells whether the binding's Ready condition is now the expected refusal.
func (t *track) refusedAsExpected() bool {
	return t.expect != "" && t.exists && t.ready == string(metav1.ConditionFalse) && t.reason == t.expect
}

// VaultGapTolerance is how long after its expiry a Token Vault binding's Secret may still hold
// the expired token. Auth0 refreshes a vaulted token only once it has expired, so its successor
// reaches the Secret a moment after the expiry; any longer counts as an expired token.
const VaultGapTolerance = 5 * time.Second

type watcher struct {
	c           client.Client
	sim         *auth0sim.Server
	samples     samples
	mgr         *managerProcess
	out         io.Writer
	tty         bool
	lifetime    time.Duration
	kubectlHelp string
	managerLog  string
	// relogin is the re-login step; nil without one.
	relogin *relogin
	outMu   sync.Mutex // say is called by the re-login step too

	tracks      map[types.NamespacedName]*track
	restarts    []*restartTrack
	started     time.Time
	tenantReady map[sampleTenant]string
	events      []string // recent Events, redacted
	failures    []string
	pollErrors  int
	lastPollErr string
}

// run polls every second until ctx ends (live) or d has passed (headless, d > 0).
func (w *watcher) run(ctx context.Context, d time.Duration) *Summary {
	w.started = time.Now()
	headless := d > 0
	w.tracks = map[types.NamespacedName]*track{}
	w.tenantReady = map[sampleTenant]string{}
	for _, b := range w.samples.bindings {
		w.tracks[b.key] = &track{sampleBinding: b, expired: map[string]bool{}}
	}
	w.restarts = restartTracks(w.samples)
	stopRelogin := w.runRelogin(ctx, headless)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastProgress := time.Now()
	interrupted := false
loop:
	for {
		now := time.Now()
		w.poll(ctx, now, headless)
		if done, err := w.mgr.exited(); done {
			w.fail("the manager exited unexpectedly (%v); see %s", err, relPath(w.managerLog))
			break
		}
		if headless {
			// A run shorter than the re-login step waits for its end.
			if time.Since(w.started) >= d && (w.relogin == nil || w.relogin.finished()) {
				break
			}
			if time.Since(lastProgress) >= 15*time.Second {
				lastProgress = time.Now()
				w.say("%s", w.progressLine())
			}
		} else {
			w.render(now)
		}
		select {
		case <-ctx.Done():
			interrupted = headless
			break loop
		case <-tick.C:
		}
	}
	stopRelogin()
	if !headless {
		_, _ = fmt.Fprintln(w.out)
	}
	sum := &Summary{Bindings: len(w.samples.bindings), Interrupted: interrupted}
	for _, r := range w.restarts {
		sum.Restarts += len(r.restarts)
	}
	w.checkRestarts(time.Now())
	for _, b := range w.samples.bindings {
		t := w.tracks[b.key]
		if t.relogin {
			w.checkRelogin(t)
		}
		sum.Refreshes += t.refreshes
		sum.Expired += len(t.expired)
		if len(t.templateKeys) > 0 && t.expect == "" {
			w.checkTemplate(t)
		}
		if t.expect != "" {
			if w.checkRefused(t) {
				sum.Refused++
			}
			continue
		}
		switch {
		case !t.everReady:
			w.fail("binding %s never became Ready (Ready=%s %s: %s)", b, orDash(t.ready), t.reason, t.message)
		case t.notReadyPolls > 0:
			w.fail("binding %s was not Ready in %d poll(s) after its first sync", b, t.notReadyPolls)
		}
		if len(t.expired) > 0 {
			w.fail("Secret %s of binding %s held an expired token (%d token(s))", t.secret, b, len(t.expired))
		}
	}
	if interrupted {
		w.fail("interrupted after %s", time.Since(w.started).Round(time.Second))
	}
	sum.Failures = w.failures
	return sum
}

// checkRefused checks, at the end of a run, a binding the samples expect to be refused: it
// never became Ready, it was refused with the expected reason and stayed so, its Secret was
// never written, and (when no other binding names its user) Auth0 was never asked for its user.
func (w *watcher) checkRefused(t *track) bool {
	ok := true
	fail := func(format string, args ...any) { ok = false; w.fail(format, args...) }
	if t.everReady {
		fail("binding %s became Ready, but its tenant's policy must refuse it (Ready=False %s)", t, t.expect)
	}
	switch {
	case !t.refused:
		fail("binding %s was never refused with %s (Ready=%s %s: %s)", t, t.expect, orDash(t.ready), t.reason, t.message)
	case t.offPolls > 0:
		fail("binding %s was not %s in %d poll(s) after it was first refused", t, t.expect, t.offPolls)
	}
	if t.secretSeen {
		fail("Secret %s of binding %s was written, but the binding is refused", t.secret, t)
	}
	if t.userID != "" && !w.namedByAnother(t) {
		if n := w.sim.Stats().UserReads[t.userID]; n > 0 {
			fail("the simulated Auth0 was asked %d time(s) for user %s, whom only the refused binding %s names: a refusal must come before any Auth0 request", n, t.userID, t)
		}
	}
	return ok
}

// namedByAnother tells whether a binding other than t names t's user.
func (w *watcher) namedByAnother(t *track) bool {
	for _, b := range w.samples.bindings {
		if b.key != t.key && b.userID == t.userID {
			return true
		}
	}
	return false
}

func (w *watcher) say(format string, args ...any) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_, _ = fmt.Fprintf(w.out, "[t+%3ds] %s\n", int(time.Since(w.started).Seconds()), fmt.Sprintf(format, args...))
}

func (w *watcher) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for _, f := range w.failures {
		if f == msg {
			return
		}
	}
	w.failures = append(w.failures, msg)
}

// poll reads every binding, its Secret and the tenants, and checks the token in each Secret
// with the simulator. In headless mode it prints what changed.
func (w *watcher) poll(ctx context.Context, now time.Time, headless bool) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var list authv1alpha1.IdPTokenBindingList
	if err := w.c.List(ctx, &list); err != nil {
		w.pollError(err)
		return
	}
	for _, st := range w.samples.tenants {
		var obj client.Object = &authv1alpha1.Auth0Tenant{}
		if st.kind == "ClusterAuth0Tenant" {
			obj = &authv1alpha1.ClusterAuth0Tenant{}
		}
		if err := w.c.Get(ctx, st.key, obj); err == nil {
			switch o := obj.(type) {
			case *authv1alpha1.Auth0Tenant:
				w.tenantReady[st] = conditionSummary(o.Status.Conditions)
			case *authv1alpha1.ClusterAuth0Tenant:
				w.tenantReady[st] = conditionSummary(o.Status.Conditions)
			}
		}
	}
	byKey := map[types.NamespacedName]*authv1alpha1.IdPTokenBinding{}
	for i := range list.Items {
		byKey[client.ObjectKeyFromObject(&list.Items[i])] = &list.Items[i]
	}
	for _, b := range w.samples.bindings {
		w.pollBinding(ctx, now, headless, w.tracks[b.key], byKey[b.key])
	}
	w.pollRestarts(ctx, now, headless)
	if !headless {
		w.readEvents(ctx)
	}
}

// pollBinding updates one binding's track from the binding b (nil when it does not exist)
// and its target Secret.
func (w *watcher) pollBinding(ctx context.Context, now time.Time, headless bool, t *track, b *authv1alpha1.IdPTokenBinding) {
	n := t.key.String()
	t.exists = b != nil
	if b == nil {
		return
	}
	t.readStatus(b)
	if t.expect != "" {
		w.followRefusal(now, headless, t)
	} else {
		w.followReady(now, headless, t)
	}

	var s corev1.Secret
	err := w.c.Get(ctx, types.NamespacedName{Namespace: t.key.Namespace, Name: t.secret}, &s)
	switch {
	case apierrors.IsNotFound(err):
		t.fp, t.valid, t.expiresAt = "", false, time.Time{}
		return
	case err != nil:
		w.pollError(err)
		return
	}
	if t.expect != "" && !t.secretSeen {
		t.secretSeen = true
		w.say("%-32s Secret %s EXISTS, but the binding is refused", n, t.secret)
	}
	if len(t.templateKeys) > 0 {
		w.followTemplate(t, &s)
	}
	tok := secretToken(&s)
	fp := Fingerprint(tok)
	heldExpiry := t.expiresAt
	t.expiresAt, t.valid = w.sim.AccessTokenValid(tok)
	if tok != "" && !t.valid && !t.expired[fp] {
		switch {
		case t.inVaultGap(now):
			if t.gapFP != fp {
				t.gapFP = fp
				w.say("%-32s Secret %s holds token %s, expired %s ago: Token Vault renews it only once expired (tolerated for %s)",
					n, t.secret, fp, since(now, t.expiresAt), VaultGapTolerance)
			}
		case w.excuseExpired(t, now, fp):
		default:
			t.expired[fp] = true
			w.say("%-32s Secret %s holds an EXPIRED token %s (expired %s ago)", n, t.secret, fp, since(now, t.expiresAt))
		}
	}
	if t.fp != "" && fp != t.fp && t.gapFP == t.fp {
		gap := now.Sub(heldExpiry)
		t.gaps++
		t.maxGap = max(t.maxGap, gap)
		w.say("%-32s Token Vault gap: the Secret held an expired token for at most %s", n, fmtDur(gap))
	}
	if t.fp != "" && fp != t.fp {
		t.refreshes++
		if t.firstRefresh.IsZero() {
			t.firstRefresh = now
		}
		if headless {
			w.say("%-32s refreshed: token %s -> %s, valid for %s", n, t.fp, fp, until(now, t.expiresAt))
		}
	} else if t.fp == "" && headless && tok != "" {
		w.say("%-32s Secret %s written: token %s, valid for %s", n, t.secret, fp, until(now, t.expiresAt))
	}
	if tok != "" {
		t.fp = fp
	}
}

// readStatus updates the track from the binding's spec and status.
func (t *track) readStatus(b *authv1alpha1.IdPTokenBinding) {
	t.secret = b.Spec.Secret.Name
	t.idp = t.connection
	if b.Status.Identity != nil && b.Status.Identity.Connection != "" {
		t.idp = b.Status.Identity.Connection
	}
	t.failedAttempts = b.Status.FailedAttempts
	t.nextRefresh = timeOf(b.Status.NextRefreshTime)
	if lr := timeOf(b.Status.LastRefreshTime); !lr.IsZero() && !lr.Equal(t.lastRefresh) {
		t.statusRefr++
		t.lastRefresh = lr
	}
	t.syncFailing = ""
	if c := meta.FindStatusCondition(b.Status.Conditions, authv1alpha1.ConditionSyncFailing); c != nil && c.Status == metav1.ConditionTrue {
		t.syncFailing = c.Reason
	}
	t.ready, t.reason, t.message = "", "", ""
	if c := meta.FindStatusCondition(b.Status.Conditions, authv1alpha1.ConditionReady); c != nil {
		t.ready, t.reason, t.message = string(c.Status), c.Reason, redact(c.Message)
	}
}

// inVaultGap tells whether the expired token the Secret holds is still within the bounded gap a
// Token Vault binding is allowed after its expiry. A token the simulator does not know is not.
func (t *track) inVaultGap(now time.Time) bool {
	return t.tokenVault && !t.expiresAt.IsZero() && !now.Before(t.expiresAt) && now.Sub(t.expiresAt) <= VaultGapTolerance
}

// followReady notes a binding's transitions in and out of Ready.
func (w *watcher) followReady(now time.Time, headless bool, t *track) {
	n := t.key.String()
	switch {
	case t.ready == "True" && !t.everReady:
		t.everReady, t.firstReady = true, now
		if headless {
			w.say("%-32s Ready (%s)", n, t.reason)
		}
	case t.ready == "True" && t.wasNotReady:
		t.wasNotReady = false
		if headless {
			w.say("%-32s Ready again", n)
		}
	case t.ready != "True" && t.everReady && w.excuseNotReady(t, now):
	case t.ready != "True" && t.everReady:
		t.notReadyPolls++
		if !t.wasNotReady {
			t.wasNotReady = true
			w.say("%-32s NOT READY after its first sync: Ready=%s %s: %s", n, orDash(t.ready), t.reason, t.message)
		}
	}
}

// followRefusal notes the transitions of a binding that is expected to be refused.
func (w *watcher) followRefusal(now time.Time, headless bool, t *track) {
	n := t.key.String()
	if t.ready == "True" && !t.everReady {
		t.everReady, t.firstReady = true, now
		w.say("%-32s became READY (%s), but its tenant's policy must refuse it with %s", n, t.reason, t.expect)
	}
	switch refused := t.refusedAsExpected(); {
	case refused && !t.refused:
		t.refused = true
		if headless {
			w.say("%-32s refused, as expected: Ready=False %s: %s", n, t.reason, t.message)
		}
	case refused && t.wasOff:
		t.wasOff = false
		if headless {
			w.say("%-32s refused again (%s)", n, t.reason)
		}
	case !refused && t.refused:
		t.offPolls++
		if !t.wasOff {
			t.wasOff = true
			w.say("%-32s NOT %s after it was refused: Ready=%s %s: %s", n, t.expect, orDash(t.ready), t.reason, t.message)
		}
	}
}

func (w *watcher) pollError(err error) {
	w.pollErrors++
	w.lastPollErr = err.Error()
}

// readEvents keeps the last few Events of the cluster (it holds only the demo's) for the live view.
func (w *watcher) readEvents(ctx context.Context) {
	var evs corev1.EventList
	if err := w.c.List(ctx, &evs); err != nil {
		return
	}
	sort.Slice(evs.Items, func(i, j int) bool { return eventTime(&evs.Items[i]).Before(eventTime(&evs.Items[j])) })
	w.events = w.events[:0]
	for i := max(0, len(evs.Items)-6); i < len(evs.Items); i++ {
		e := &evs.Items[i]
		obj := e.InvolvedObject.Name
		if e.InvolvedObject.Namespace != "" {
			obj = e.InvolvedObject.Namespace + "/" + obj
		}
		w.events = append(w.events, fmt.Sprintf("%s %-7s %-32s %-13s %s", eventTime(e).Local().Format("15:04:05"), e.Type,
			obj, e.Reason, truncate(redact(e.Message), 100)))
	}
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	}
	return e.CreationTimestamp.Time
}

// readyColumns are the READY and REASON cells of a binding.
func (t *track) readyColumns() (ready, reason string) {
	if !t.exists {
		return "(deleted)", "-"
	}
	reason = orDash(t.reason)
	if t.refusedAsExpected() {
		reason += " (expected)"
	}
	if t.syncFailing != "" {
		reason += " SyncFailing:" + t.syncFailing
	}
	return orDash(t.ready), reason
}

// render draws the live view.
func (w *watcher) render(now time.Time) {
	var b strings.Builder
	if w.tty {
		b.WriteString("\x1b[H\x1b[2J")
	}
	_, _ = fmt.Fprintf(&b, "idptoken-operator demo  %s  (Ctrl-C stops everything)\n", time.Since(w.started).Round(time.Second))
	_, _ = fmt.Fprintf(&b, "Auth0 (simulated) %s  IdP access tokens live %s; renewal when ~1/3 remains\n", w.sim.URL(), w.lifetime)
	var tenants []string
	for _, st := range w.samples.tenants {
		tenants = append(tenants, fmt.Sprintf("%s: %s", st, orDash(w.tenantReady[st])))
	}
	_, _ = fmt.Fprintf(&b, "Tenants: %s\n", strings.Join(tenants, "   "))
	st := w.sim.Stats()
	_, _ = fmt.Fprintf(&b, "IdP refreshes: %s  Management API requests: %d\n", idpCounts(st), st.APIRequests)
	if w.relogin != nil {
		_, _, _, _, status := w.relogin.snapshot()
		_, _ = fmt.Fprintf(&b, "Re-login step: %s\n", orDash(status))
	}
	b.WriteString("\n")

	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "BINDING\tTENANT\tREADY\tREASON\tTOKEN\tVALID\tEXPIRES IN\tNEXT REFRESH\tREFRESHES\tCONNECTION")
	var why []string
	for _, sb := range w.samples.bindings {
		t := w.tracks[sb.key]
		ready, reason := t.readyColumns()
		valid := "-"
		if t.fp != "" {
			valid = map[bool]string{true: "yes", false: "EXPIRED"}[t.valid]
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", sb.key, sb.tenant, ready, reason, orDash(t.fp), valid,
			until(now, t.expiresAt), until(now, t.nextRefresh), t.refreshes, orDash(t.idp))
		if t.exists && t.ready != "True" && t.message != "" {
			why = append(why, fmt.Sprintf("  %s: %s %s", sb.key, t.reason, t.message))
		}
	}
	_ = tw.Flush()
	if lines := w.restartLines(); len(lines) > 0 {
		b.WriteString("\nRollout restarts (" + RestartedAtAnnotation + "):\n")
		for _, l := range lines {
			b.WriteString("  " + strings.TrimPrefix(l, "restarts: ") + "\n")
		}
	}
	if len(why) > 0 {
		b.WriteString("\nNot Ready:\n" + strings.Join(why, "\n") + "\n")
	}
	if len(w.events) > 0 {
		b.WriteString("\nRecent events:\n")
		for _, e := range w.events {
			b.WriteString("  " + e + "\n")
		}
	}
	if w.pollErrors > 0 {
		_, _ = fmt.Fprintf(&b, "\n(%d API errors while polling; last: %s)\n", w.pollErrors, truncate(w.lastPollErr, 120))
	}
	b.WriteString("\n" + w.kubectlHelp)
	_, _ = fmt.Fprintf(&b, "Manager log: %s   TOKEN is the first 8 hex digits of the token's SHA-256.\n", relPath(w.managerLog))
	if !w.tty {
		b.WriteString("\n")
	}
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_, _ = io.WriteString(w.out, b.String())
}

func (w *watcher) progressLine() string {
	var parts []string
	for _, sb := range w.samples.bindings {
		t := w.tracks[sb.key]
		ready := orDash(t.ready)
		if t.ready != "True" && t.reason != "" {
			ready += "(" + t.reason + ")"
		}
		parts = append(parts, fmt.Sprintf("%s=%s/%d", sb.key, ready, t.refreshes))
	}
	restarts := 0
	for _, r := range w.restarts {
		restarts += len(r.restarts)
	}
	return fmt.Sprintf("progress (ready/refreshes): %s; restarts %d", strings.Join(parts, " "), restarts)
}

// printSummary prints the table of a finished run, its failures, and the last line.
func (w *watcher) printSummary(out io.Writer, sum *Summary, wall time.Duration) {
	_, _ = fmt.Fprintf(out, "\ndemo: summary after %s of checks (%s in all; IdP access tokens live %s)\n",
		time.Since(w.started).Round(time.Second), wall.Round(time.Second), w.lifetime)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  BINDING\tTENANT\tCONNECTION\tREADY\tFIRST READY\tREFRESHES\t(STATUS)\tEXPIRED\tNOT-READY POLLS\tTOKEN")
	for _, sb := range w.samples.bindings {
		t := w.tracks[sb.key]
		ready, reason := t.readyColumns()
		if t.ready != "True" {
			ready += " " + reason
		}
		first, polls := "never", t.notReadyPolls
		switch {
		case t.everReady:
			first = fmt.Sprintf("t+%ds", int(t.firstReady.Sub(w.started).Seconds()))
		case t.expect != "":
			first, polls = "never (expected)", t.offPolls
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", sb.key, sb.tenant, orDash(t.idp), ready, first,
			t.refreshes, t.statusRefr, len(t.expired), polls, orDash(t.fp))
	}
	_ = tw.Flush()
	for _, sb := range w.samples.bindings {
		if t := w.tracks[sb.key]; sb.tokenVault {
			_, _ = fmt.Fprintf(out, "  token vault: %s held an expired token %d time(s) before its successor arrived, longest %s "+
				"(seen at 1 s polls; tolerated up to %s, as Auth0 renews a vaulted token only once it has expired)\n",
				sb.key, t.gaps, fmtDur(t.maxGap), VaultGapTolerance)
		}
	}
	if l := w.reloginLine(); l != "" {
		_, _ = fmt.Fprintf(out, "  %s\n", l)
	}
	for _, l := range append(w.templateLines(), w.restartLines()...) {
		_, _ = fmt.Fprintf(out, "  %s\n", l)
	}
	st := w.sim.Stats()
	_, _ = fmt.Fprintf(out, "  simulator: IdP refreshes %s; invalid_grant %d; Management API requests %d (429: %d); M2M tokens %d\n",
		idpCounts(st), st.InvalidGrants, st.APIRequests, st.RateLimited, st.M2MTokensIssued)
	if w.pollErrors > 0 {
		_, _ = fmt.Fprintf(out, "  %d API errors while polling; last: %s\n", w.pollErrors, w.lastPollErr)
	}
	for _, f := range sum.Failures {
		_, _ = fmt.Fprintf(out, "  FAIL: %s\n", f)
	}
	noExpired := "no Secret held an expired token"
	if w.sawVaultGap() {
		noExpired += fmt.Sprintf(" for more than Token Vault's tolerated %s", VaultGapTolerance)
	}
	noExpired += w.reloginPassed() + w.consumePassed()
	switch {
	case sum.OK() && sum.Refused > 0:
		_, _ = fmt.Fprintf(out, "  PASS: every binding stayed Ready after its first sync, except the %d its tenant's policy refuses, "+
			"which stayed refused with no Secret; %s\n", sum.Refused, noExpired)
	case sum.OK():
		_, _ = fmt.Fprintf(out, "  PASS: every binding stayed Ready after its first sync and %s\n", noExpired)
	}
	_, _ = fmt.Fprintln(out, sum.LastLine())
}

// sawVaultGap tells whether a Token Vault binding's Secret was seen holding an expired token.
func (w *watcher) sawVaultGap() bool {
	for _, t := range w.tracks {
		if t.gaps > 0 || t.gapFP != "" {
			return true
		}
	}
	return false
}

// scanLeaks counts token values in the manager's log and in the Events of the cluster.
func (w *watcher) scanLeaks(ctx context.Context) int {
	n := 0
	if b, err := os.ReadFile(w.managerLog); err == nil {
		n += len(auth0sim.TokenPattern.FindAllIndex(b, -1))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var evs corev1.EventList
	if err := w.c.List(ctx, &evs); err == nil {
		for _, e := range evs.Items {
			n += len(auth0sim.TokenPattern.FindAllStringIndex(e.Message, -1))
		}
	}
	return n
}

// redact hides anything shaped like a simulator token.
func redact(s string) string { return auth0sim.TokenPattern.ReplaceAllString(s, "[REDACTED]") }

func conditionSummary(conds []metav1.Condition) string {
	c := meta.FindStatusCondition(conds, authv1alpha1.ConditionReady)
	if c == nil {
		return "-"
	}
	if string(c.Status) == "True" {
		return "Ready"
	}
	return fmt.Sprintf("%s (%s)", c.Status, c.Reason)
}

func idpCounts(st auth0sim.Stats) string {
	keys := make([]string, 0, len(st.IdPRefreshes))
	for k := range st.IdPRefreshes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, st.IdPRefreshes[k]))
	}
	if len(parts) == 0 {
		return "none yet"
	}
	return strings.Join(parts, " ")
}

func until(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := t.Sub(now).Round(time.Second)
	if d < 0 {
		return "-" + fmtDur(-d)
	}
	return fmtDur(d)
}

func since(now, t time.Time) string {
	if t.IsZero() {
		return "?"
	}
	return fmtDur(now.Sub(t).Round(time.Second))
}

func fmtDur(d time.Duration) string {
	if d >= time.Minute {
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%ds", int(d.Seconds()))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

func timeOf(t *metav1.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.Time
}
