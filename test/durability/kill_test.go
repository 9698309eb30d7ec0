package durability

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// The phases of a refresh at which a round kills the manager.
const (
	phaseSending  = "a: reading, locking, sending"
	phaseAtIdP    = "b: reply held by the IdP"
	phaseWritings = "c: state written, targets pending"
)

const (
	// killRounds: each round waits out the renewal spacing (30 s) before its force-refresh,
	// which the operator would otherwise queue until then.
	killRounds = 10
	// replyDelay is how long the kill spec's IdP holds each refresh reply (phase b).
	replyDelay = 500 * time.Millisecond
	// heldMargin keeps phase b's kills this far before the end of the hold, so that the IdP sees
	// the connection close before it would commit.
	heldMargin = 150 * time.Millisecond
)

// round is what one kill round did and measured.
type round struct {
	phase      string
	offset     time.Duration // after the phase's start
	abandoned  int           // refreshes the IdP did not commit because the client was gone
	pending    bool          // the killed manager had not yet recorded the force-refresh as done
	stale      int           // target Secrets that did not hold the new token yet at the kill
	recovery   time.Duration // from the kill to the lineage healthy again
	refreshes  int
	newInvalid int
}

var _ = Describe("A manager killed with SIGKILL during refreshes", func() {
	It("never loses the lineage of an identity on a strict-rotation IdP, 10 times at random points", func() {
		seed := killSeed()
		rng := rand.New(rand.NewPCG(seed, 0))
		GinkgoWriter.Printf("kill seed %d (set DURABILITY_KILL_SEED to replay)\n", seed)
		AddReportEntry("kill seed", seed)

		const idp = "lineage-kill"
		// A lifetime far beyond the spec, so that every refresh is one the spec asked for.
		conn := addIdP(idp, time.Hour, replyDelay)
		uid := addUser("kill-1", idp, conn)
		nsA, nsB := newNamespace("kill-a-"), newNamespace("kill-b-")
		newClusterTenant("kill", uid, conn, nsA, nsB)
		bindings := []bindingRef{{nsA, "one"}, {nsA, "two"}, {nsB, "three"}}
		for _, b := range bindings {
			newBinding(b, authv1alpha1.TenantKindCluster, "kill", uid, conn)
		}
		waitServed(bindings...)
		var stateName string
		Eventually(func(g Gomega) { stateName = stateOf(g, operatorNS, uid).Name }).WithTimeout(30 * time.Second).Should(Succeed())
		ctx, stop := context.WithCancel(suiteCtx)
		DeferCleanup(stop)
		states := watchState(ctx, operatorNS, stateName)
		base := sim.Stats()

		var rounds []round
		for i := range killRounds {
			r := round{}
			before := sim.Stats()
			value := fmt.Sprintf("kill-%d-%d", seed, i)
			target := bindings[rng.IntN(len(bindings))]
			waitOutSpacing(uid)
			old := targetTokens(bindings)
			events, unsubscribe := idpHub.subscribe(idp)
			switch rng.IntN(3) {
			case 0:
				r.phase, r.offset = phaseSending, time.Duration(rng.Int64N(int64(300*time.Millisecond)))
				forceRefresh(target, value)
				time.Sleep(r.offset)
			case 1:
				r.phase, r.offset = phaseAtIdP, time.Duration(rng.Int64N(int64(replyDelay-heldMargin)))
				forceRefresh(target, value)
				Eventually(events).WithTimeout(time.Minute).Should(Receive(HaveField("Kind", auth0sim.IdPRefreshArrived)),
					"round %d: the refresh never reached the IdP", i)
				time.Sleep(r.offset)
			case 2:
				// The target writes follow the state write within tens of milliseconds: the
				// offset is cubed, so that most kills land among them, none later than 150 ms.
				u := rng.Float64()
				r.phase, r.offset = phaseWritings, time.Duration(u*u*u*float64(150*time.Millisecond))
				asked := time.Now()
				forceRefresh(target, value)
				Eventually(func() bool { _, ok := states.changeAfter(asked); return ok }).WithTimeout(time.Minute).WithPolling(2*time.Millisecond).
					Should(BeTrue(), "round %d: the state Secret never changed", i)
				time.Sleep(r.offset)
			}
			unsubscribe()
			killed := time.Now()
			killManager()
			r.pending = getBinding(target).Status.LastForceRefresh != value
			for ref, tok := range targetTokens(bindings) {
				if tok == old[ref] {
					r.stale++
				}
			}
			startManager()

			Eventually(func(g Gomega) {
				if n := sim.Stats().InvalidGrants - before.InvalidGrants; n > 0 {
					StopTrying(fmt.Sprintf("the IdP refused %d spent or unknown refresh tokens: the lineage is lost", n)).Now()
				}
				expectServed(g, bindings...)
				b := &authv1alpha1.IdPTokenBinding{}
				g.Expect(k8s.Get(suiteCtx, target.key(), b)).To(Succeed())
				g.Expect(b.Status.LastForceRefresh).To(Equal(value), "binding %s acted on its force-refresh", target)
				state := stateOf(g, operatorNS, uid)
				g.Expect(sim.RefreshTokenLive(string(state.Data["refresh_token"]))).To(BeTrue(), "the state holds the IdP's live refresh token")
				g.Expect(sim.LiveRefreshTokens(idp)).To(Equal(1), "the lineage did not fork")
			}).WithTimeout(90*time.Second).WithPolling(100*time.Millisecond).Should(Succeed(), "round %d (%s, +%v)", i, r.phase, r.offset)
			r.recovery = time.Since(killed)
			after := sim.Stats()
			r.abandoned = after.IdPRefreshesAbandoned - before.IdPRefreshesAbandoned
			r.refreshes = after.IdPRefreshes[idp] - before.IdPRefreshes[idp]
			r.newInvalid = after.InvalidGrants - before.InvalidGrants
			rounds = append(rounds, r)
			GinkgoWriter.Printf("round %2d  %-34s +%-6v  status pending at the kill %-5t  targets pending %d  healthy %6v after the kill  refreshes %d  abandoned %d  invalid_grant %d\n",
				i, r.phase, r.offset.Round(time.Millisecond), r.pending, r.stale, r.recovery.Round(time.Millisecond), r.refreshes, r.abandoned, r.newInvalid)
			Expect(r.newInvalid).To(BeZero(), "round %d (%s): a spent refresh token was sent", i, r.phase)
		}

		end := sim.Stats()
		windows, unpersisted := commitToState(idpHub.commitsOf(idp), states)
		report := killReport(rounds, windows, unpersisted)
		GinkgoWriter.Print(report)
		AddReportEntry("kill rounds", report)
		Expect(end.InvalidGrants - base.InvalidGrants).To(BeZero())
		Expect(end.IdPRefreshes[idp]-base.IdPRefreshes[idp]).To(BeNumerically(">=", killRounds), "every round refreshed at least once")
	})
})

