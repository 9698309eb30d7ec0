package conformance

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/internal/auth0"
)

// auth0UserRows: GET /api/v2/users/{id} and the Management API's errors (DESIGN.md,
// "Management API use", "Real IdPs and real Auth0 answers").
var auth0UserRows = []auth0Row{
	{
		fixture: "auth0-mgmt-user-database-identity", call: getUser, arg: "auth0|63d17c4a9d503d76c056c160",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantUser(t, o, "auth0|63d17c4a9d503d76c056c160", nil, auth0.Identity{
				Connection: "Username-Password-Authentication", Provider: "auth0", UserID: "63d17c4a9d503d76c056c160",
			})
		},
	},
	{
		fixture: "auth0-mgmt-user-google-idp-token", call: getUser, arg: "google-oauth2|111199914890750704174",
		check: func(t *testing.T, f *fixture, o auth0Outcome) {
			login := time.Date(2017, 3, 15, 7, 14, 32, 451e6, time.UTC)
			wantUser(t, o, "google-oauth2|111199914890750704174", &login, auth0.Identity{
				Connection: "google-oauth2", Provider: "google-oauth2", UserID: "111199914890750704174", IsSocial: true,
				AccessToken: identityField(t, f, 0, "access_token"), ExpiresIn: 3599,
			})
		},
	},
	{
		fixture: "auth0-mgmt-user-linked-identities", call: getUser, arg: "google-oauth2|115015401343387192604",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantUser(t, o, "google-oauth2|115015401343387192604", nil,
				auth0.Identity{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "115015401343387192604", IsSocial: true},
				auth0.Identity{Connection: "sms", Provider: "sms", UserID: "560ebaeef609ee1adaa7c551"})
		},
	},
	{
		// A numeric identity user_id is read as its digits.
		fixture: "auth0-mgmt-identity-github-numeric-user-id", call: getUser, arg: "github|123123123",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantUser(t, o, "github|123123123", nil,
				auth0.Identity{Connection: "github", Provider: "github", UserID: "123123123", IsSocial: true})
		},
	},
	{
		// 404 → the *NotFound reasons, terminal: not transient.
		fixture: "auth0-mgmt-user-not-found", call: getUser, arg: "auth0|63d17c4ba030f2d4279f2c54",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantAPIError(t, o.err, auth0.NotFound, "inexistent_user", false)
		},
	},
	{
		fixture: "auth0-mgmt-connection-not-found", call: getConnection, arg: "con_MunKCJ1vUpWISUez",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantAPIError(t, o.err, auth0.NotFound, "inexistent_connection", false)
		},
	},
	{
		// 403 → tenant problem; a missing scope is told apart.
		fixture: "auth0-mgmt-forbidden-insufficient-scope", call: getUser, arg: "auth0|conformance", at: "/api/v2/users/auth0|conformance",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantAPIError(t, o.err, auth0.Forbidden, "insufficient_scope", false)
			if !auth0.IsMissingScope(o.err) {
				t.Errorf("IsMissingScope = false: %v", o.err)
			}
		},
	},
	{
		// 401 → tenant problem, not retried as if transient.
		fixture: "auth0-mgmt-unauthorized-invalid-token", call: getUser, arg: "auth0|unknown",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantAPIError(t, o.err, auth0.Unauthorized, "", false)
		},
	},
	{
		// 429 → back off; the client gives up at once rather than waiting past MaxRateLimitWait.
		fixture: "auth0-mgmt-rate-limited-global", call: getUser, arg: "auth0|testaccuser", at: "/api/v2/users/auth0|testaccuser",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantAPIError(t, o.err, auth0.RateLimited, "too_many_requests", true)
			if wait, ok := auth0.IsRateLimited(o.err); !ok || wait <= 0 {
				t.Errorf("IsRateLimited = %s, %t; want a positive wait", wait, ok)
			}
			if o.apiRequests != 1 {
				t.Errorf("%d requests sent after a 429 within MaxRateLimitWait, want 1", o.apiRequests)
			}
		},
	},
}

// wantUser checks a user read: its id, last login and identities, in order.
func wantUser(t *testing.T, o auth0Outcome, id string, lastLogin *time.Time, identities ...auth0.Identity) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("GetUser: %v", o.err)
	}
	u := o.user
	if u.UserID != id {
		t.Errorf("UserID = %q, want %q", u.UserID, id)
	}
	switch {
	case lastLogin == nil && u.LastLogin != nil, lastLogin != nil && (u.LastLogin == nil || !u.LastLogin.Equal(*lastLogin)):
		t.Errorf("LastLogin = %v, want %v", u.LastLogin, lastLogin)
	}
	if len(u.Identities) != len(identities) {
		t.Fatalf("%d identities, want %d: %v", len(u.Identities), len(identities), u)
	}
	for i, want := range identities {
		if got := u.Identities[i]; got != want {
			// Identity's String redacts its tokens, so this message is safe to print.
			t.Errorf("identity %d = %v, want %v", i, got, want)
		}
	}
}

// identityField is a string member of the i-th identity in a user fixture's body.
func identityField(t testing.TB, f *fixture, i int, key string) string {
	t.Helper()
	var u struct {
		Identities []map[string]any `json:"identities"`
	}
	if err := json.Unmarshal(f.Response.Body, &u); err != nil || i >= len(u.Identities) {
		t.Fatalf("fixture %s: no identity %d (%v)", f.Name, i, err)
	}
	s, _ := u.Identities[i][key].(string)
	return s
}
