package controller

import (
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

var now = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

func testBinding() *authv1alpha1.IdPTokenBinding {
	return &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "team-a", UID: "uid-1", Generation: 1},
		Status:     authv1alpha1.IdPTokenBindingStatus{ObservedGeneration: 1},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindNamespaced, Name: "prod"},
			User:      &authv1alpha1.UserSource{ID: "google-oauth2|1"},
			Secret:    authv1alpha1.SecretTarget{Name: "alice-token", Type: corev1.SecretTypeOpaque},
		},
	}
}

func testHeld(b *authv1alpha1.IdPTokenBinding) *heldToken {
	return &heldToken{
		AccessToken: "at-1", RefreshToken: "rt-1", Auth0RefreshHash: hashToken("rt-1"),
		Expiry:   expiry.Result{ExpiresAt: now.Add(30 * time.Minute), IssuedAt: now.Add(-30 * time.Minute), Source: authv1alpha1.ExpirySourceIdPResponse},
		RenewAt:  now.Add(10 * time.Minute),
		Source:   sourceOf(b),
		Identity: authv1alpha1.IdentityStatus{Provider: "google-oauth2", Connection: "google-oauth2", UserID: "1"},
	}
}

// targetFor renders the Secret the operator would write, as the API server would return it.
func targetFor(b *authv1alpha1.IdPTokenBinding, h *heldToken) *corev1.Secret {
	d := desiredTargetFor(b, h)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: b.Spec.Secret.Name, Namespace: b.Namespace, Labels: d.labels, Annotations: d.annotations},
		Data:       d.data, Type: d.secretType,
	}
	if d.owned {
		s.OwnerReferences = []metav1.OwnerReference{{UID: b.UID, Controller: ptr.To(true)}}
	}
	return s
}

func TestDecide(t *testing.T) {
	tests := map[string]struct {
		edit func(in *bindingInput)
		want action
	}{
		"nothing held: read Auth0": {
			edit: func(in *bindingInput) { in.held = nil }, want: actionRead,
		},
		"source changed: read Auth0": {
			edit: func(in *bindingInput) { in.binding.Spec.User.Connection = "github" }, want: actionRead,
		},
		"due with a refresh token: refresh at the IdP": {
			edit: func(in *bindingInput) { in.now = in.held.RenewAt }, want: actionRefresh,
		},
		"due with a dead refresh token: read Auth0": {
			edit: func(in *bindingInput) { in.now = in.held.RenewAt; in.held.RefreshTokenDead = true }, want: actionRead,
		},
		"due without a refresh token: read Auth0": {
			edit: func(in *bindingInput) { in.now = in.held.RenewAt; in.held.RefreshToken = "" }, want: actionRead,
		},
		"Secret deleted: write it from the held token": {
			edit: func(in *bindingInput) { in.target = nil }, want: actionWrite,
		},
		"access_token edited by hand: write": {
			edit: func(in *bindingInput) { in.target.Data["access_token"] = []byte("x") }, want: actionWrite,
		},
		"refresh_token appeared although not included: write": {
			edit: func(in *bindingInput) { in.target.Data["refresh_token"] = []byte("x") }, want: actionWrite,
		},
		"includeRefreshToken turned on: write": {
			edit: func(in *bindingInput) { in.binding.Spec.Secret.IncludeRefreshToken = true }, want: actionWrite,
		},
		"a managed annotation edited: write": {
			edit: func(in *bindingInput) { in.target.Annotations[authv1alpha1.AnnotationProvider] = "x" }, want: actionWrite,
		},
		"deletionPolicy changed to Retain: write (drop the ownerReference)": {
			edit: func(in *bindingInput) { in.binding.Spec.DeletionPolicy = authv1alpha1.DeletionPolicyRetain }, want: actionWrite,
		},
		"a user label added to the spec: write": {
			edit: func(in *bindingInput) {
				in.binding.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "a"}
			}, want: actionWrite,
		},
		"spec changed since the last successful pass: write, so that removed labels go": {
			edit: func(in *bindingInput) { in.binding.Generation = 2 }, want: actionWrite,
		},
		"foreign keys and labels are left alone": {
			edit: func(in *bindingInput) { in.target.Data["other"] = []byte("x"); in.target.Labels["other"] = "x" }, want: actionNone,
		},
		"current and not due: nothing": {
			edit: func(*bindingInput) {}, want: actionNone,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBinding()
			h := testHeld(b)
			in := &bindingInput{binding: b, now: now, held: h, target: targetFor(b, h)}
			tc.edit(in)
			if got := decide(in); got.action != tc.want {
				t.Fatalf("decide() = %v (%s), want %v", got.action, got.why, tc.want)
			}
		})
	}
}

