// Package httpclient is the HTTP plumbing shared by the operator's three outbound clients:
// the Auth0 Management API client (internal/auth0), the IdP refresh grant (internal/idp) and
// the Token Vault exchange (internal/tokenvault). Every request they send carries a credential
// (a client secret, a refresh token, a signed assertion), so they must agree on the rules that
// keep it safe; those rules live here once instead of in three copies that could drift apart:
//
//   - TLS 1.2 or later, trusting the system roots plus the tenant's CA bundle (NewTransport);
//   - never following a redirect, so a credential is never re-sent to the Location a token
//     endpoint names (New, WithoutRedirects, RefuseRedirects);
//   - a bounded response body, where one byte too many is an error and never a silently
//     truncated document (ReadLimited);
//   - a tenant domain that is a bare host[:port], for an https:// URL (CheckHost);
//   - reading Retry-After (RetryAfter) and Auth0's error bodies (ParseManagementError,
//     ParseOAuthError) without keeping the raw body, and rendering a failed exchange alike
//     (TransportCause, WriteStatus, WriteDetail).
//
// What differs between the clients stays with each client and is passed in or left to it: the
// size limits, the timeouts, how long a server may hold a client off, how an answer is
// classified, and the errors' prefixes and types.
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrInvalidCABundle is returned by NewTransport for a CA bundle that holds no PEM certificate.
// Its text is the problem alone, for the caller to prefix with the field's name.
var ErrInvalidCABundle = errors.New("contains no valid PEM certificate")

// NewTransport clones http.DefaultTransport, keeping its proxy settings and connection pooling,
// and requires TLS 1.2 or later. A non-empty caBundle (PEM) is added to the system roots (to
// an empty pool where the system roots cannot be loaded); one without a certificate is
// ErrInvalidCABundle.
func NewTransport(caBundle []byte) (*http.Transport, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if len(caBundle) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(caBundle) {
			return nil, ErrInvalidCABundle
		}
		tlsConfig.RootCAs = pool
	}
	base, ok := http.DefaultTransport.(*http.Transport)
	if !ok {
		return nil, errors.New("http.DefaultTransport is not an *http.Transport")
	}
	t := base.Clone()
	t.TLSClientConfig = tlsConfig
	return t, nil
}

// RefuseRedirects is the CheckRedirect of every client that carries credentials: a server
// that answers 3xx gets no second request, so a token, an assertion or a client secret is
// never re-posted to the Location it names. The 3xx response itself is returned, for the
// caller to fail as a non-2xx answer.
func RefuseRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// New returns a client that sends through rt (nil: http.DefaultTransport), bounds each
// request, body included, by timeout (0: no bound) and never follows a redirect.
func New(rt http.RoundTripper, timeout time.Duration) *http.Client {
	return &http.Client{Transport: rt, Timeout: timeout, CheckRedirect: RefuseRedirects}
}

// WithoutRedirects returns a copy of c that never follows a redirect, whatever c's own
// CheckRedirect says; c itself is not changed.
func WithoutRedirects(c *http.Client) *http.Client {
	cp := *c
	cp.CheckRedirect = RefuseRedirects
	return &cp
}

// CheckHost insists on a bare host or host:port, the form of an Auth0 tenant's domain, so a
// typo such as "https://tenant.auth0.com/" fails loudly instead of producing odd URLs. The
// error's text is the problem alone ("is empty", ...), for the caller to prefix with the
// field's name.
func CheckHost(host string) error {
	if host == "" {
		return errors.New("is empty")
	}
	if strings.ContainsAny(host, "/?#@ \t\r\n\\") {
		return fmt.Errorf("%q must be a host or host:port without scheme or path", host)
	}
	u, err := url.Parse("https://" + host)
	if err != nil || u.Host != host || u.Hostname() == "" {
		return fmt.Errorf("%q is not a valid host or host:port", host)
	}
	return nil
}

// TransportCause returns the cause of a failed http.Client.Do: the error inside its
// *url.Error, whose text would only repeat the method and the URL.
func TransportCause(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
