package binding

import (
	"strings"
	"testing"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func TestFailuresSayWhatToDoAndWhenToLookAgain(t *testing.T) {
	b := testBinding()
	b.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "client"}
	tenant := Tenant{Kind: authv1alpha1.TenantKindCluster, Name: "prod"}
	hour := FallbackInterval(b)
	tests := map[string]struct {
		got       *Failure
		reason    string
		terminal  bool
		notBefore time.Duration
		says      string
	}{
		"a user Auth0 does not know": {got: ManagementFailure(tenant, OutsideError{Kind: ErrorNotFound, Text: "404"}, authv1alpha1.ReasonUserNotFound, `reading user "u"`),
			reason: authv1alpha1.ReasonUserNotFound, terminal: true, says: `reading user "u"`},
		"credentials refused": {got: ManagementFailure(tenant, OutsideError{Kind: ErrorRefused, Text: "403"}, authv1alpha1.ReasonUserNotFound, "reading"),
			reason: authv1alpha1.ReasonTenantNotReady, says: "ClusterAuth0Tenant prod was refused"},
		"rate limited": {got: ManagementFailure(tenant, OutsideError{Text: "429", RetryAfter: 7 * time.Second}, authv1alpha1.ReasonUserNotFound, "reading"),
			reason: authv1alpha1.ReasonManagementAPIError, notBefore: 7 * time.Second, says: "Management API failed"},
		"a tenant without a Ready message": {got: TenantNotReady(tenant, ""),
			reason: authv1alpha1.ReasonTenantNotReady, says: "has not authenticated yet"},
		"a tenant with one": {got: TenantNotReady(tenant, "MissingScopes: read:users"),
			reason: authv1alpha1.ReasonTenantNotReady, says: "MissingScopes: read:users"},
		"no access token": {got: NoUserAccessToken(b, "u", "github"),
			reason: authv1alpha1.ReasonNoAccessToken, terminal: true, notBefore: hour, says: "must log in through that connection"},
		"no admin token": {got: NoAdminAccessToken(b, "con"),
			reason: authv1alpha1.ReasonNoAccessToken, terminal: true, notBefore: hour, says: "admin consent"},
		"not linked": {got: IdentityNotLinked("u", "github", []string{"google", "x"}),
			reason: authv1alpha1.ReasonIdentityNotFound, terminal: true, says: "linked: google, x"},
		"token vault on": {got: TokenVaultEnabled(b, tenant, "github"),
			reason: authv1alpha1.ReasonTokenVaultEnabled, terminal: true, notBefore: hour, says: "spec.user.source: TokenVault"},
		"no token vault": {got: NoTokenVault(tenant),
			reason: authv1alpha1.ReasonTenantNotReady, terminal: true, notBefore: time.Minute, says: "spec.tokenVault"},
		"vault: no linked account": {got: VaultExchangeFailure(b, tenant, VaultNoToken, OutsideError{Text: "401"}),
			reason: authv1alpha1.ReasonIdentityNotFound, terminal: true, notBefore: hour, says: "must connect the account"},
		"vault: client refused": {got: VaultExchangeFailure(b, tenant, VaultClientRefused, OutsideError{Text: "403"}),
			reason: authv1alpha1.ReasonTenantNotReady, says: "refused its Token Vault client"},
		"vault: 429": {got: VaultExchangeFailure(b, tenant, VaultOther, OutsideError{Text: "429", RetryAfter: 3 * time.Second}),
			reason: authv1alpha1.ReasonManagementAPIError, notBefore: 3 * time.Second, says: "exchange failed"},
		"override Secret missing": {got: OverrideClientNotFound(b),
			reason: authv1alpha1.ReasonInvalidRefreshConfig, terminal: true, notBefore: time.Minute, says: `Secret "client" not found`},
		"override Secret not labelled": {got: OverrideClientNotLabelled(b),
			reason: authv1alpha1.ReasonInvalidRefreshConfig, terminal: true, notBefore: time.Minute, says: authv1alpha1.LabelOAuthClient},
		"override unreadable": {got: OverrideClientUnreadable("timeout"), reason: authv1alpha1.ReasonRefreshFailed, says: "timeout"},
		"no endpoint": {got: NoRefreshEndpoint(b, "con", "strategy x"),
			reason: authv1alpha1.ReasonRefreshFailed, terminal: true, notBefore: hour, says: "strategy x"},
		"invalid_grant": {got: RefreshRejected("invalid_grant"), reason: authv1alpha1.ReasonRefreshFailed, says: "rejected the refresh token"},
		"IdP down":      {got: RefreshError("503"), reason: authv1alpha1.ReasonRefreshFailed, says: "failed: 503"},
		"a foreign Secret": {got: TargetConflict("s"),
			reason: authv1alpha1.ReasonSecretConflict, terminal: true, notBefore: time.Minute, says: "delete it or choose another"},
		"a 4xx on the target": {got: TargetWriteRefused("s", "too large"),
			reason: authv1alpha1.ReasonSecretWriteFailed, terminal: true, notBefore: 5 * time.Minute, says: "too large"},
		"a forged state": {got: ForeignState("ns", "idptoken-state-x", "its controller is not the tenant object"),
			reason: authv1alpha1.ReasonSecretConflict, terminal: true, notBefore: time.Minute, says: "delete it"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := tc.got
			if f.Reason != tc.reason || f.Terminal != tc.terminal || f.NotBefore != tc.notBefore {
				t.Errorf("= {%s terminal=%v notBefore=%s}, want {%s terminal=%v notBefore=%s}", f.Reason, f.Terminal, f.NotBefore, tc.reason, tc.terminal, tc.notBefore)
			}
			if !strings.Contains(f.Message, tc.says) {
				t.Errorf("message %q does not say %q", f.Message, tc.says)
			}
		})
	}
}

