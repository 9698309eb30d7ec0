// Package idp refreshes third-party IdP tokens (RFC 6749 §6) at the identity
// provider behind an Auth0 connection, and reads expiry from JWT access tokens.
package idp

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"golang.org/x/oauth2"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// ErrNoEndpoint is wrapped by every error of EndpointForConnection, by the errors of
// Resolver.Resolve except ErrDiscovery's, and by Refresh for an unusable Endpoint: the
// connection cannot be used for refreshing until someone changes it, so retrying is pointless.
var ErrNoEndpoint = errors.New("no usable IdP token endpoint")

// ErrRefreshUnsupported is wrapped, besides ErrNoEndpoint, by the errors for a connection the
// operator cannot refresh with as a matter of principle: a strategy without a known token
// endpoint and refresh grant, or a client authentication method it does not perform
// (private_key_jwt, none...). The message names the strategy or the method. The token is still
// read from Auth0.
var ErrRefreshUnsupported error = &subSentinel{text: "refreshing is not supported", parent: ErrNoEndpoint}

// subSentinel is a sentinel error that is also its parent for errors.Is.
type subSentinel struct {
	text   string
	parent error
}

func (e *subSentinel) Error() string { return e.text }
func (e *subSentinel) Unwrap() error { return e.parent }

// unsupported is why the operator cannot refresh with a connection at all; connectionError
// turns it into an ErrRefreshUnsupported error.
type unsupported string

func (u unsupported) Error() string { return string(u) }

// connectionError prefixes a problem of the connection described by what with
// ErrRefreshUnsupported or ErrNoEndpoint.
func connectionError(what string, err error) error {
	var u unsupported
	if errors.As(err, &u) {
		return fmt.Errorf("%w: %s: %s", ErrRefreshUnsupported, what, u)
	}
	return fmt.Errorf("%w: %s: %w", ErrNoEndpoint, what, err)
}

func describe(conn *auth0.Connection) string {
	return fmt.Sprintf("connection %q (strategy %q)", conn.Name, conn.Strategy)
}

// Endpoint is where and as which OAuth client to refresh tokens.
type Endpoint struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// AuthStyle says how the client authenticates. oauth2.AuthStyleAutoDetect
	// is treated as AuthStyleInParams: x/oauth2's auto-detection resends a
	// failed request in the other style, which would spend a single-use
	// refresh token twice.
	AuthStyle oauth2.AuthStyle
	// Provider names the IdP in metrics: the Auth0 connection's strategy (google-oauth2, waad,
	// github, oauth2...). Empty is reported as "unknown".
	Provider string
}

// String renders the endpoint with the client secret redacted.
func (e Endpoint) String() string {
	secret := `""`
	if e.ClientSecret != "" {
		secret = "<redacted>"
	}
	return fmt.Sprintf("{TokenURL:%s ClientID:%s ClientSecret:%s AuthStyle:%s}",
		e.TokenURL, e.ClientID, secret, authStyleName(e.AuthStyle))
}

// GoString keeps %#v from bypassing redaction.
func (e Endpoint) GoString() string { return "idp.Endpoint" + e.String() }

// Format keeps every fmt verb from bypassing redaction.
func (e Endpoint) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "idp.Endpoint", e.String())
}

func authStyleName(s oauth2.AuthStyle) string {
	switch s {
	case oauth2.AuthStyleInParams:
		return "InParams"
	case oauth2.AuthStyleInHeader:
		return "InHeader"
	case oauth2.AuthStyleAutoDetect:
		return "AutoDetect(InParams)"
	default:
		return fmt.Sprintf("AuthStyle(%d)", int(s))
	}
}

