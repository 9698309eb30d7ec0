package idp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// ErrDiscovery is wrapped by the errors of Resolver.Resolve when reading the IdP's discovery
// document failed in a way that may pass (network, timeout, 5xx, 429): retry with backoff. It
// does not wrap ErrNoEndpoint; a document that was read but cannot be used does.
var ErrDiscovery = errors.New("reading the IdP's discovery document failed")

const (
	wellKnownPath = "/.well-known/openid-configuration"
	// maxDiscoveryBytes bounds a discovery document; real ones are a few KiB.
	maxDiscoveryBytes = 256 << 10
	// discoveryTimeout bounds one read of a discovery document, whatever the client's timeout.
	discoveryTimeout = 15 * time.Second
)

// Resolver finds a connection's IdP token endpoint. For oidc and okta connections without
// options.token_endpoint it reads the IdP's OpenID Connect discovery document (OpenID Connect
// Discovery 1.0 §4); for all others it is EndpointForConnection. It keeps no cache: the caller
// keeps the resolved Endpoint. The zero value is ready to use.
type Resolver struct {
	// HTTPClient reads discovery documents; set it to the tenant's client for its CA bundle
	// and proxy. Redirects are never followed, whatever it says. Default: the system roots
	// and a 30 s timeout.
	HTTPClient *http.Client

	flights singleflight.Group // one read per document URL at a time
}

// Resolve returns the IdP token endpoint and OAuth client of conn. Errors name the connection
// and wrap ErrNoEndpoint (and ErrRefreshUnsupported where refreshing is impossible) like
// EndpointForConnection's, or ErrDiscovery when the discovery document could not be read for
// now, or the context's error when ctx ended first. The client secret is checked before any
// request, and no credential is sent with the discovery request.
func (r *Resolver) Resolve(ctx context.Context, conn *auth0.Connection) (Endpoint, error) {
	if conn == nil || (conn.Strategy != "oidc" && conn.Strategy != "okta") || conn.Options.TokenEndpoint != "" {
		return EndpointForConnection(conn)
	}
	what := describe(conn)
	o := conn.Options
	if _, err := authStyleFor(o.TokenEndpointAuthMethod, nil); err != nil {
		return Endpoint{}, connectionError(what, err)
	}
	if err := checkClient(o); err != nil {
		return Endpoint{}, connectionError(what, err)
	}
	docURL, issuer, err := discoveryURL(conn)
	if err != nil {
		return Endpoint{}, connectionError(what, err)
	}
	doc, err := r.discover(ctx, docURL)
	var f *discoveryFailure
	switch {
	case err == nil:
	case errors.As(err, &f) && f.transient:
		return Endpoint{}, fmt.Errorf("%w: %s: %s: %w", ErrDiscovery, what, displayURL(docURL), f.cause)
	case errors.As(err, &f):
		return Endpoint{}, fmt.Errorf("%w: %s: discovery document %s: %w", ErrNoEndpoint, what, displayURL(docURL), f.cause)
	default: // ctx ended
		return Endpoint{}, fmt.Errorf("%s: reading discovery document %s: %w", what, displayURL(docURL), err)
	}
	ep, err := doc.endpoint(issuer, o.TokenEndpointAuthMethod)
	if err != nil {
		return Endpoint{}, connectionError(what, fmt.Errorf("discovery document %s %w", displayURL(docURL), err))
	}
	return withClient(ep, conn), nil
}

// oidcEndpoint is options.token_endpoint of an oidc or okta connection.
func oidcEndpoint(conn *auth0.Connection) (Endpoint, error) {
	o := conn.Options
	style, err := authStyleFor(o.TokenEndpointAuthMethod, nil)
	if err != nil {
		return Endpoint{}, err
	}
	if o.TokenEndpoint == "" {
		if _, _, err := discoveryURL(conn); err != nil {
			return Endpoint{}, err
		}
		return Endpoint{}, errors.New("has no options.token_endpoint: it is in the IdP's discovery document, which only Resolver.Resolve reads")
	}
	if err := checkHTTPSURL(o.TokenEndpoint); err != nil {
		return Endpoint{}, fmt.Errorf("options.token_endpoint %w", err)
	}
	return Endpoint{TokenURL: o.TokenEndpoint, AuthStyle: style}, nil
}

// discoveryURL is where an oidc or okta connection's discovery document is, and the issuer it
// must name (empty: not checked): options.discovery_url, with the well-known path appended
// unless it ends with it, else options.issuer's well-known URL, else, for okta,
// https://<options.domain>, the issuer of Okta's org authorization server
// (https://developer.okta.com/docs/concepts/auth-servers/).
func discoveryURL(conn *auth0.Connection) (docURL, issuer string, err error) {
	o := conn.Options
	issuer, issuerOption := o.Issuer, "options.issuer"
	if issuer == "" && conn.Strategy == "okta" && o.Domain != "" {
		if err := httpclient.CheckHost(o.Domain); err != nil {
			return "", "", fmt.Errorf("options.domain %w", err)
		}
		issuer, issuerOption = "https://"+o.Domain, "options.domain"
	}
	base, option := o.DiscoveryURL, "options.discovery_url"
	if base == "" {
		base, option = issuer, issuerOption
	}
	if base == "" {
		return "", "", errors.New("has no options.token_endpoint, options.discovery_url or options.issuer to find the token endpoint by")
	}
	if err := checkHTTPSURL(base); err != nil {
		return "", "", fmt.Errorf("%s %w", option, err)
	}
	u, _ := url.Parse(base) // checkHTTPSURL parsed it
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", "", fmt.Errorf("%s must not have a query or fragment", option)
	}
	if !strings.HasSuffix(u.Path, wellKnownPath) {
		u.Path = strings.TrimSuffix(u.Path, "/") + wellKnownPath
		u.RawPath = ""
	}
	return u.String(), issuer, nil
}

