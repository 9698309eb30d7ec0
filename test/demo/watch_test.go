package demo

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// poll is one observation of a binding's Ready condition; "" status means no condition yet.
type poll struct{ status, reason string }

var (
	noCondition = poll{}
	refusedPoll = poll{"False", authv1alpha1.ReasonNotPermitted}
	readyPoll   = poll{"True", authv1alpha1.ReasonSynced}
)

// TestRefusedBindingChecks feeds the watcher the polls of a binding the samples expect to be
// refused, and checks which runs fail and why.
func TestRefusedBindingChecks(t *testing.T) {
	refused := sampleBinding{key: types.NamespacedName{Namespace: "team-b", Name: "erin-google"},
		expect: authv1alpha1.ReasonNotPermitted, userID: UserErin, connection: ConnGoogle, secretName: "erin-google-token"}
	granted := sampleBinding{key: types.NamespacedName{Namespace: "team-a", Name: "erin-google"}, userID: UserErin, connection: ConnGoogle}

	cases := []struct {
		name       string
		polls      []poll
		secretSeen bool
		readUser   bool            // the simulated Auth0 is asked for the refused binding's user
		others     []sampleBinding // further bindings of the samples
		wantFail   string          // substring of a failure; "" means the check passes
	}{
		{name: "refused from the first poll on", polls: []poll{refusedPoll, refusedPoll, refusedPoll}},
		{name: "refused after a poll without a condition", polls: []poll{noCondition, refusedPoll, refusedPoll}},
		{name: "tenant not found first, then refused", polls: []poll{{"False", authv1alpha1.ReasonTenantNotFound}, refusedPoll}},
		{name: "became Ready", polls: []poll{refusedPoll, readyPoll}, wantFail: "became Ready"},
		{name: "never refused", polls: []poll{noCondition, {"False", authv1alpha1.ReasonTenantNotReady}},
			wantFail: "was never refused with NotPermitted"},
		{name: "left the refusal for a poll", polls: []poll{refusedPoll, {"False", authv1alpha1.ReasonUserNotFound}, refusedPoll},
			wantFail: "was not NotPermitted in 1 poll(s) after it was first refused"},
		{name: "its Secret was written", polls: []poll{refusedPoll}, secretSeen: true, wantFail: "was written, but the binding is refused"},
		{name: "Auth0 was asked for its user", polls: []poll{refusedPoll}, readUser: true,
			wantFail: "whom only the refused binding team-b/erin-google names"},
		{name: "Auth0 was asked for a user another binding names", polls: []poll{refusedPoll}, readUser: true,
			others: []sampleBinding{granted}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant, err := StartTenant(TenantOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer tenant.Close()
			if tc.readUser {
				readUser(t, tenant, UserErin)
			}
			w := &watcher{sim: tenant.Sim, out: io.Discard, started: time.Now(),
				samples: samples{bindings: append([]sampleBinding{refused}, tc.others...)}}
			tr := &track{sampleBinding: refused, exists: true, secretSeen: tc.secretSeen}
			for _, p := range tc.polls {
				tr.ready, tr.reason = p.status, p.reason
				w.followRefusal(time.Now(), true, tr)
			}
			ok := w.checkRefused(tr)
			switch {
			case tc.wantFail == "" && (!ok || len(w.failures) > 0):
				t.Errorf("the check failed: %v", w.failures)
			case tc.wantFail != "" && (ok || !slices.ContainsFunc(w.failures, func(f string) bool { return strings.Contains(f, tc.wantFail) })):
				t.Errorf("failures = %q (passed: %v), want one containing %q", w.failures, ok, tc.wantFail)
			}
		})
	}
}

// readUser asks the simulated Auth0 for a user, as the operator would.
func readUser(t *testing.T, tenant *Tenant, userID string) {
	t.Helper()
	c := tenant.Sim.Client()
	defer c.CloseIdleConnections()
	resp, err := c.PostForm(tenant.Sim.URL()+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {tenant.ClientID},
		"client_secret": {tenant.ClientSecret}, "audience": {tenant.Sim.Audience()},
	})
	if err != nil {
		t.Fatal(err)
	}
	var m2m struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(resp.Body).Decode(&m2m)
	_ = resp.Body.Close()
	if err != nil || m2m.AccessToken == "" {
		t.Fatalf("no M2M token (status %d, %v)", resp.StatusCode, err)
	}
	req, err := http.NewRequest(http.MethodGet, tenant.Sim.URL()+"/api/v2/users/"+url.PathEscape(userID), nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+m2m.AccessToken)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET user: status %d", resp.StatusCode)
	}
}

// TestVaultGapTolerance: only a Token Vault binding may hold an expired token, and only for
// VaultGapTolerance after its expiry.
func TestVaultGapTolerance(t *testing.T) {
	now := time.Now()
	cases := []struct {
		name       string
		tokenVault bool
		expiresAt  time.Time
		want       bool
	}{
		{"token vault, expired 2s ago", true, now.Add(-2 * time.Second), true},
		{"token vault, expired just at the tolerance", true, now.Add(-VaultGapTolerance), true},
		{"token vault, expired 6s ago", true, now.Add(-6 * time.Second), false},
		{"token vault, token unknown to the simulator", true, time.Time{}, false},
		{"identities[], expired 1s ago", false, now.Add(-time.Second), false},
	}
	for _, tc := range cases {
		tr := &track{sampleBinding: sampleBinding{tokenVault: tc.tokenVault}, expiresAt: tc.expiresAt}
		if got := tr.inVaultGap(now); got != tc.want {
			t.Errorf("%s: inVaultGap = %v, want %v", tc.name, got, tc.want)
		}
	}
}
