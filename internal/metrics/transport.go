package metrics

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Endpoint kinds, the values of the endpoint label of the Auth0 metrics. A kind never contains an
// id or a query, so the label stays bounded however many users a tenant has.
const (
	EndpointOAuthToken    = "oauth_token"
	EndpointTokenExchange = "token_exchange"
	EndpointUsers         = "users"
	EndpointConnections   = "connections"
	EndpointOther         = "other"
)

type endpointKey struct{}

// WithEndpoint marks the requests sent with ctx as being of the given endpoint kind, for calls the
// path alone does not tell apart (a Token Vault exchange is a POST to /oauth/token too).
func WithEndpoint(ctx context.Context, kind string) context.Context {
	return context.WithValue(ctx, endpointKey{}, kind)
}

// InstrumentAuth0 wraps next so that every request to the Auth0 tenant at domain (host or
// host:port) is counted and timed under the tenant label, and the tenant's remaining rate budget
// is recorded. Requests to other hosts, such as IdP token endpoints sent through the same client,
// pass through uncounted. An empty tenant is labelled with the domain.
func InstrumentAuth0(tenant, domain string, next http.RoundTripper) http.RoundTripper {
	if tenant == "" {
		tenant = domain
	}
	return &auth0Transport{tenant: tenant, domain: domain, next: next}
}

type auth0Transport struct {
	tenant string
	domain string
	next   http.RoundTripper
}

func (t *auth0Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	endpoint, ok := t.endpoint(req)
	if !ok {
		return t.next.RoundTrip(req)
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(req)
	auth0Duration.WithLabelValues(t.tenant, endpoint).Observe(time.Since(start).Seconds())
	if err != nil {
		auth0Requests.WithLabelValues(t.tenant, endpoint, "error").Inc()
		return resp, err
	}
	auth0Requests.WithLabelValues(t.tenant, endpoint, strconv.Itoa(resp.StatusCode)).Inc()
	if v, perr := strconv.ParseFloat(resp.Header.Get("X-Ratelimit-Remaining"), 64); perr == nil && v >= 0 {
		auth0Remaining.WithLabelValues(t.tenant).Set(v)
	}
	return resp, nil
}

// endpoint names the kind of an Auth0 request, or reports false for a request that is not one.
func (t *auth0Transport) endpoint(req *http.Request) (string, bool) {
	if req.URL == nil || !strings.EqualFold(req.URL.Host, t.domain) {
		return "", false
	}
	if kind, ok := req.Context().Value(endpointKey{}).(string); ok && kind != "" {
		return kind, true
	}
	path := req.URL.Path
	switch {
	case path == "/oauth/token":
		return EndpointOAuthToken, true
	case path == "/api/v2/users" || strings.HasPrefix(path, "/api/v2/users/"):
		return EndpointUsers, true
	case path == "/api/v2/connections" || strings.HasPrefix(path, "/api/v2/connections/"):
		return EndpointConnections, true
	case strings.HasPrefix(path, "/api/v2/"):
		return EndpointOther, true
	default:
		return "", false
	}
}