// discoveryDoc is the part of a discovery document that is used.
type discoveryDoc struct {
	Issuer        string   `json:"issuer"`
	TokenEndpoint string   `json:"token_endpoint"`
	AuthMethods   []string `json:"token_endpoint_auth_methods_supported"`
}

// endpoint checks the document against the connection's issuer and auth method.
func (d *discoveryDoc) endpoint(issuer, method string) (Endpoint, error) {
	if issuer != "" && d.Issuer != "" && strings.TrimSuffix(d.Issuer, "/") != strings.TrimSuffix(issuer, "/") {
		return Endpoint{}, fmt.Errorf("names issuer %.200q, not the connection's %.200q", d.Issuer, issuer)
	}
	if d.TokenEndpoint == "" {
		return Endpoint{}, errors.New("has no token_endpoint")
	}
	if err := checkHTTPSURL(d.TokenEndpoint); err != nil {
		return Endpoint{}, fmt.Errorf("token_endpoint %w", err)
	}
	style, err := authStyleFor(method, d.AuthMethods)
	if err != nil {
		return Endpoint{}, err
	}
	return Endpoint{TokenURL: d.TokenEndpoint, AuthStyle: style}, nil
}

// discoveryFailure is a failed read of a discovery document; cause holds no response body.
type discoveryFailure struct {
	transient bool
	cause     error
}

func (f *discoveryFailure) Error() string { return f.cause.Error() }

// discover reads docURL once for all callers that want it at the same time. The read is not
// cut short when the caller that started it goes away; discoveryTimeout bounds it.
func (r *Resolver) discover(ctx context.Context, docURL string) (*discoveryDoc, error) {
	ch := r.flights.DoChan(docURL, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), discoveryTimeout)
		defer cancel()
		return r.fetch(fctx, docURL)
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*discoveryDoc), nil
	}
}

func (r *Resolver) fetch(ctx context.Context, docURL string) (*discoveryDoc, error) {
	fail := func(transient bool, format string, args ...any) error {
		return &discoveryFailure{transient: transient, cause: fmt.Errorf(format, args...)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, docURL, nil)
	if err != nil {
		return nil, fail(false, "is not a valid URL")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.httpClient().Do(req)
	if err != nil {
		return nil, fail(true, "%w", httpclient.TransportCause(err))
	}
	defer func() { _ = resp.Body.Close() }()
	var status strings.Builder
	httpclient.WriteStatus(&status, resp.StatusCode, "")
	switch code := resp.StatusCode; {
	case code >= 300 && code < 400:
		return nil, fail(false, "answered %s, and redirects are not followed", status.String())
	case code >= 500 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return nil, fail(true, "answered %s", status.String())
	case code != http.StatusOK:
		return nil, fail(false, "answered %s", status.String())
	}
	body, err := httpclient.ReadLimited(resp.Body, maxDiscoveryBytes)
	if errors.Is(err, httpclient.ErrTooLarge) {
		return nil, fail(false, "is larger than %d KiB", maxDiscoveryBytes>>10)
	}
	if err != nil {
		return nil, fail(true, "reading the body: %w", err)
	}
	var doc discoveryDoc
	if json.Unmarshal(body, &doc) != nil {
		return nil, fail(false, "is not a JSON object with string token_endpoint and issuer")
	}
	return &doc, nil
}

func (r *Resolver) httpClient() *http.Client {
	if r.HTTPClient == nil {
		return httpclient.New(nil, defaultTimeout)
	}
	return httpclient.WithoutRedirects(r.HTTPClient)
}

// authStyleFor maps options.token_endpoint_auth_method to x/oauth2's AuthStyle. Unset means
// client_secret_post, Auth0's own default, unless the IdP's discovery document lists the
// methods it supports and client_secret_basic is the only one of the two among them.
func authStyleFor(method string, supported []string) (oauth2.AuthStyle, error) {
	switch method {
	case "client_secret_post":
		return oauth2.AuthStyleInParams, nil
	case "client_secret_basic":
		return oauth2.AuthStyleInHeader, nil
	case "":
		if !slices.Contains(supported, "client_secret_post") && slices.Contains(supported, "client_secret_basic") {
			return oauth2.AuthStyleInHeader, nil
		}
		return oauth2.AuthStyleInParams, nil
	default:
		return 0, unsupported(fmt.Sprintf("options.token_endpoint_auth_method %.64q is not one the operator performs (client_secret_post, client_secret_basic)", method))
	}
}
