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
		"bitbucket":               {conn: withCreds("bitbucket", auth0.ConnectionOptions{}), wantURL: "https://bitbucket.org/site/oauth2/access_token", wantStyle: oauth2.AuthStyleInHeader},
		"github":                  {conn: withCreds("github", auth0.ConnectionOptions{}), wantURL: "https://github.com/login/oauth/access_token", wantStyle: oauth2.AuthStyleInParams},
		"oauth2": {
			conn:    withCreds("oauth2", auth0.ConnectionOptions{TokenURL: "https://idp.example.com/oauth/token"}),
			wantURL: "https://idp.example.com/oauth/token", wantStyle: oauth2.AuthStyleInParams,
		},
		"oauth2 without tokenURL": {conn: withCreds("oauth2", auth0.ConnectionOptions{}), wantErr: "options.tokenURL is empty"},
		"oauth2 over http":        {conn: withCreds("oauth2", auth0.ConnectionOptions{TokenURL: "http://idp.example.com/token"}), wantErr: "options.tokenURL must use https"},
		"oauth2 relative":         {conn: withCreds("oauth2", auth0.ConnectionOptions{TokenURL: "/token"}), wantErr: "options.tokenURL is not an absolute URL"},
		"unknown strategy":        {conn: withCreds("samlp", auth0.ConnectionOptions{}), wantErr: `strategy "samlp"`},
		"database":                {conn: withCreds("auth0", auth0.ConnectionOptions{}), wantErr: "not supported"},
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
