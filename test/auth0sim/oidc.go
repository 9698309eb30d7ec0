/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// OIDCEndpoint selects which option of an oidc or okta connection names its IdP's token
// endpoint (ConnectionSpec.OIDC).
type OIDCEndpoint string

const (
	// OIDCByTokenEndpoint renders options.token_endpoint = ConnectionTokenURL.
	OIDCByTokenEndpoint OIDCEndpoint = "token_endpoint"
	// OIDCByDiscoveryURL renders options.discovery_url = DiscoveryURL (the full URL of
	// the discovery document) and no token_endpoint.
	OIDCByDiscoveryURL OIDCEndpoint = "discovery_url"
	// OIDCByIssuer renders options.issuer = IssuerURL only; the discovery document is at
	// the issuer + "/.well-known/openid-configuration".
	OIDCByIssuer OIDCEndpoint = "issuer"
)

// discoveryPath is where an issuer's discovery document lives (OpenID Connect Discovery 1.0 §4).
const discoveryPath = "/.well-known/openid-configuration"

// IssuerURL returns the issuer the simulator gives an OIDC connection (ConnectionSpec.OIDC):
// https://<Domain()>/oidc/<connection name>.
func (s *Server) IssuerURL(connection string) string {
	return issuerURL(s.url, connection)
}

// DiscoveryURL returns the URL of an OIDC connection's discovery document.
func (s *Server) DiscoveryURL(connection string) string {
	return s.IssuerURL(connection) + discoveryPath
}

// ConnectionTokenURL returns the token endpoint the discovery document of an OIDC connection
// names: it serves refresh grants of the connection's IdP, accepting only the connection's
// TokenEndpointAuthMethod when one is set.
func (s *Server) ConnectionTokenURL(connection string) string {
	return s.IssuerURL(connection) + "/token"
}

func issuerURL(base, connection string) string {
	return base + "/oidc/" + url.PathEscape(connection)
}

// validateOIDC panics on an OIDC setting the connection cannot have.
func validateOIDC(c ConnectionSpec) {
	switch c.OIDC {
	case "":
		if c.TokenEndpointAuthMethod != "" {
			panic(fmt.Sprintf("auth0sim: AddConnection %q: TokenEndpointAuthMethod requires OIDC", c.Name))
		}
		return
	case OIDCByTokenEndpoint, OIDCByDiscoveryURL, OIDCByIssuer:
	default:
		panic(fmt.Sprintf("auth0sim: AddConnection %q: unknown OIDC endpoint %q", c.Name, c.OIDC))
	}
	if c.Strategy != "oidc" && c.Strategy != "okta" {
		panic(fmt.Sprintf("auth0sim: AddConnection %q: OIDC needs strategy oidc or okta, not %q", c.Name, c.Strategy))
	}
	if c.IdP == "" {
		panic(fmt.Sprintf("auth0sim: AddConnection %q: OIDC requires IdP", c.Name))
	}
	switch c.TokenEndpointAuthMethod {
	case "", ClientSecretBasic, ClientSecretPost:
	default:
		panic(fmt.Sprintf("auth0sim: AddConnection %q: unknown TokenEndpointAuthMethod %q", c.Name, c.TokenEndpointAuthMethod))
	}
}

// renderOIDCOptions adds the connection's OIDC options to opts.
func renderOIDCOptions(opts map[string]any, c ConnectionSpec, base string) {
	issuer := issuerURL(base, c.Name)
	switch c.OIDC {
	case OIDCByTokenEndpoint:
		opts["token_endpoint"] = issuer + "/token"
	case OIDCByDiscoveryURL:
		opts["discovery_url"] = issuer + discoveryPath
	case OIDCByIssuer:
		opts["issuer"] = issuer
	default:
		return
	}
	if c.TokenEndpointAuthMethod != "" {
		opts["token_endpoint_auth_method"] = c.TokenEndpointAuthMethod
	}
}

// handleOIDC serves GET /oidc/<connection>/.well-known/openid-configuration and
// POST /oidc/<connection>/token.
func (s *Server) handleOIDC(w http.ResponseWriter, r *http.Request) {
	escName, tail, _ := strings.Cut(strings.TrimPrefix(r.URL.EscapedPath(), "/oidc/"), "/")
	name, err := url.PathUnescape(escName)
	var spec ConnectionSpec
	found := false
	if err == nil {
		s.mu.Lock()
		for _, c := range s.conns {
			if c.spec.Name == name && c.spec.OIDC != "" {
				spec, found = c.spec, true
				break
			}
		}
		s.mu.Unlock()
	}
	switch {
	case !found:
		writeJSON(w, http.StatusNotFound, oauthError{Error: "not_found"})
	case "/"+tail == discoveryPath:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", ErrorDescription: "method not allowed"})
			return
		}
		writeJSON(w, http.StatusOK, s.discoveryDocument(spec))
	case tail == "token":
		s.serveRefreshGrant(w, r, spec.IdP, spec.TokenEndpointAuthMethod)
	default:
		writeJSON(w, http.StatusNotFound, oauthError{Error: "not_found"})
	}
}

// discoveryDocument is the OpenID Provider Metadata of an OIDC connection's issuer; only its
// token endpoint is served.
func (s *Server) discoveryDocument(c ConnectionSpec) map[string]any {
	issuer := s.IssuerURL(c.Name)
	methods := []string{ClientSecretBasic, ClientSecretPost}
	if c.TokenEndpointAuthMethod != "" {
		methods = []string{c.TokenEndpointAuthMethod}
	}
	return map[string]any{
		"issuer":                                issuer,
		"authorization_endpoint":                issuer + "/authorize",
		"token_endpoint":                        issuer + "/token",
		"jwks_uri":                              issuer + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"token_endpoint_auth_methods_supported": methods,
	}
}
