package durability

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
	"github.com/idptoken/idptoken-operator/test/internal/procmgr"
)

const (
	// shardLabelKey is the label the two managers' --watch-label-selector split the bindings by.
	shardLabelKey = "sharding.idptoken.dev/shard"
	// shardsReplyDelay is how long the shards spec's IdP holds each refresh reply, as a real
	// IdP takes a few hundred milliseconds: a refresh is in flight at least this long.
	shardsReplyDelay = 250 * time.Millisecond
	// shardsPerShard bindings of the one identity in each shard.
	shardsPerShard = 3
	// shardsForceRounds times, every binding of both shards gets a new force-refresh value at
	// the same instant, shardsForceSpacing apart (more than the 30 s between renewals).
	shardsForceRounds  = 3
	shardsForceSpacing = 35 * time.Second
	// shardsForceWait bounds how long a round waits for every binding to act on its value.
	shardsForceWait = 90 * time.Second
)

var _ = Describe("Two managers of disjoint shards serving one identity", Serial, func() {
	It("refresh its single-use refresh token one at a time: no invalid_grant, no replay, one refresh per renewal", func() {
		By("the suite's manager serves shard a only, a second manager shard b")
		// Registered first, so it runs last: the suite's normal manager for the next specs.
		DeferCleanup(func() {
			mgr.Stop(30 * time.Second)
			startManager()
		})
		mgr.Stop(30 * time.Second)
		var err error
		mgr, err = procmgr.Start(managerBin, kubeconfig, managerLog,
			"--cluster-resource-namespace="+operatorNS, "--watch-label-selector="+shardLabelKey+"=a")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("shard a manager started, pid %d (log %s)\n", mgr.Pid(), managerLog)
		// Leader election is off by default (cmd/main.go), and each shard would have a lease of its
		// own anyway; procmgr turns metrics and probes off, so the two bind no port.
		shardBLog := filepath.Join(filepath.Dir(managerLog), "manager-shard-b.log")
		shardB, err := procmgr.Start(managerBin, kubeconfig, shardBLog,
			"--cluster-resource-namespace="+operatorNS, "--watch-label-selector="+shardLabelKey+"=b")
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("shard b manager started, pid %d (log %s)\n", shardB.Pid(), shardBLog)
		DeferCleanup(func() {
			if CurrentSpecReport().Failed() {
				printFileTail("shard b manager", shardBLog, 80)
			}
			shardB.Stop(30 * time.Second)
		})

		const idp = shardsIdP
		conn := addIdP(idp, lifetime, shardsReplyDelay)
		uid := addUser("shards-1", idp, conn)
		ns := newNamespace("shards-")
		newTenant(ns, "prod")
		ctx, stop := context.WithCancel(suiteCtx)
		DeferCleanup(stop)
		grants := watchGrants(ctx, idp)
		base := shardsSnapshot(grants) // before the first binding: every grant of the identity counts

		var all []bindingRef
		for _, shard := range []string{"a", "b"} {
			for i := range shardsPerShard {
				ref := bindingRef{ns, fmt.Sprintf("%s%d", shard, i)}
				newShardBinding(ref, shard, "prod", uid, conn)
				all = append(all, ref)
			}
		}
		waitServed(all...)
		Expect(shardB.Exited()).NotTo(HaveOccurred(), "shard b's manager")
		Expect(mgr.Exited()).NotTo(HaveOccurred(), "shard a's manager")

		By("phase 1: two lifetimes of renewals alone; both shards' bindings wake at the lineage's renew_at")
		p1 := shardsSnapshot(grants)
		lapses1 := watchTokens(all, time.Now().Add(2*lifetime))
		p2 := shardsSnapshot(grants)

		By(fmt.Sprintf("phase 2: %d rounds of a force-refresh on all %d bindings of both shards at the same instant, %v apart", shardsForceRounds, len(all), shardsForceSpacing))
		notActed := 0
		for r := range shardsForceRounds {
			roundStart := time.Now()
			value := fmt.Sprintf("shards-%d-%d", GinkgoRandomSeed(), r)
			forceAtOnce(all, value)
			pending := waitForceActed(all, value, shardsForceWait)
			notActed += len(pending)
			sofar := shardsSnapshot(grants).minus(base)
			GinkgoWriter.Printf("force round %d: acted on by %d of %d bindings after %v (pending: %v); so far refreshes %d, invalid_grant %d, reuse %d, overlapping %d\n",
				r, len(all)-len(pending), len(all), time.Since(roundStart).Round(time.Millisecond), pending,
				sofar.refreshes, sofar.invalidGrants, sofar.reuse(), sofar.grants.overlapping)
			if r < shardsForceRounds-1 {
				time.Sleep(time.Until(roundStart.Add(shardsForceSpacing)))
			}
		}
		p3 := shardsSnapshot(grants)

		By("the end: every binding served, the lineage whole, no grant in flight")
		servedErr := InterceptGomegaFailure(func() {
			Eventually(func(g Gomega) {
				expectServed(g, all...)
				state := stateOf(g, ns, uid)
				g.Expect(sim.RefreshTokenLive(string(state.Data["refresh_token"]))).To(BeTrue(), "the state holds the IdP's live refresh token")
				g.Expect(sim.LiveRefreshTokens(idp)).To(Equal(1), "the lineage did not fork")
			}).WithTimeout(90 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
		})
		// No grant in flight: every grant that arrived was committed, abandoned or refused (a 400
		// in the request log, written after the reply).
		settled := InterceptGomegaFailure(func() {
			Eventually(func() int {
				d := shardsSnapshot(grants).minus(base)
				return d.reuse() - d.idpRefused
			}).WithTimeout(20 * time.Second).WithPolling(100 * time.Millisecond).Should(BeZero())
		}) == nil
		end := shardsSnapshot(grants)

		total, phase1, phase2 := end.minus(base), p2.minus(p1), p3.minus(p2)
		bound1 := int(phase1.at/(30*time.Second)) + 1
		bound2 := len(all)*shardsForceRounds + int(phase2.at/(30*time.Second)) + 1
		var table strings.Builder
		fmt.Fprintf(&table, "\none identity (strict rotation, access tokens of %v, IdP replies held %v), %d bindings in shard a (suite's manager) and %d in shard b (second manager)\n",
			lifetime, shardsReplyDelay, shardsPerShard, shardsPerShard)
		fmt.Fprintf(&table, "%-44s | %8s | %7s | %9s | %13s | %10s | %5s | %9s | %11s\n",
			"phase", "duration", "commits", "refreshes", "invalid_grant", "IdP 400s", "reuse", "abandoned", "overlapping")
		row := func(name string, c shardsCounters) {
			fmt.Fprintf(&table, "%-44s | %8v | %7d | %9d | %13d | %10d | %5d | %9d | %11d\n", name, c.at.Round(time.Second),
				c.commits, c.refreshes, c.invalidGrants, c.idpRefused, c.reuse(), c.grants.abandoned, c.grants.overlapping)
		}
		row("set-up (first reads)", p1.minus(base))
		row(fmt.Sprintf("1: renewals alone (≤ %d refreshes)", bound1), phase1)
		row(fmt.Sprintf("2: %d force rounds × %d bindings (≤ %d)", shardsForceRounds, len(all), bound2), phase2)
		row("settling", end.minus(p3))
		row("total", total)
		fmt.Fprintf(&table, "renewals alone: %.2f refreshes per 30 s; token lapses seen in phase 1: %d; force values not acted on within %v: %d; no grant in flight at the end: %t\n",
			float64(phase1.refreshes)/(float64(phase1.at)/float64(30*time.Second)), lapses1, shardsForceWait, notActed, settled)
		fmt.Fprintf(&table, "served at the end: %v\n", errOrOK(servedErr))
		fmt.Fprintf(&table, "(invalid_grant: the simulator's invalid_grant answers; IdP 400s: its request log at /idp/%s/token; reuse: grants that arrived at the IdP "+
			"and were neither committed nor abandoned, i.e. refused: each presented a spent refresh token; overlapping: grants that arrived less than %v "+
			"after the previous one, i.e. two refreshes of the identity in flight at once)\n", idp, shardsReplyDelay)
		GinkgoWriter.Print(table.String())
		AddReportEntry("two shards, one identity", table.String())

		Expect(total.invalidGrants).To(BeZero(), "invalid_grant answers: a manager sent a refresh token another had spent")
		Expect(total.reuse()).To(BeZero(), "refresh grants that replayed a spent refresh token")
		Expect(total.grants.overlapping).To(BeZero(), "two refreshes of the identity in flight at once")
		Expect(servedErr).NotTo(HaveOccurred(), "every binding Ready with a valid token, the lineage whole")
		Expect(total.commits).To(Equal(total.refreshes), "the IdP's commit events and its refresh count agree")
		Expect(phase1.refreshes).To(BeNumerically(">=", 1), "tokens stayed valid for two lifetimes without a refresh")
		Expect(phase1.refreshes).To(BeNumerically("<=", bound1), "renewals alone: more than one refresh per 30 s")
		Expect(phase2.refreshes).To(BeNumerically(">=", shardsForceRounds), "every force round refreshed")
		Expect(phase2.refreshes).To(BeNumerically("<=", bound2), "force rounds: more than one refresh per forced binding and renewal")
		Expect(notActed).To(BeZero(), "force-refresh values not acted on within %v", shardsForceWait)
		Expect(shardB.Exited()).NotTo(HaveOccurred(), "shard b's manager")
		Expect(mgr.Exited()).NotTo(HaveOccurred(), "shard a's manager")
	})
})

// newShardBinding is newBinding with the binding labelled for shard.
func newShardBinding(ref bindingRef, shard, tenant, userID, connection string) {
	GinkgoHelper()
	DeferCleanup(func() {
		Expect(client.IgnoreNotFound(k8s.Delete(suiteCtx, &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: ref.name, Namespace: ref.ns}}))).To(Succeed())
	})
	Expect(k8s.Create(suiteCtx, &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: ref.name, Namespace: ref.ns, Labels: map[string]string{shardLabelKey: shard}},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindNamespaced, Name: tenant},
			User:      &authv1alpha1.UserSource{ID: userID, Connection: connection},
			Secret:    authv1alpha1.SecretTarget{Name: ref.name + "-token"},
		},
	})).To(Succeed())
}

