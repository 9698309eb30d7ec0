package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// spread is a sample of latencies: how many, the median, the 99th percentile and the largest.
// Percentiles are nearest-rank: the smallest value with at least p of the sample at or below it.
type spread struct {
	n             int
	p50, p99, max time.Duration
}

func spreadOf(ds []time.Duration) spread {
	if len(ds) == 0 {
		return spread{}
	}
	s := slices.Sorted(slices.Values(ds))
	rank := func(p int) time.Duration { return s[max(0, (len(s)*p+99)/100-1)] }
	return spread{n: len(s), p50: rank(50), p99: rank(99), max: s[len(s)-1]}
}

func (s spread) String() string {
	if s.n == 0 {
		return "no sample"
	}
	return fmt.Sprintf("p50 %s / p99 %s / max %s", secs(s.p50), secs(s.p99), secs(s.max))
}

// verdict is "met" when ok, else "missed".
func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

// readsDelta is, per user, the Auth0 user reads of after minus those of before.
func readsDelta(before, after map[string]int, users []string) []int {
	out := make([]int, len(users))
	for i, u := range users {
		out[i] = after[u] - before[u]
	}
	return out
}

// histogram says how many users made each number of reads, fewest reads first: "2 reads: 19
// users, 3 reads: 1 user".
func histogram(reads []int) string {
	by := map[int]int{}
	for _, n := range reads {
		by[n]++
	}
	parts := make([]string, 0, len(by))
	for _, n := range slices.Sorted(maps.Keys(by)) {
		parts = append(parts, fmt.Sprintf("%d %s: %d %s", n, plural(n, "read", "reads"), by[n], plural(by[n], "user", "users")))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func sum(ns []int) int {
	t := 0
	for _, n := range ns {
		t += n
	}
	return t
}

// schedule returns n instants spread evenly over span from start: the i-th at start + i·span/n.
func schedule(start time.Time, n int, span time.Duration) []time.Time {
	out := make([]time.Time, n)
	for i := range out {
		out[i] = start.Add(time.Duration(int64(span) * int64(i) / int64(max(1, n))))
	}
	return out
}

// writeCount sums what a watch counted of writes between two snapshots of per-object counts.
type writeCount struct {
	total, objects, most int // writes, objects written, most writes to one object
}

func writesBetween(before, after map[string]int) writeCount {
	var w writeCount
	for name, n := range after {
		if d := n - before[name]; d > 0 {
			w.total += d
			w.objects++
			w.most = max(w.most, d)
		}
	}
	return w
}

func (w writeCount) String() string {
	if w.total == 0 {
		return "0"
	}
	return fmt.Sprintf("%s (to %d Secrets, at most %s to one)", thousands(w.total), w.objects, thousands(w.most))
}

// staleUsers counts the Secrets (by name) whose token expires before the expiry of their user's
// latest login token: minted before that login (or missing).
func staleUsers(current, latest map[string]time.Time) int {
	n := 0
	for name, exp := range latest {
		if got, ok := current[name]; !ok || got.Before(exp) {
			n++
		}
	}
	return n
}

// firstRenewal is the first sighting at or after since of a token expiring no earlier than
// expiry.
func firstRenewal(seen []sighting, since, expiry time.Time) (time.Time, bool) {
	for _, s := range seen {
		if !s.at.Before(since) && !s.expiry.Before(expiry) {
			return s.at, true
		}
	}
	return time.Time{}, false
}

// countOver counts the durations above limit.
func countOver(ds []time.Duration, limit time.Duration) int {
	n := 0
	for _, d := range ds {
		if d > limit {
			n++
		}
	}
	return n
}
