package conformance

import (
	"net/url"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idptoken/idptoken-operator/internal/idp"
)

// refreshRows: each provider's answers to the refresh grant (DESIGN.md, "Expiry and refresh",
// "Real IdPs and real Auth0 answers": JSON whatever its Content-Type, expires_in as a number or
// a numeric string, errors with 200 classified by code, invalid_client / unauthorized_client /
// deleted_client / a 401 without invalid_grant are client trouble, invalid_grant a dead token).
var refreshRows = []refreshRow{
	// Google
	{fixture: "google-refresh-success", check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, f.field(t, "access_token"), 3920*time.Second, "")
	}},
	{fixture: "google-refresh-invalid-grant", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidGrant, "invalid_grant", 400)
	}},
	{fixture: "google-refresh-deleted-client", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidClient, "deleted_client", 401)
	}},
	{fixture: "google-refresh-invalid-client", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidClient, "invalid_client", 0)
	}},

	// Microsoft identity platform (Entra ID, personal accounts)
	{fixture: "microsoft-refresh-success", check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, f.field(t, "access_token"), 3599*time.Second, f.field(t, "refresh_token"))
	}},
	{fixture: "microsoft-personal-account-token", check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, f.field(t, "access_token"), time.Hour, f.field(t, "refresh_token"))
	}},
	{fixture: "microsoft-refresh-invalid-grant-inactive", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidGrant, "invalid_grant", 400)
	}},
	{fixture: "microsoft-refresh-invalid-scope", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.Rejected, "invalid_scope", 0)
	}},

	// GitHub
	{fixture: "github-refresh-success-string-expiry", check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, f.field(t, "access_token"), 8*time.Hour, f.field(t, "refresh_token"))
	}},
	{fixture: "github-token-form-encoded", check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		form, _ := url.ParseQuery(*f.Response.BodyText)
		wantToken(t, tok, err, form.Get("access_token"), 0, "")
	}},
	{fixture: "github-refresh-200-bad-refresh-token", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidGrant, "bad_refresh_token", 200)
	}},
	{fixture: "github-token-incorrect-client-credentials-form", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidClient, "incorrect_client_credentials", 0)
	}},

	// Bitbucket (client authentication in the Authorization header, as the operator sends it)
	{fixture: "bitbucket-token-success", style: oauth2.AuthStyleInHeader, check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, f.field(t, "access_token"), 2*time.Hour, f.field(t, "refresh_token"))
	}},
	{
		// Bitbucket names a dead refresh token invalid_request, not invalid_grant: its
		// description says it is the refresh token, so the operator falls back to Auth0.
		fixture: "bitbucket-refresh-invalid-request", style: oauth2.AuthStyleInHeader,
		check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
			wantRefreshError(t, err, idp.InvalidGrant, "invalid_request", 0)
		},
	},

	// Okta (persistent refresh token: the one sent comes back)
	{fixture: "okta-refresh-success", check: func(t *testing.T, f *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, f.field(t, "access_token"), time.Hour, "")
	}},
	{fixture: "okta-refresh-invalid-grant", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.InvalidGrant, "invalid_grant", 400)
	}},

	// Generic OAuth 2.0 and OIDC servers: JSON sent as text/plain
	{fixture: "oauth2-token-json-as-text-plain", check: func(t *testing.T, _ *fixture, _ string, tok *idp.Token, err error) {
		wantToken(t, tok, err, "ACCESS_TOKEN", time.Hour, "REFRESH_TOKEN")
	}},
	{fixture: "oidc-token-error-as-text-plain", check: func(t *testing.T, _ *fixture, _ string, _ *idp.Token, err error) {
		wantRefreshError(t, err, idp.Rejected, "invalid_request", 400)
	}},
}