// forceAtOnce sets the force-refresh annotation of every binding to value, all at the same
// instant: one merge patch each, sent together.
func forceAtOnce(refs []bindingRef, value string) {
	GinkgoHelper()
	patch := client.RawPatch(types.MergePatchType,
		fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, authv1alpha1.AnnotationForceRefresh, value))
	gate := make(chan struct{})
	errs := make([]error, len(refs))
	var wg sync.WaitGroup
	for i, ref := range refs {
		wg.Go(func() {
			<-gate
			errs[i] = k8s.Patch(suiteCtx, &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{Name: ref.name, Namespace: ref.ns}}, patch)
		})
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		Expect(err).NotTo(HaveOccurred(), "force-refresh of %s", refs[i])
	}
}

// waitForceActed waits up to timeout until every binding's status says it acted on value, and
// returns those that did not.
func waitForceActed(refs []bindingRef, value string, timeout time.Duration) (pending []bindingRef) {
	deadline := time.Now().Add(timeout)
	for {
		pending = pending[:0]
		for _, ref := range refs {
			b := &authv1alpha1.IdPTokenBinding{}
			if err := k8s.Get(suiteCtx, ref.key(), b); err != nil || b.Status.LastForceRefresh != value {
				pending = append(pending, ref)
			}
		}
		if len(pending) == 0 || time.Now().After(deadline) {
			return pending
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// watchTokens checks every binding's Secret once a second until the deadline and returns how
// many times one did not hold a valid token.
func watchTokens(refs []bindingRef, until time.Time) (lapses int) {
	for time.Now().Before(until) {
		for _, ref := range refs {
			if err := secretTokenValid(ref); err != nil {
				lapses++
				GinkgoWriter.Printf("%s: %v\n", ref, err)
			}
		}
		time.Sleep(time.Second)
	}
	return lapses
}

// grantTally counts one IdP's refresh grants from its events.
type grantTally struct {
	mu     sync.Mutex
	counts grantCounts
	last   time.Time // the last arrival
}

type grantCounts struct {
	arrived, committed, abandoned int
	// overlapping counts grants that arrived less than shardsReplyDelay after the previous one:
	// the IdP holds every valid grant that long before it answers, so the two were in flight at
	// once.
	overlapping int
}

// watchGrants counts the IdP's refresh grants until ctx ends.
func watchGrants(ctx context.Context, idp string) *grantTally {
	events, unsubscribe := idpHub.subscribe(idp)
	t := &grantTally{}
	go func() {
		defer GinkgoRecover()
		defer unsubscribe()
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-events:
				t.add(e)
			}
		}
	}()
	return t
}

func (t *grantTally) add(e auth0sim.IdPEvent) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch e.Kind {
	case auth0sim.IdPRefreshArrived:
		if !t.last.IsZero() && e.At.Sub(t.last) < shardsReplyDelay {
			t.counts.overlapping++
		}
		t.counts.arrived++
		t.last = e.At
	case auth0sim.IdPRefreshCommitted:
		t.counts.committed++
	case auth0sim.IdPRefreshAbandoned:
		t.counts.abandoned++
	}
}

