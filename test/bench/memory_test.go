package bench_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/cache"
)

// BenchmarkUnrelatedSecrets: the DESIGN says unrelated Secrets in the cluster cost nothing.
// A manager syncs 50 bindings; then 2000 Secrets of 1 KiB without the operator's labels are
// created (half in the bindings' namespace, half in another) and the manager's heap is
// compared before and after. For scale, the same process then caches every Secret the way an
// unfiltered informer would, and the cost of that is printed too.
func BenchmarkUnrelatedSecrets(b *testing.B) {
	assetsOrSkip(b)
	for range b.N {
		unrelatedSecrets(b)
	}
}

func unrelatedSecrets(b *testing.B) {
	const (
		bindings = 50
		users    = 10
		secrets  = 2000
		size     = 1024
	)
	b.StopTimer()
	h := newHarness(b, harnessOptions{idps: []idpConn{googleLike}, lifetime: time.Hour})
	defer h.close()
	h.addUsers(users)
	h.startManager(4)
	h.createTenant()
	start := time.Now()
	h.createBindings(bindings, users, interleaved)
	if elapsed, r := h.waitAllReady(bindings, 60*time.Second, start); r.ready != bindings {
		b.Fatalf("%d of %d bindings Ready after %s: %v\n%s", r.ready, bindings, elapsed.Round(time.Second), r.notReadyReason, mgrLogs.String())
	}
	time.Sleep(2 * time.Second) // let the status writes' watch events settle
	without := sampleMem()

	b.StartTimer()
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "unrelated-"}}
	must(b, h.k8s.Create(h.ctx, other), "creating the second namespace")
	g, ctx := errgroup.WithContext(h.ctx)
	g.SetLimit(8)
	for i := range secrets {
		ns := h.ns
		if i%2 == 1 {
			ns = other.Name
		}
		data := make([]byte, size)
		_, _ = rand.Read(data)
		s := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("unrelated-%05d", i), Namespace: ns,
				Labels: map[string]string{"app": "someone-else"}},
			Data: map[string][]byte{"payload": data},
		}
		g.Go(func() error { return h.k8s.Create(ctx, s) })
	}
	must(b, g.Wait(), "creating the unrelated Secrets")
	b.StopTimer()
	time.Sleep(5 * time.Second) // any watch event would have arrived by now
	with := sampleMem()

	// For scale: what caching every Secret (no label selector) costs in this process.
	cacheCost, cached := cacheAllSecrets(b, h)

	growth := deltaMiB(with.heapInuse, without.heapInuse)
	b.ReportMetric(mib(without.heapInuse), "MiB-heap-without")
	b.ReportMetric(mib(with.heapInuse), "MiB-heap-with")
	b.ReportMetric(growth, "MiB-heap-growth")
	b.ReportMetric(cacheCost, "MiB-if-all-cached")
	b.Logf("UnrelatedSecrets: %d bindings synced, then %d unrelated Secrets of %d B (%.1f MiB of data) created",
		bindings, secrets, size, float64(secrets*size)/(1<<20))
	b.Logf("  heap in use after GC: %.1f MiB without, %.1f MiB with them (%+.2f MiB; heap alloc %+.2f MiB); Sys %.1f → %.1f MiB; RSS %.1f → %.1f MiB",
		mib(without.heapInuse), mib(with.heapInuse), growth, deltaMiB(with.heapAlloc, without.heapAlloc),
		mib(without.sys), mib(with.sys), mib(without.rss), mib(with.rss))
	b.Logf("  for scale: an informer caching all %d Secrets in this process would add %.1f MiB of heap in use", cached, cacheCost)
}

// cacheAllSecrets starts a cache of every Secret, waits for it to sync, and returns the heap it
// added and how many Secrets it holds. The cache is stopped before returning.
func cacheAllSecrets(b *testing.B, h *harness) (float64, int) {
	before := sampleMem()
	c, err := cache.New(h.cfg, cache.Options{Scheme: scheme})
	if err != nil {
		b.Fatalf("building a cache: %v", err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	defer func() { cancel(); <-done }()
	if _, err := c.GetInformer(ctx, &corev1.Secret{}); err != nil {
		b.Fatalf("getting a Secret informer: %v", err)
	}
	go func() {
		defer close(done)
		_ = c.Start(ctx)
	}()
	syncCtx, syncCancel := context.WithTimeout(ctx, time.Minute)
	defer syncCancel()
	if !c.WaitForCacheSync(syncCtx) {
		b.Fatalf("the Secret cache did not sync")
	}
	n := countCached(ctx, b, c) // the list it reads (deep copies) is garbage before the sample
	after := sampleMem()
	return deltaMiB(after.heapInuse, before.heapInuse), n
}

func countCached(ctx context.Context, b *testing.B, c cache.Cache) int {
	list := &corev1.SecretList{}
	if err := c.List(ctx, list); err != nil {
		b.Fatalf("listing cached Secrets: %v", err)
	}
	return len(list.Items)
}
