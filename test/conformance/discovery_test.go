package conformance

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

// discoveryRows: OpenID discovery documents, as Auth0 stored them for real oidc connections,
// read by idp.Resolver for an oidc connection without options.token_endpoint (DESIGN.md, "Real
// IdPs and real Auth0 answers"). The connection is the suite's: it names only an OAuth client
// and options.discovery_url, the replay server.
var discoveryRows = []string{
	"oidc-discovery-yahoo",
	"oidc-discovery-paypal",
}

func TestOIDCDiscovery(t *testing.T) {
	for _, name := range discoveryRows {
		t.Run(name, func(t *testing.T) {
			f := loadFixture(t, name)
			r := newReplay(t, at(f))
			conn := &auth0.Connection{ID: "con_conformance", Name: "conformance-oidc", Strategy: "oidc", Options: auth0.ConnectionOptions{
				ClientID: idpClientID, ClientSecret: idpClientSecret, DiscoveryURL: r.url(""),
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			ep, err := (&idp.Resolver{HTTPClient: r.client()}).Resolve(ctx, conn)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			var doc struct {
				TokenEndpoint string   `json:"token_endpoint"`
				AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
			}
			if err := json.Unmarshal(f.Response.Body, &doc); err != nil {
				t.Fatal(err)
			}
			if ep.TokenURL != doc.TokenEndpoint || ep.ClientID != idpClientID || ep.ClientSecret != idpClientSecret {
				t.Errorf("endpoint %v, want the document's token_endpoint %s and the connection's client", ep, doc.TokenEndpoint)
			}
			// No token_endpoint_auth_method on the connection: client_secret_post, unless the
			// document says the IdP takes only client_secret_basic.
			if !slices.Contains(doc.AuthMethods, authMethod(ep.AuthStyle)) {
				t.Errorf("auth style %s is not among the document's %v", authMethod(ep.AuthStyle), doc.AuthMethods)
			}
			reqs := r.requests(at(f))
			if len(reqs) != 1 {
				t.Fatalf("%d requests for the discovery document, want 1", len(reqs))
			}
			if reqs[0].Header.Get("Authorization") != "" || len(reqs[0].Form) != 0 {
				t.Error("the discovery request carried credentials or a form")
			}
		})
	}
}

// authMethod is the token_endpoint_auth_method an AuthStyle sends.
func authMethod(s oauth2.AuthStyle) string {
	if s == oauth2.AuthStyleInHeader {
		return "client_secret_basic"
	}
	return "client_secret_post"
}