// effectiveAuthStyle never returns AutoDetect; see Endpoint.AuthStyle.
func (e Endpoint) effectiveAuthStyle() oauth2.AuthStyle {
	if e.AuthStyle == oauth2.AuthStyleInHeader {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// validate checks what Refresh needs. A client secret is optional here
// (public clients exist) but EndpointForConnection insists on one.
func (e Endpoint) validate() error {
	if err := checkHTTPSURL(e.TokenURL); err != nil {
		return fmt.Errorf("%w: token URL %w", ErrNoEndpoint, err)
	}
	if e.ClientID == "" {
		return fmt.Errorf("%w: client id is empty", ErrNoEndpoint)
	}
	if e.AuthStyle < oauth2.AuthStyleAutoDetect || e.AuthStyle > oauth2.AuthStyleInHeader {
		return fmt.Errorf("%w: unknown auth style %d", ErrNoEndpoint, int(e.AuthStyle))
	}
	return nil
}

func checkHTTPSURL(raw string) error {
	if raw == "" {
		return errors.New("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	if u.Scheme != "https" {
		return errors.New("must use https")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	return nil
}

// Token endpoints of the social strategies. Fixed URLs: the connection
// options of these strategies do not carry one.
const (
	googleTokenURL    = "https://oauth2.googleapis.com/token"
	liveTokenURL      = "https://login.live.com/oauth20_token.srf"
	bitbucketTokenURL = "https://bitbucket.org/site/oauth2/access_token"
	githubTokenURL    = "https://github.com/login/oauth/access_token"
	microsoftLogin    = "https://login.microsoftonline.com/"
)

type strategyEndpoint struct {
	tokenURL string
	style    oauth2.AuthStyle
}

// fixedEndpoints maps Auth0 strategies to their IdP's token endpoint and the
// client authentication it accepts. Google, Microsoft and GitHub take the
// secret in the form body; Bitbucket wants HTTP Basic. docs/providers.md is
// the per-strategy table, with sources; strategies not here, nor among
// waad, oauth2, oidc and okta, are RefreshUnsupported.
var fixedEndpoints = map[string]strategyEndpoint{
	"google-oauth2": {googleTokenURL, oauth2.AuthStyleInParams},
	"google-apps":   {googleTokenURL, oauth2.AuthStyleInParams},
	"windowslive":   {liveTokenURL, oauth2.AuthStyleInParams},
	"bitbucket":     {bitbucketTokenURL, oauth2.AuthStyleInHeader},
	"github":        {githubTokenURL, oauth2.AuthStyleInParams},
}

// unsupportedStrategies says why some well-known strategies cannot be refreshed; any other
// strategy without an endpoint gets the general reason.
var unsupportedStrategies = map[string]string{
	"twitter":  "the operator does not refresh X (Twitter) tokens; OAuth 1.0a has no refresh grant",
	"apple":    "Sign in with Apple wants a client secret JWT signed with the connection's key, which the operator does not make",
	"facebook": "Facebook has no refresh grant (long-lived tokens come from a token exchange)",
}

// EndpointForConnection derives the IdP token endpoint and OAuth client from
// an Auth0 connection without any request. Errors wrap ErrNoEndpoint and name
// the missing option; those of a connection the operator cannot refresh with at
// all also wrap ErrRefreshUnsupported. An oidc or okta connection without
// options.token_endpoint needs Resolver.Resolve, which reads the IdP's
// discovery document.
func EndpointForConnection(conn *auth0.Connection) (Endpoint, error) {
	if conn == nil {
		return Endpoint{}, fmt.Errorf("%w: no connection", ErrNoEndpoint)
	}
	ep, err := endpointForStrategy(conn)
	if err == nil {
		err = checkClient(conn.Options)
	}
	if err != nil {
		return Endpoint{}, connectionError(describe(conn), err)
	}
	return withClient(ep, conn), nil
}

// checkClient insists on the connection's OAuth client, which every refresh sends.
func checkClient(o auth0.ConnectionOptions) error {
	if o.ClientID == "" {
		return errors.New("has no options.client_id (connections using Auth0 developer keys cannot refresh)")
	}
	if o.ClientSecret == "" {
		return errors.New("has no options.client_secret (not set, or not readable with the M2M application's scopes)")
	}
	return nil
}

func withClient(ep Endpoint, conn *auth0.Connection) Endpoint {
	ep.ClientID = conn.Options.ClientID
	ep.ClientSecret = conn.Options.ClientSecret
	ep.Provider = conn.Strategy
	return ep
}

func endpointForStrategy(conn *auth0.Connection) (Endpoint, error) {
	if fixed, ok := fixedEndpoints[conn.Strategy]; ok {
		return Endpoint{TokenURL: fixed.tokenURL, AuthStyle: fixed.style}, nil
	}
	switch conn.Strategy {
	case "waad":
		tenant := conn.Options.TenantDomain
		if tenant == "" || conn.Options.WAADCommonEndpoint {
			tenant = "common"
		}
		if !isDomainLike(tenant) {
			return Endpoint{}, errors.New("options.tenant_domain is not a domain name or tenant id")
		}
		return Endpoint{
			TokenURL:  microsoftLogin + tenant + "/oauth2/v2.0/token",
			AuthStyle: oauth2.AuthStyleInParams,
		}, nil
	case "oauth2":
		if err := checkHTTPSURL(conn.Options.TokenURL); err != nil {
			return Endpoint{}, fmt.Errorf("options.tokenURL %w", err)
		}
		return Endpoint{TokenURL: conn.Options.TokenURL, AuthStyle: oauth2.AuthStyleInParams}, nil
	case "oidc", "okta":
		return oidcEndpoint(conn)
	default:
		if why, ok := unsupportedStrategies[conn.Strategy]; ok {
			return Endpoint{}, unsupported(why)
		}
		return Endpoint{}, unsupported("the operator does not refresh tokens of this strategy")
	}
}

// isDomainLike accepts DNS names and GUIDs, the two forms of an Entra tenant,
// and nothing that could change the token URL's path.
func isDomainLike(s string) bool {
	if len(s) > 253 || strings.HasPrefix(s, ".") || strings.HasPrefix(s, "-") || strings.Contains(s, "..") {
		return false
	}
	for _, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.'
		if !ok {
			return false
		}
	}
	return s != ""
}
