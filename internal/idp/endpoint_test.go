package idp

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/idptoken/idptoken-operator/internal/auth0"
)

func TestEndpointForConnection(t *testing.T) {
	withCreds := func(strategy string, o auth0.ConnectionOptions) *auth0.Connection {
		if o.ClientID == "" {
			o.ClientID = "cid"
		}
		if o.ClientSecret == "" {
			o.ClientSecret = "cs-SECRET"
		}
		return &auth0.Connection{ID: "con_1", Name: "conn-" + strategy, Strategy: strategy, Options: o}
	}
	tests := map[string]struct {
		conn      *auth0.Connection
		wantURL   string
		wantStyle oauth2.AuthStyle
		wantErr   string // substring of an ErrNoEndpoint error
		// wantUnsupported: the error is also ErrRefreshUnsupported (Ready=False RefreshUnsupported).
		wantUnsupported bool
	}{
		"google-oauth2": {conn: withCreds("google-oauth2", auth0.ConnectionOptions{}), wantURL: "https://oauth2.googleapis.com/token", wantStyle: oauth2.AuthStyleInParams},
		"google-apps":   {conn: withCreds("google-apps", auth0.ConnectionOptions{}), wantURL: "https://oauth2.googleapis.com/token", wantStyle: oauth2.AuthStyleInParams},
		"windowslive":   {conn: withCreds("windowslive", auth0.ConnectionOptions{}), wantURL: "https://login.live.com/oauth20_token.srf", wantStyle: oauth2.AuthStyleInParams},
		"waad with tenant": {
			conn:    withCreds("waad", auth0.ConnectionOptions{TenantDomain: "contoso.onmicrosoft.com"}),
			wantURL: "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"waad with tenant id": {
			conn:    withCreds("waad", auth0.ConnectionOptions{TenantDomain: "72f988bf-86f1-41af-91ab-2d7cd011db47"}),
			wantURL: "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/oauth2/v2.0/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"waad without tenant": {
			conn:    withCreds("waad", auth0.ConnectionOptions{}),
			wantURL: "https://login.microsoftonline.com/common/oauth2/v2.0/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"waad tenant with a path": {conn: withCreds("waad", auth0.ConnectionOptions{TenantDomain: "evil.com/x?"}), wantErr: "tenant_domain"},
		"waad tenant dot-dot":     {conn: withCreds("waad", auth0.ConnectionOptions{TenantDomain: ".."}), wantErr: "tenant_domain"},
		"waad common endpoint flag": {
			conn:    withCreds("waad", auth0.ConnectionOptions{TenantDomain: "contoso.onmicrosoft.com", WAADCommonEndpoint: true}),
			wantURL: "https://login.microsoftonline.com/common/oauth2/v2.0/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"oidc with token_endpoint": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{TokenEndpoint: "https://idp.example.com/oauth2/token", Issuer: "https://idp.example.com"}),
			wantURL: "https://idp.example.com/oauth2/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"oidc client_secret_post": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{TokenEndpoint: "https://idp.example.com/token", TokenEndpointAuthMethod: "client_secret_post"}),
			wantURL: "https://idp.example.com/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"oidc client_secret_basic": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{TokenEndpoint: "https://idp.example.com/token", TokenEndpointAuthMethod: "client_secret_basic"}),
			wantURL: "https://idp.example.com/token", wantStyle: oauth2.AuthStyleInHeader,
		},
		"okta with token_endpoint": {
			conn:    withCreds("okta", auth0.ConnectionOptions{TokenEndpoint: "https://acme.okta.com/oauth2/v1/token", Domain: "acme.okta.com"}),
			wantURL: "https://acme.okta.com/oauth2/v1/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"oidc token_endpoint over http": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{TokenEndpoint: "http://idp.example.com/token"}),
			wantErr: "options.token_endpoint must use https",
		},
		"oidc private_key_jwt": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{TokenEndpoint: "https://idp.example.com/token", TokenEndpointAuthMethod: "private_key_jwt"}),
			wantErr: `"private_key_jwt"`, wantUnsupported: true,
		},
		"okta auth method none": {
			conn:    withCreds("okta", auth0.ConnectionOptions{TokenEndpoint: "https://acme.okta.com/oauth2/v1/token", TokenEndpointAuthMethod: "none"}),
			wantErr: `"none"`, wantUnsupported: true,
		},
		"oidc that needs its discovery document": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{DiscoveryURL: "https://idp.example.com/.well-known/openid-configuration"}),
			wantErr: "discovery",
		},
		"oidc with nothing to find the endpoint by": {
			conn:    withCreds("oidc", auth0.ConnectionOptions{}),
			wantErr: "options.token_endpoint",
		},
		// docs/providers.md: these are RefreshUnsupported.
		"twitter":    {conn: withCreds("twitter", auth0.ConnectionOptions{}), wantErr: `strategy "twitter"`, wantUnsupported: true},
		"apple":      {conn: withCreds("apple", auth0.ConnectionOptions{}), wantErr: `strategy "apple"`, wantUnsupported: true},
		"facebook":   {conn: withCreds("facebook", auth0.ConnectionOptions{}), wantErr: "no refresh grant", wantUnsupported: true},
		"linkedin":   {conn: withCreds("linkedin", auth0.ConnectionOptions{}), wantErr: `strategy "linkedin"`, wantUnsupported: true},
		"salesforce": {conn: withCreds("salesforce", auth0.ConnectionOptions{}), wantErr: `strategy "salesforce"`, wantUnsupported: true},
		"box":        {conn: withCreds("box", auth0.ConnectionOptions{}), wantErr: `strategy "box"`, wantUnsupported: true},
		"dropbox":    {conn: withCreds("dropbox", auth0.ConnectionOptions{}), wantErr: `strategy "dropbox"`, wantUnsupported: true},
		"slack":      {conn: withCreds("slack", auth0.ConnectionOptions{}), wantErr: `strategy "slack"`, wantUnsupported: true},
		"bitbucket":  {conn: withCreds("bitbucket", auth0.ConnectionOptions{}), wantURL: "https://bitbucket.org/site/oauth2/access_token", wantStyle: oauth2.AuthStyleInHeader},
		"github":     {conn: withCreds("github", auth0.ConnectionOptions{}), wantURL: "https://github.com/login/oauth/access_token", wantStyle: oauth2.AuthStyleInParams},
		"oauth2": {
			conn:    withCreds("oauth2", auth0.ConnectionOptions{TokenURL: "https://idp.example.com/oauth/token"}),
			wantURL: "https://idp.example.com/oauth/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"oauth2 without tokenURL": {conn: withCreds("oauth2", auth0.ConnectionOptions{}), wantErr: "options.tokenURL is empty"},
		"oauth2 over http":        {conn: withCreds("oauth2", auth0.ConnectionOptions{TokenURL: "http://idp.example.com/token"}), wantErr: "options.tokenURL must use https"},
		"oauth2 relative":         {conn: withCreds("oauth2", auth0.ConnectionOptions{TokenURL: "/token"}), wantErr: "options.tokenURL is not an absolute URL"},
		"unknown strategy":        {conn: withCreds("samlp", auth0.ConnectionOptions{}), wantErr: `strategy "samlp"`, wantUnsupported: true},
		"database":                {conn: withCreds("auth0", auth0.ConnectionOptions{}), wantErr: "not supported", wantUnsupported: true},
		"no client id": {
			conn:    &auth0.Connection{Name: "gh", Strategy: "github", Options: auth0.ConnectionOptions{ClientSecret: "cs-SECRET"}},
			wantErr: "options.client_id",
		},
		"no client secret": {
			conn:    &auth0.Connection{Name: "gh", Strategy: "github", Options: auth0.ConnectionOptions{ClientID: "cid"}},
			wantErr: "options.client_secret",
		},
		"nil connection": {conn: nil, wantErr: "no connection"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ep, err := EndpointForConnection(tc.conn)
			if tc.wantErr != "" {
				if !errors.Is(err, ErrNoEndpoint) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want ErrNoEndpoint mentioning %q", err, tc.wantErr)
				}
				if got := errors.Is(err, ErrRefreshUnsupported); got != tc.wantUnsupported {
					t.Errorf("errors.Is(%v, ErrRefreshUnsupported) = %v, want %v", err, got, tc.wantUnsupported)
				}
				if errors.Is(err, ErrDiscovery) {
					t.Errorf("%v is ErrDiscovery: EndpointForConnection makes no request", err)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Endpoint{TokenURL: tc.wantURL, ClientID: "cid", ClientSecret: "cs-SECRET", AuthStyle: tc.wantStyle, Provider: tc.conn.Strategy}
			if ep != want {
				t.Errorf("got %v, want %v", ep, want)
			}
			if err := ep.validate(); err != nil {
				t.Errorf("derived endpoint does not validate: %v", err)
			}
		})
	}
}