// waitOutSpacing waits until 30 s after the identity's last refresh: the operator acts on a
// force-refresh at most once per renewal spacing of the identity, and queues one that comes
// earlier, so a round that did not wait would kill the manager before its refresh started.
func waitOutSpacing(uid string) {
	GinkgoHelper()
	var last time.Time
	Eventually(func(g Gomega) {
		state := stateOf(g, operatorNS, uid)
		last, _ = time.Parse(time.RFC3339, string(state.Data["last_refresh_at"]))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	if wait := time.Until(last.Add(expiry.MinRenewalSpacing + time.Second)); wait > 0 {
		time.Sleep(wait)
	}
}

// targetTokens returns the access token in each binding's Secret; only ever compared.
func targetTokens(refs []bindingRef) map[bindingRef]string {
	GinkgoHelper()
	out := map[bindingRef]string{}
	for _, ref := range refs {
		s := &corev1.Secret{}
		Expect(k8s.Get(suiteCtx, ref.secretKey(), s)).To(Succeed())
		out[ref] = string(s.Data[authv1alpha1.SecretKeyAccessToken])
	}
	return out
}

// killSeed is DURABILITY_KILL_SEED, else Ginkgo's random seed.
func killSeed() uint64 {
	if s := os.Getenv("DURABILITY_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		Expect(err).NotTo(HaveOccurred(), "DURABILITY_KILL_SEED")
		return v
	}
	return uint64(GinkgoRandomSeed())
}

// commitToState pairs every refresh the IdP committed with the first change of the state Secret
// after it: how long a rotated refresh token existed only in the manager's memory — the window
// in which a kill would lose the lineage, which no IdP commit model can close.
func commitToState(commits []time.Time, states *stateWatch) (windows []time.Duration, unpersisted int) {
	for _, c := range commits {
		if s, ok := states.changeAfter(c); ok {
			windows = append(windows, s.Sub(c))
		} else {
			unpersisted++
		}
	}
	slices.Sort(windows)
	return windows, unpersisted
}

func killReport(rounds []round, windows []time.Duration, unpersisted int) string {
	var b strings.Builder
	perPhase, pending, stale := map[string][]time.Duration{}, map[string]int{}, map[string]int{}
	abandoned := 0
	for _, r := range rounds {
		perPhase[r.phase] = append(perPhase[r.phase], r.recovery)
		abandoned += r.abandoned
		if r.pending {
			pending[r.phase]++
		}
		if r.stale > 0 {
			stale[r.phase]++
		}
	}
	fmt.Fprintf(&b, "\n%-34s | rounds | killed with a target Secret not yet written | with the status not yet written | healthy after the kill (min / median / max)\n", "phase")
	for _, p := range []string{phaseSending, phaseAtIdP, phaseWritings} {
		fmt.Fprintf(&b, "%-34s | %6d | %43d | %32d | %s\n", p, len(perPhase[p]), stale[p], pending[p], spread(perPhase[p]))
	}
	fmt.Fprintf(&b, "refreshes abandoned by the IdP (client killed while the reply was held): %d\n", abandoned)
	fmt.Fprintf(&b, "unavoidable window, IdP commit -> state Secret change visible, over %d refreshes: %s; commits never persisted: %d\n",
		len(windows), spread(windows), unpersisted)
	return b.String()
}

// spread is "min / median / max" of durations.
func spread(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	s := slices.Clone(d)
	slices.Sort(s)
	r := func(x time.Duration) time.Duration { return x.Round(time.Millisecond) }
	return fmt.Sprintf("%v / %v / %v", r(s[0]), r(s[len(s)/2]), r(s[len(s)-1]))
}