func TestRecordersAreWhatAStepMeansForThePass(t *testing.T) {
	b := testBinding()
	f := testFacts(b, testHeld(b))
	p := Start(f)
	p.RecordRefresh(f, RefreshResult{Renewal: Renewal{AccessToken: "at-2", RefreshToken: "rt-2", ExpiresIn: time.Hour}, Endpoint: Endpoint{TokenURL: "https://idp/token"}})
	if !p.Refreshed || p.Held.AccessToken != "at-2" || p.Held.RefreshToken != "rt-2" || p.Held.Endpoint.TokenURL != "https://idp/token" || p.Refreshes != 1 {
		t.Errorf("after a refresh: %+v", p)
	}
	p = Start(f)
	p.RecordRefresh(f, RefreshResult{InvalidGrant: true, Err: "invalid_grant"})
	if !p.InvalidGrant || !p.Held.RefreshTokenDead || p.Failure == nil || p.Failure.Reason != authv1alpha1.ReasonRefreshFailed {
		t.Errorf("after invalid_grant: %+v", p)
	}
	p = Start(f)
	p.Kept = f.Held
	p.Held = &Token{AccessToken: "expired-copy"}
	p.RecordRefresh(f, RefreshResult{Err: "503"})
	if p.Held != f.Held || p.Kept != nil {
		t.Error("a failed refresh of Auth0's expired copy keeps the token held before the read")
	}
	p = Start(f)
	p.RecordRefresh(f, RefreshResult{Failure: NoTokenVault(Tenant{})})
	if p.Refreshes != 1 || p.Failure == nil || p.Held != f.Held {
		t.Errorf("a refresh that could not be sent: %+v", p)
	}
	p = Start(f)
	p.RecordPersist(nil, ForeignState("ns", "n", "why"))
	if !p.Persisted || p.Held != nil || p.Failure == nil || Next(f, p) != StepDone {
		t.Error("a foreign state ends the pass without writing anything")
	}
	p = Start(f)
	p.RecordRefresh(f, RefreshResult{Unsupported: `strategy "samlp"`})
	if p.Held.RefreshUnsupported == "" || f.Held.RefreshUnsupported != "" || p.Failure != nil || p.Held.CanRefresh() {
		t.Error("a connection the operator cannot refresh marks a copy of the token held, never the facts, and fails nothing")
	}
	p.RecordTenantBusy()
	if Next(f, p) != StepDone {
		t.Error("a busy tenant ends the pass")
	}
}

func TestReadNotBeforeAsksForNothingOlderThanTheTokenHeld(t *testing.T) {
	b := testBinding()
	f := testFacts(b, testHeld(b))
	held := testHeld(b)
	held.ObtainedAt = now.Add(-time.Minute)
	dead := testHeld(b)
	dead.RefreshTokenDead = true
	other := testHeld(b)
	other.Lineage = "another identity"
	for name, c := range map[string]struct {
		held *Token
		want time.Time
	}{
		"nothing held: any recent read":            {held: nil, want: time.Time{}},
		"a token of this lineage: newer than it":   {held: held, want: held.ObtainedAt},
		"a refused refresh token: a read from now": {held: dead, want: now},
		"another lineage's token: any recent read": {held: other, want: time.Time{}},
	} {
		if got := ReadNotBefore(f, c.held); !got.Equal(c.want) {
			t.Errorf("%s: ReadNotBefore = %v, want %v", name, got, c.want)
		}
	}
}

func TestABusyPassLooksAgainSoonWithoutReporting(t *testing.T) {
	b := testBinding()
	f := testFacts(b, testHeld(b))
	f.Jitter = 0.5
	p := Start(f)
	p.RecordClaim(ClaimBusy, nil)
	if got := Requeue(f, p, 0); got != BusyRetry+BusyRetry/10 {
		t.Errorf("Requeue = %s, want %s plus the pass's jitter", got, BusyRetry)
	}
	p = Start(f)
	p.RecordClaim(ClaimForeign, ForeignState("ns", "n", "why"))
	if !p.Busy || p.Failure == nil || p.Failure.Reason != authv1alpha1.ReasonSecretConflict || Next(f, p) != StepDone {
		t.Errorf("a foreign Secret where the claim should go: %+v", p)
	}
}
