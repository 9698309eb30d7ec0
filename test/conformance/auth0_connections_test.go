package conformance

import (
	"errors"
	"testing"

	"golang.org/x/oauth2"

	"github.com/idptoken/idptoken-operator/internal/idp"
)

// auth0ConnectionRows: GET /api/v2/connections/{id} and ?name=, and the IdP token endpoint
// the operator derives from each strategy (DESIGN.md, "Expiry and refresh", "Real IdPs and
// real Auth0 answers"). The endpoint is resolved with idp.Resolver, whose HTTP client reaches
// only the replay server: no row may need the network.
var auth0ConnectionRows = []auth0Row{
	{
		// Auth0 developer keys: no OAuth client of the tenant's own, so nothing to refresh with.
		fixture: "auth0-mgmt-connection-google-oauth2-dev-keys", call: getConnectionByName, arg: "Test-GoogleOAuth2-Connection-1747381016",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "google-oauth2", false)
			wantNoEndpoint(t, o)
		},
	},
	{
		fixture: "auth0-mgmt-connection-github", call: getConnection, arg: "con_sytCTiCS494Z9iAx",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "github", false)
			wantEndpoint(t, o, "https://github.com/login/oauth/access_token", "client-id")
		},
	},
	{
		fixture: "auth0-mgmt-connection-windowslive", call: getConnection, arg: "con_2pficKbYpD5WnWlb",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "windowslive", false)
			wantEndpoint(t, o, "https://login.live.com/oauth20_token.srf", "client_id")
		},
	},
	{
		// waad, waad_common_endpoint false: the v2 endpoint of the connection's own tenant.
		fixture: "auth0-mgmt-connection-waad-tenant-v1", call: getConnection, arg: "con_RTxbg9uQVo9lcPpu",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "waad", false)
			wantEndpoint(t, o, "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/token", "123456")
		},
	},
	{
		fixture: "auth0-mgmt-connection-waad-tenant-v2", call: getConnection, arg: "con_rv6zpbnX2uYT1aTt",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "waad", false)
			wantEndpoint(t, o, "https://login.microsoftonline.com/example.onmicrosoft.com/oauth2/v2.0/token", "123456")
		},
	},
	{
		// oauth2 → options.tokenURL.
		fixture: "auth0-mgmt-connection-oauth2", call: getConnection, arg: "con_hwZGYyGi6JWV7g29",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "oauth2", false)
			wantEndpoint(t, o, "https://api.login.yahoo.com/oauth2/get_token", "123456")
		},
	},
	{
		// oidc → options.token_endpoint; no token_endpoint_auth_method: client_secret_post.
		fixture: "auth0-mgmt-connection-oidc-back-channel", call: getConnection, arg: "con_KSTUfqlg41KKwagU",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "oidc", false)
			wantEndpoint(t, o, "https://api.login.yahoo.com/oauth2/get_token", "123456")
		},
	},
	{
		// A front-channel oidc connection has no client secret: no endpoint, and no request
		// for PayPal's discovery document either (the replay client would fail the test).
		fixture: "auth0-mgmt-connection-oidc-front-channel", call: getConnection, arg: "con_AFnWE6Byk7IJ0hEL",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "oidc", false)
			wantNoEndpoint(t, o)
		},
	},
	{
		// okta → options.token_endpoint of the Okta org.
		fixture: "auth0-mgmt-connection-okta", call: getConnection, arg: "con_fZdq3cDn3OqWISA1",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "okta", false)
			wantEndpoint(t, o, "https://domain.okta.com/oauth2/v1/token", "123456")
		},
	},
	{
		// connected_accounts.active: Token Vault keeps the connection's tokens.
		fixture: "auth0-mgmt-connection-connected-accounts", call: getConnection, arg: "con_hfE2p4W11AZ2Mejf",
		check: func(t *testing.T, _ *fixture, o auth0Outcome) {
			wantConnection(t, o, "oidc", true)
			wantEndpoint(t, o, "https://api.login.yahoo.com/oauth2/get_token", "123456")
		},
	},
}

func wantConnection(t *testing.T, o auth0Outcome, strategy string, tokenVault bool) {
	t.Helper()
	if o.err != nil {
		t.Fatalf("reading the connection: %v", o.err)
	}
	if o.conn.Strategy != strategy || o.conn.TokenVault != tokenVault {
		t.Errorf("strategy %q, TokenVault %t; want %q, %t", o.conn.Strategy, o.conn.TokenVault, strategy, tokenVault)
	}
}

// wantEndpoint checks the derived token endpoint and client. Every strategy here sends the
// client secret in the form body (client_secret_post): the social ones as their IdPs document
// it, oauth2/oidc/okta by default without options.token_endpoint_auth_method.
func wantEndpoint(t *testing.T, o auth0Outcome, tokenURL, clientID string) {
	t.Helper()
	if o.epErr != nil {
		t.Fatalf("Resolve: %v", o.epErr)
	}
	ep := o.endpoint
	if ep.TokenURL != tokenURL || ep.ClientID != clientID || ep.ClientSecret != o.conn.Options.ClientSecret || ep.AuthStyle != oauth2.AuthStyleInParams {
		// Endpoint's String redacts the client secret.
		t.Errorf("endpoint %v, want token URL %s, client %s, client_secret_post", ep, tokenURL, clientID)
	}
}

func wantNoEndpoint(t *testing.T, o auth0Outcome) {
	t.Helper()
	if !errors.Is(o.epErr, idp.ErrNoEndpoint) {
		t.Errorf("Resolve = %v, %v; want an error wrapping ErrNoEndpoint", o.endpoint, o.epErr)
	}
}
