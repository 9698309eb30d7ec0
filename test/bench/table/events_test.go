package main

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func ms(ns ...int) []time.Duration {
	out := make([]time.Duration, len(ns))
	for i, n := range ns {
		out[i] = time.Duration(n) * time.Millisecond
	}
	return out
}

func TestSpreadOfIsNearestRank(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	fifty := make([]int, 50)
	for i := range fifty {
		fifty[i] = i + 1
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want spread
	}{
		{"none", nil, spread{}},
		{"one", ms(7), spread{n: 1, p50: 7 * time.Millisecond, p99: 7 * time.Millisecond, max: 7 * time.Millisecond}},
		{"two", ms(9, 3), spread{n: 2, p50: 3 * time.Millisecond, p99: 9 * time.Millisecond, max: 9 * time.Millisecond}},
		{"1..100 reversed", ms(hundred...), spread{n: 100, p50: 50 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond}},
		{"1..50: p99 is the largest", ms(fifty...), spread{n: 50, p50: 25 * time.Millisecond, p99: 50 * time.Millisecond, max: 50 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := spreadOf(tc.in); got != tc.want {
				t.Errorf("spreadOf = n %d, p50 %v, p99 %v, max %v; want n %d, p50 %v, p99 %v, max %v",
					got.n, got.p50, got.p99, got.max, tc.want.n, tc.want.p50, tc.want.p99, tc.want.max)
			}
		})
	}
	if got := (spread{}).String(); got != "no sample" {
		t.Errorf("empty spread prints %q", got)
	}
	if got := spreadOf(ms(100, 200, 3000)).String(); got != "p50 0.20 s / p99 3.00 s / max 3.00 s" {
		t.Errorf("spread prints %q", got)
	}
}

func TestReadsAndTheirHistogram(t *testing.T) {
	before := map[string]int{"a": 3, "b": 1}
	after := map[string]int{"a": 5, "b": 2, "c": 2, "other": 9}
	reads := readsDelta(before, after, []string{"a", "b", "c", "d"})
	if want := []int{2, 1, 2, 0}; !slices.Equal(reads, want) {
		t.Fatalf("readsDelta = %v, want %v", reads, want)
	}
	for _, tc := range []struct {
		in        []int
		hist      string
		max, want int
	}{
		{nil, "", 0, 0},
		{[]int{1}, "1 read: 1 user", 1, 1},
		{reads, "0 reads: 1 user, 1 read: 1 user, 2 reads: 2 users", 2, 5},
	} {
		if got := histogram(tc.in); got != tc.hist {
			t.Errorf("histogram(%v) = %q, want %q", tc.in, got, tc.hist)
		}
		if got := maxReads(tc.in); got != tc.max {
			t.Errorf("maxReads(%v) = %d, want %d", tc.in, got, tc.max)
		}
		if got := sum(tc.in); got != tc.want {
			t.Errorf("sum(%v) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestScheduleSpreadsEvenlyFromStart(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		n    int
		span time.Duration
		want []time.Duration // offsets from start
	}{
		{0, time.Second, nil},
		{1, time.Second, ms(0)},
		{4, time.Second, ms(0, 250, 500, 750)},
		{3, 0, ms(0, 0, 0)},
	} {
		got := schedule(start, tc.n, tc.span)
		if len(got) != len(tc.want) {
			t.Fatalf("schedule(%d, %s) has %d instants, want %d", tc.n, tc.span, len(got), len(tc.want))
		}
		for i := range got {
			if d := got[i].Sub(start); d != tc.want[i] {
				t.Errorf("schedule(%d, %s)[%d] = start+%s, want start+%s", tc.n, tc.span, i, d, tc.want[i])
			}
		}
	}
}

func TestVerdict(t *testing.T) {
	if verdict(true) != "met" || verdict(false) != "missed" {
		t.Error("verdict is not met/missed")
	}
}

// bindingB is binding "b" with the given Ready condition.
func bindingB(status, reason string) *authv1alpha1.IdPTokenBinding {
	b := &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{Name: "b"}}
	b.Status.Conditions = []metav1.Condition{{Type: authv1alpha1.ConditionReady, Status: metav1.ConditionStatus(status), Reason: reason}}
	return b
}

// secretB is Secret "b-token" holding token.
func secretB(token string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "b-token"}, Data: map[string][]byte{authv1alpha1.SecretKeyAccessToken: []byte(token)}}
}