func TestAdopt(t *testing.T) {
	b := testBinding()
	valid := func(at, rt string, exp time.Duration) *heldToken {
		h := testHeld(b)
		h.AccessToken, h.RefreshToken, h.Auth0RefreshHash = at, rt, hashToken(rt)
		h.Expiry.ExpiresAt = now.Add(exp)
		return h
	}
	tests := map[string]struct {
		held, read  *heldToken
		wantVerdict adoptVerdict
		wantAT      string
		wantRT      string
	}{
		"first read": {
			held: nil, read: valid("at-a0", "rt-a0", time.Hour), wantVerdict: adoptNew, wantAT: "at-a0", wantRT: "rt-a0",
		},
		"Auth0 still has the refresh token the lineage started from: keep the rotated one": {
			held: func() *heldToken {
				h := valid("at-2", "rt-2", 10*time.Minute)
				h.Auth0RefreshHash = hashToken("rt-a0")
				return h
			}(),
			read:        valid("at-a0", "rt-a0", -time.Minute),
			wantVerdict: adoptNothingNewer, wantAT: "at-2", wantRT: "rt-2",
		},
		"the user logged in again: Auth0's new refresh token wins": {
			held: func() *heldToken {
				h := valid("at-2", "rt-2", 10*time.Minute)
				h.Auth0RefreshHash = hashToken("rt-a0")
				return h
			}(),
			read:        valid("at-a1", "rt-a1", time.Hour),
			wantVerdict: adoptNew, wantAT: "at-a1", wantRT: "rt-a1",
		},
		"a spec edit naming the same identity differently keeps the rotated lineage": {
			held: func() *heldToken {
				h := valid("at-2", "rt-2", 10*time.Minute)
				h.Auth0RefreshHash, h.Source = hashToken("rt-a0"), "before-the-edit"
				return h
			}(),
			read:        valid("at-a0", "rt-a0", -time.Minute),
			wantVerdict: adoptRefresh, wantAT: "at-a0", wantRT: "rt-2",
		},
		"Auth0's access token expired but its refresh token is usable: refresh now": {
			held: nil, read: valid("at-a0", "rt-a0", -time.Second), wantVerdict: adoptRefresh, wantAT: "at-a0", wantRT: "rt-a0",
		},
		"same access token in Auth0: nothing newer": {
			held: valid("at-1", "", 5*time.Minute), read: valid("at-1", "", 5*time.Minute), wantVerdict: adoptNothingNewer, wantAT: "at-1",
		},
		"expired everywhere and no refresh token: nothing newer, still expired": {
			held: valid("at-1", "", -time.Minute), read: valid("at-1", "", -time.Minute), wantVerdict: adoptNothingNewer, wantAT: "at-1",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, verdict := adopt(now, tc.held, tc.read)
			if verdict != tc.wantVerdict || got.AccessToken != tc.wantAT || got.RefreshToken != tc.wantRT {
				t.Fatalf("adopt() = (%v, at=%q rt=%q), want (%v, at=%q rt=%q)", verdict, got.AccessToken, got.RefreshToken, tc.wantVerdict, tc.wantAT, tc.wantRT)
			}
		})
	}
}

