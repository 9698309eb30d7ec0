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

// ErrNoEndpoint is wrapped by every error of EndpointForConnection and by
// Refresh for an unusable Endpoint: the connection cannot be used for
// refreshing until someone changes it, so retrying is pointless.
var ErrNoEndpoint = errors.New("no usable IdP token endpoint")

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
// secret in the form body; Bitbucket wants HTTP Basic.
var fixedEndpoints = map[string]strategyEndpoint{
	"google-oauth2": {googleTokenURL, oauth2.AuthStyleInParams},
	"google-apps":   {googleTokenURL, oauth2.AuthStyleInParams},
	"windowslive":   {liveTokenURL, oauth2.AuthStyleInParams},
	"bitbucket":     {bitbucketTokenURL, oauth2.AuthStyleInHeader},
	"github":        {githubTokenURL, oauth2.AuthStyleInParams},
}

// EndpointForConnection derives the IdP token endpoint and OAuth client from
// an Auth0 connection. Errors wrap ErrNoEndpoint and name the missing option.
func EndpointForConnection(conn *auth0.Connection) (Endpoint, error) {
	if conn == nil {
		return Endpoint{}, fmt.Errorf("%w: no connection", ErrNoEndpoint)
	}
	what := fmt.Sprintf("connection %q (strategy %q)", conn.Name, conn.Strategy)
	ep, err := endpointForStrategy(conn)
	if err != nil {
		return Endpoint{}, fmt.Errorf("%w: %s: %w", ErrNoEndpoint, what, err)
	}
	if conn.Options.ClientID == "" {
		return Endpoint{}, fmt.Errorf("%w: %s has no options.client_id (connections using Auth0 developer keys cannot refresh)", ErrNoEndpoint, what)
	}
	if conn.Options.ClientSecret == "" {
		return Endpoint{}, fmt.Errorf("%w: %s has no options.client_secret (not set, or not readable with the M2M application's scopes)", ErrNoEndpoint, what)
	}
	ep.ClientID = conn.Options.ClientID
	ep.ClientSecret = conn.Options.ClientSecret
	ep.Provider = conn.Strategy
	return ep, nil
}

func endpointForStrategy(conn *auth0.Connection) (Endpoint, error) {
	if fixed, ok := fixedEndpoints[conn.Strategy]; ok {
		return Endpoint{TokenURL: fixed.tokenURL, AuthStyle: fixed.style}, nil
	}
	switch conn.Strategy {
	case "waad":
		tenant := conn.Options.TenantDomain
		if tenant == "" {
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
	default:
		return Endpoint{}, errors.New("refreshing is not supported for this strategy")
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
