package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// secretsOf follows createBindings: consecutive bindings name different users.
func TestSecretsOfGroupsBindingsByUser(t *testing.T) {
	got := secretsOf(7, 3)
	want := [][]string{
		{"b-00000-token", "b-00003-token", "b-00006-token"},
		{"b-00001-token", "b-00004-token"},
		{"b-00002-token", "b-00005-token"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("secretsOf(7, 3) = %v, want %v", got, want)
	}
	total := 0
	for _, s := range secretsOf(1000, 100) {
		if len(s) != 10 {
			t.Fatalf("a user of 1,000 bindings / 100 users has %d Secrets, want 10", len(s))
		}
		total += len(s)
	}
	if total != 1000 {
		t.Errorf("%d Secrets in all, want 1,000", total)
	}
}

// A user is renewed when the last of its Secrets holds a token of the login (its own, or one
// minted later); a token from before the login, even seen after it, does not count.
func TestAllRenewedAtWaitsForEverySecretOfTheUser(t *testing.T) {
	t0 := time.Now()
	expiry := map[string]time.Time{"old": t0.Add(time.Hour), "login": t0.Add(time.Hour + 10*time.Second), "refreshed": t0.Add(time.Hour + 11*time.Second)}
	w := newEventsWatch(func(tok string) time.Time { return expiry[tok] })
	secret := func(name, tok string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string][]byte{authv1alpha1.SecretKeyAccessToken: []byte(tok)}}
	}
	names := []string{"a", "b", "c"}
	for _, n := range names {
		w.seeSecret(watch.Added, secret(n, "old"))
	}
	login := time.Now()
	exp := expiry["login"]
	check := func(step string, wantStale int, wantDone bool) time.Time {
		t.Helper()
		at, ok := w.allRenewedAt(names, login, exp)
		if ok != wantDone {
			t.Fatalf("%s: allRenewedAt = %v, %v; want done %v", step, at, ok, wantDone)
		}
		if got := staleOf(w, names, login, exp); got != wantStale {
			t.Fatalf("%s: staleOf = %d, want %d", step, got, wantStale)
		}
		return at
	}
	check("nothing renewed", 3, false)
	w.seeSecret(watch.Modified, secret("a", "login"))
	w.seeSecret(watch.Modified, secret("b", "refreshed"))
	check("two of three", 1, false)
	w.seeSecret(watch.Modified, secret("c", "other-old")) // a token not of the login (no expiry known)
	check("the third with an older token", 1, false)
	time.Sleep(2 * time.Millisecond)
	w.seeSecret(watch.Modified, secret("c", "login"))
	at := check("all three", 0, true)
	if last := w.sighted["c"][len(w.sighted["c"])-1].at; !at.Equal(last) {
		t.Errorf("renewed at %v, want the last Secret's sighting %v", at, last)
	}
	if got := w.holding(names, keyOf("login")); got != 2 {
		t.Errorf("holding the login's token: %d, want 2 (b holds a refreshed one)", got)
	}
	if _, ok := w.allRenewedAt(names, time.Now().Add(time.Second), exp); ok {
		t.Error("renewed by sightings from before the login")
	}
}

func TestReloginRowSaysWhetherOneReadPerUserHeld(t *testing.T) {
	w := workload{bindings: 1000, users: 100, rate: 50, tenantRate: 50, relogin: true}
	for _, tc := range []struct {
		name  string
		rr    reloginResult
		wants []string
	}{
		{"one read per user", reloginResult{users: 100, secrets: 1000, rate: 25, logins: 4 * time.Second, allDone: 5 * time.Second, auth0Reqs: 100,
			latency: spreadOf(ms(200, 300, 900)), reqs: requestCounts{"update secrets 200": 1000, "patch idptokenbindings/status 200": 1000}},
			[]string{"| re-login: 100 users log in again (25/s over 4.00 s), events on, after the sync of 1,000 bindings |",
				"every Secret renewed 5.00 s after the first login", "1.00 Auth0 requests per changed user ≤ 1.00 (met)", "| 100 (1.00) |",
				"2.00 (Secret 1.00, status 1.00, other 0.00)", "p50 0.30 s / p99 0.90 s / max 0.90 s"}},
		{"more reads, some stale", reloginResult{users: 100, secrets: 1000, auth0Reqs: 150, stale: 7},
			[]string{"never: 7 Secrets not renewed", "1.50 Auth0 requests per changed user ≤ 1.00 (missed)", "| 150 (1.50) |"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := reloginRow(&result{w: w, relogin: &tc.rr})
			if n := strings.Count(got, "|"); n != 12 {
				t.Errorf("%d cells, want the main table's 11: %s", n-1, got)
			}
			for _, want := range tc.wants {
				if !strings.Contains(got, want) {
					t.Errorf("row lacks %q:\n%s", want, got)
				}
			}
		})
	}
}