func TestResult(t *testing.T) {
	b := testBinding()
	tests := map[string]struct {
		out      outcome
		failures int32
		want     time.Duration
	}{
		"success: at the renewal time": {
			out: outcome{held: testHeld(b)}, want: 10 * time.Minute,
		},
		"transient failure: backoff": {
			out: outcome{held: testHeld(b), failure: transient("X", "m")}, failures: 3, want: 20 * time.Second,
		},
		"transient failure: the server's Retry-After when longer": {
			out: outcome{held: testHeld(b), failure: &failure{retryAfter: time.Minute}}, failures: 1, want: time.Minute,
		},
		"backoff never passes the expiry of a valid token": {
			out: outcome{held: func() *heldToken { h := testHeld(b); h.Expiry.ExpiresAt = now.Add(3 * time.Second); return h }(),
				failure: transient("X", "m")}, failures: 9, want: 4 * time.Second,
		},
		"terminal without a token: no requeue": {
			out: outcome{failure: terminal("X", 0, "m")}, want: 0,
		},
		"terminal with a valid token: look again at expiry": {
			out: outcome{held: testHeld(b), failure: terminal("X", 0, "m")}, want: 30*time.Minute + time.Second,
		},
		"API-server error: controller-runtime's backoff": {
			out: outcome{held: testHeld(b), err: errTest}, want: 0,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			in := &bindingInput{binding: testBinding(), now: now}
			in.binding.Status.FailedAttempts = tc.failures
			if got := tc.out.result(in).RequeueAfter; got != tc.want {
				t.Fatalf("RequeueAfter = %v, want %v", got, tc.want)
			}
		})
	}
}

var errTest = &auth0.APIError{Kind: auth0.ServerError}

func TestBackoff(t *testing.T) {
	for n, want := range map[int32]time.Duration{0: 5 * time.Second, 1: 5 * time.Second, 2: 10 * time.Second, 7: 5 * time.Minute, 100: 5 * time.Minute} {
		if got := backoff(n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", n, got, want)
		}
	}
}

func TestStateRoundTrip(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	h.AccessTokenSecret, h.RefreshTokenDead = "ats", true
	h.ObtainedAt, h.LastRefresh = now, now
	got := parseState(&corev1.Secret{Data: h.stateData()})
	if *got != *h {
		t.Fatalf("round trip changed the held token:\n got %+v\nwant %+v", *got, *h)
	}
	if parseState(&corev1.Secret{Data: map[string][]byte{}}) != nil {
		t.Fatal("an empty state Secret must parse as nothing held")
	}
}

func TestDesiredTarget(t *testing.T) {
	b := testBinding()
	b.Spec.Secret.Labels = map[string]authv1alpha1.LabelValue{"team": "a", authv1alpha1.LabelBinding: "spoofed"}
	h := testHeld(b)
	h.AccessTokenSecret = "ats"
	d := desiredTargetFor(b, h)
	if d.labels[authv1alpha1.LabelBinding] != "alice" || d.labels["team"] != "a" {
		t.Errorf("labels = %v: the operator's labels must win over the spec's", d.labels)
	}
	if string(d.data["expires_at"]) != "2026-11-23T09:30:00Z" || d.annotations[authv1alpha1.AnnotationExpiresAt] != "2026-11-23T09:30:00Z" {
		t.Errorf("expires_at = %q / %q", d.data["expires_at"], d.annotations[authv1alpha1.AnnotationExpiresAt])
	}
	if _, ok := d.data["refresh_token"]; ok {
		t.Error("refresh_token written without includeRefreshToken")
	}
	if string(d.data["access_token_secret"]) != "ats" || !d.owned {
		t.Errorf("access_token_secret = %q, owned = %v", d.data["access_token_secret"], d.owned)
	}
	h.Expiry = expiry.Result{Source: authv1alpha1.ExpirySourceUnknown}
	if d := desiredTargetFor(b, h); d.data["expires_at"] != nil || d.annotations[authv1alpha1.AnnotationExpiresAt] != "" {
		t.Error("expires_at written for an unknown expiry")
	}
}

func TestSelectIdentity(t *testing.T) {
	u := &auth0.User{UserID: "github|42", Identities: []auth0.Identity{
		{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "7"},
		{Connection: "github", Provider: "github", UserID: "42"},
	}}
	tests := map[string]struct {
		connection, want string
		wantReason       string
	}{
		"primary identity is the one matching user_id": {want: "github"},
		"by connection":      {connection: "google-oauth2", want: "google-oauth2"},
		"missing connection": {connection: "windowslive", wantReason: authv1alpha1.ReasonIdentityNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id, f := selectIdentity(u, tc.connection)
			if tc.wantReason != "" {
				if f == nil || f.reason != tc.wantReason || !strings.Contains(f.message, "google-oauth2, github") {
					t.Fatalf("failure = %+v, want reason %s listing the linked connections", f, tc.wantReason)
				}
				return
			}
			if f != nil || id.Connection != tc.want {
				t.Fatalf("selectIdentity() = %+v, %+v; want %s", id, f, tc.want)
			}
		})
	}
}