// The heal of a binding counts only once it is Ready=True after the login and its Secret holds
// the login's token, whichever came last.
func TestEventsWatchHealedAt(t *testing.T) {
	w := newEventsWatch(func(string) time.Time { return time.Time{} })
	w.seeBinding(watch.Added, bindingB("True", authv1alpha1.ReasonSynced))
	w.seeSecret(watch.Added, secretB("old"))
	w.seeBinding(watch.Modified, bindingB("False", authv1alpha1.ReasonTokenExpired))
	login := time.Now()
	fresh := keyOf("fresh")
	if _, ok := w.healedAt("b", fresh, login); ok {
		t.Fatal("healed while TokenExpired with the old token")
	}
	time.Sleep(2 * time.Millisecond)
	w.seeSecret(watch.Modified, secretB("fresh"))
	if _, ok := w.healedAt("b", fresh, login); ok {
		t.Fatal("healed with the new token while still TokenExpired")
	}
	seen := w.tokenAt[fresh]
	time.Sleep(2 * time.Millisecond)
	w.seeBinding(watch.Modified, bindingB("True", authv1alpha1.ReasonSynced))
	at, ok := w.healedAt("b", fresh, login)
	if !ok || !at.After(seen) {
		t.Fatalf("healedAt = %v, %v; want the Ready time, after the token was seen (%v)", at, ok, seen)
	}
	// A later Ready=True update keeps the time of the transition.
	w.seeBinding(watch.Modified, bindingB("True", authv1alpha1.ReasonSynced))
	if again, _ := w.healedAt("b", fresh, login); !again.Equal(at) {
		t.Errorf("a second Ready=True moved the heal from %v to %v", at, again)
	}
	if w.current["b-token"] != fresh {
		t.Error("the Secret's current token is not the one last seen")
	}
	// Two tokens were seen in the Secret, each once, however often it was seen.
	w.seeSecret(watch.Modified, secretB("fresh"))
	if n := len(w.sighted["b-token"]); n != 2 {
		t.Errorf("%d tokens sighted in the Secret, want 2", n)
	}
	if _, ok := w.deletedAt("b-token"); ok {
		t.Error("deleted before any deletion")
	}
	w.seeSecret(watch.Deleted, secretB("fresh"))
	if _, ok := w.deletedAt("b-token"); !ok || w.current["b-token"] == fresh {
		t.Error("a deleted Secret is not recorded as gone")
	}
}

func TestWritesBetweenAndStaleUsers(t *testing.T) {
	before := map[string]int{"a": 2, "b": 5}
	after := map[string]int{"a": 2, "b": 9, "c": 1}
	if got := writesBetween(before, after); got != (writeCount{total: 5, objects: 2, most: 4}) {
		t.Errorf("writesBetween = %+v", got)
	}
	if got := writesBetween(after, after).String(); got != "0" {
		t.Errorf("no writes print %q", got)
	}
	if got := (writeCount{total: 1500, objects: 3, most: 1200}).String(); got != "1,500 (to 3 Secrets, at most 1,200 to one)" {
		t.Errorf("writeCount prints %q", got)
	}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	latest := map[string]time.Time{"s1": at(100), "s2": at(200)}
	for _, tc := range []struct {
		name    string
		current map[string]time.Time
		want    int
	}{
		{"all current, one later still", map[string]time.Time{"s1": at(100), "s2": at(230), "other": at(1)}, 0},
		{"one minted before the login", map[string]time.Time{"s1": at(99), "s2": at(200)}, 1},
		{"one missing", map[string]time.Time{"s2": at(200)}, 1},
		{"none", nil, 2},
	} {
		if got := staleUsers(tc.current, latest); got != tc.want {
			t.Errorf("%s: staleUsers = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestFirstRenewalAndCountOver(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
	seen := []sighting{{at(0), at(3600)}, {at(10), at(3605)}, {at(12), at(3612)}, {at(70), at(3670)}}
	for _, tc := range []struct {
		name          string
		since, expiry time.Time
		want          time.Time
		ok            bool
	}{
		{"the login's own token", at(9), at(3605), at(10), true},
		{"a refresh after the login", at(11), at(3606), at(12), true},
		{"an older token seen late does not count", at(11), at(3660), at(70), true},
		{"seen before the login does not count", at(71), at(3600), time.Time{}, false},
		{"nothing new enough", at(0), at(4000), time.Time{}, false},
	} {
		got, ok := firstRenewal(seen, tc.since, tc.expiry)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("%s: firstRenewal = %v, %v; want %v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	if n := countOver(ms(100, 3000, 3001, 5000), 3*time.Second); n != 2 {
		t.Errorf("countOver = %d, want 2 (3 s itself is not over)", n)
	}
}
