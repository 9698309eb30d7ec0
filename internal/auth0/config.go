package auth0

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

// Defaults chosen to stay well inside Auth0's Management API limits (2 rps on
// free tenants) while keeping reconciles responsive.
const (
	DefaultRequestsPerSecond = 2
	DefaultBurst             = 2
	DefaultTimeout           = 10 * time.Second
	DefaultMaxResponseBytes  = 1 << 20
	DefaultMaxRateLimitWait  = 30 * time.Second
	DefaultUserAgent         = "idptoken-operator"
)

// Config describes one Auth0 tenant and how politely to talk to it.
// Zero values select the documented defaults.
type Config struct {
	// Domain is the tenant host, optionally with a port ("example.eu.auth0.com").
	// The client always uses HTTPS; a scheme or path is rejected.
	Domain string
	// Audience of the M2M token; default "https://<Domain>/api/v2/".
	Audience     string
	ClientID     string
	ClientSecret string
	// CABundle is optional PEM added to the system roots for every HTTPS call
	// made with this tenant's client, including IdP calls via HTTPClient.
	CABundle []byte
	// RequestsPerSecond and Burst configure the client-side token bucket every
	// Management API request waits on. +Inf disables it.
	RequestsPerSecond float64
	Burst             int
	// Timeout bounds each HTTP request.
	Timeout time.Duration
	// MaxResponseBytes bounds every response body; larger bodies are an error,
	// never a partial parse.
	MaxResponseBytes int64
	// MaxRateLimitWait bounds how long one call waits on server-side rate
	// limits before returning a RateLimited error.
	MaxRateLimitWait time.Duration
	// Clock drives every wait, so tests can use a fake clock.
	Clock     clock.Clock
	UserAgent string
	// MetricsTenant labels this tenant's request metrics: the tenant object's kind and key,
	// "Auth0Tenant/<namespace>/<name>" or "ClusterAuth0Tenant/<name>". Empty: the Domain.
	MetricsTenant string
}

// withDefaults validates cfg and fills in defaults. Errors name the field,
// never its value, as the value may be a secret.
func (cfg Config) withDefaults() (Config, error) {
	if err := validateDomain(cfg.Domain); err != nil {
		return cfg, err
	}
	if cfg.ClientID == "" {
		return cfg, errors.New("auth0: config: ClientID is empty")
	}
	if cfg.ClientSecret == "" {
		return cfg, errors.New("auth0: config: ClientSecret is empty")
	}
	if math.IsNaN(cfg.RequestsPerSecond) || cfg.RequestsPerSecond < 0 {
		return cfg, errors.New("auth0: config: RequestsPerSecond must be positive")
	}
	if cfg.Burst < 0 || cfg.Timeout < 0 || cfg.MaxResponseBytes < 0 || cfg.MaxRateLimitWait < 0 {
		return cfg, errors.New("auth0: config: Burst, Timeout, MaxResponseBytes and MaxRateLimitWait must not be negative")
	}
	if cfg.Audience == "" {
		cfg.Audience = "https://" + cfg.Domain + "/api/v2/"
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.MaxRateLimitWait == 0 {
		cfg.MaxRateLimitWait = DefaultMaxRateLimitWait
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	return cfg, nil
}

// validateDomain insists on a bare host[:port] so that a typo such as
// "https://tenant.auth0.com/" fails loudly instead of producing odd URLs.
func validateDomain(domain string) error {
	if err := httpclient.CheckHost(domain); err != nil {
		return fmt.Errorf("auth0: config: Domain %w", err)
	}
	return nil
}

// limit converts RequestsPerSecond to a rate.Limit, mapping +Inf to rate.Inf.
func (cfg Config) limit() rate.Limit {
	if math.IsInf(cfg.RequestsPerSecond, 1) {
		return rate.Inf
	}
	return rate.Limit(cfg.RequestsPerSecond)
}

// newHTTPClient builds the tenant's HTTP client: the default transport's
// proxy and pooling behaviour, TLS 1.2+, the system roots plus CABundle,
// a per-request timeout, and no redirects (NoRedirects).
func newHTTPClient(cfg Config) (*http.Client, error) {
	transport, err := httpclient.NewTransport(cfg.CABundle)
	switch {
	case errors.Is(err, httpclient.ErrInvalidCABundle):
		return nil, fmt.Errorf("auth0: config: CABundle %w", err)
	case err != nil:
		return nil, fmt.Errorf("auth0: %w", err)
	}
	instrumented := metrics.InstrumentAuth0(cfg.MetricsTenant, cfg.Domain, transport)
	return httpclient.New(instrumented, cfg.Timeout), nil
}

// NoRedirects is the CheckRedirect of every client that carries credentials: a token endpoint
// that answers 3xx gets no second request, so a refresh token or client secret is never
// re-posted to the Location it names. The 3xx response itself is returned, and fails as a
// non-2xx answer. It is httpclient.RefuseRedirects.
func NoRedirects(req *http.Request, via []*http.Request) error {
	return httpclient.RefuseRedirects(req, via)
}