func TestLegacyStateName(t *testing.T) {
	b := testBinding()
	if got := legacyStateName(b); got != "alice.idptoken-state" {
		t.Errorf("legacyStateName = %q", got)
	}
	b.Name = strings.Repeat("a", 253)
	if got := legacyStateName(b); len(got) > 253 || !strings.HasSuffix(got, ".idptoken-state") {
		t.Errorf("long name gives %q (%d chars)", got, len(got))
	}
}

func TestIdentityNamesOneLineagePerIdentity(t *testing.T) {
	nsTenant := TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "prod"}}
	clTenant := TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: "prod"}}
	alice := identity{tenant: clTenant, userID: "google-oauth2|1", connection: "google-oauth2"}
	same := identity{tenant: clTenant, userID: "google-oauth2|1", connection: "google-oauth2"}
	others := []identity{
		{tenant: nsTenant, userID: "google-oauth2|1", connection: "google-oauth2"},                                        // another tenant
		{tenant: clTenant, userID: "google-oauth2|2", connection: "google-oauth2"},                                        // another user
		{tenant: clTenant, userID: "google-oauth2|1", connection: "github"},                                               // another connection
		{tenant: clTenant, connection: "google-oauth2"},                                                                   // a connection identity
		{tenant: clTenant, userID: "google-oauth2|1"},                                                                     // the primary identity
		{tenant: clTenant, userID: "google-oauth2|1", connection: "google-oauth2", override: "https://idp.example/token"}, // refreshes elsewhere
	}
	if alice.hash() != same.hash() {
		t.Fatal("the same identity must name the same lineage")
	}
	if !regexp.MustCompile(`^idptoken-state-[0-9a-f]{16}$`).MatchString(alice.stateName()) {
		t.Fatalf("stateName = %q, want idptoken-state-<16 hex>", alice.stateName())
	}
	for _, o := range others {
		if o.hash() == alice.hash() {
			t.Errorf("%q and %q share a lineage", o.key(), alice.key())
		}
	}
	// Bindings in two namespaces of one cluster tenant share the identity; of namespaced tenants they do not.
	b1, b2 := testBinding(), testBinding()
	b2.Namespace = "team-b"
	b1.Spec.TenantRef = authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindCluster, Name: "prod"}
	b2.Spec.TenantRef = b1.Spec.TenantRef
	if sourceOf(b1) != sourceOf(b2) {
		t.Error("two namespaces' bindings of one ClusterAuth0Tenant identity must share a lineage")
	}
	b1.Spec.TenantRef, b2.Spec.TenantRef = authv1alpha1.TenantRef{Name: "prod"}, authv1alpha1.TenantRef{Name: "prod"}
	if sourceOf(b1) == sourceOf(b2) {
		t.Error("namespaced tenants of the same name in two namespaces must not share a lineage")
	}
}

func TestPolicyOfTakesTheEarliestRenewalAndMostFrequentReRead(t *testing.T) {
	a, b, c := testBinding(), testBinding(), testBinding()
	a.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: 10 * time.Minute}
	b.Spec.Refresh.RenewBefore = &metav1.Duration{Duration: 20 * time.Minute}
	a.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: 2 * time.Hour}
	b.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: 30 * time.Minute}
	c.Spec.Refresh.FallbackInterval = &metav1.Duration{Duration: time.Nanosecond} // admitted by an old API server
	p := policyOf([]authv1alpha1.IdPTokenBinding{*a, *b})
	if p.renewBefore != 20*time.Minute || p.fallback != 30*time.Minute {
		t.Errorf("policyOf = %+v, want renewBefore 20m, fallback 30m", p)
	}
	if p := policyOf([]authv1alpha1.IdPTokenBinding{*c}); p.fallback != time.Minute {
		t.Errorf("a fallbackInterval below 1m must be raised to 1m, got %v", p.fallback)
	}
}