func (t *grantTally) snapshot() grantCounts {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.counts
}

// shardsCounters is what the simulator counted for one IdP up to a moment (or, as a difference,
// between two).
type shardsCounters struct {
	at            time.Duration // since the zero time; as a difference, the duration
	commits       int           // the IdP's commit events (eventHub, never lost)
	refreshes     int           // Stats.IdPRefreshes of the IdP
	invalidGrants int           // Stats.InvalidGrants (every IdP: only this spec's is in use)
	idpRefused    int           // 400 answers at the IdP's token endpoint, from the request log
	grants        grantCounts
}

// shardsIdP is the simulated IdP of the shards spec, its own so that its counts are the spec's.
const shardsIdP = "shards"

func shardsSnapshot(grants *grantTally) shardsCounters {
	const idp = shardsIdP
	st := sim.Stats()
	return shardsCounters{
		at:            time.Duration(time.Now().UnixNano()),
		commits:       len(idpHub.commitsOf(idp)),
		refreshes:     st.IdPRefreshes[idp],
		invalidGrants: st.InvalidGrants,
		idpRefused:    requests.snapshot()["/idp/"+idp+"/token 400"],
		grants:        grants.snapshot(),
	}
}

// reuse is the grants the IdP refused: they arrived (the client authenticated) and were neither
// committed nor abandoned. The identity's refresh tokens are all this IdP's and none is revoked,
// so each refused grant presented a spent one.
func (c shardsCounters) reuse() int {
	return c.grants.arrived - c.grants.committed - c.grants.abandoned
}

func (c shardsCounters) minus(o shardsCounters) shardsCounters {
	return shardsCounters{
		at:            c.at - o.at,
		commits:       c.commits - o.commits,
		refreshes:     c.refreshes - o.refreshes,
		invalidGrants: c.invalidGrants - o.invalidGrants,
		idpRefused:    c.idpRefused - o.idpRefused,
		grants: grantCounts{
			arrived:     c.grants.arrived - o.grants.arrived,
			committed:   c.grants.committed - o.grants.committed,
			abandoned:   c.grants.abandoned - o.grants.abandoned,
			overlapping: c.grants.overlapping - o.grants.overlapping,
		},
	}
}

func errOrOK(err error) string {
	if err == nil {
		return "yes"
	}
	return "NO: " + err.Error()
}

// printFileTail shows the last n lines of a manager's log but its start-up chatter.
func printFileTail(what, path string, n int) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if l := sc.Text(); !strings.Contains(l, `"msg":"Starting `) {
			lines = append(lines, l)
		}
	}
	GinkgoWriter.Printf("---- last %d lines of the %s log (but start-up) ----\n%s\n", n, what, strings.Join(lines[max(0, len(lines)-n):], "\n"))
}
