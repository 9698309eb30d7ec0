package idp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/metrics"
	"github.com/idptoken/idptoken-operator/internal/safetext"

	"golang.org/x/oauth2"
)

// ErrInvalidGrant means the IdP rejected the refresh token (expired, revoked
// or already spent): only a new login through Auth0 can fix it.
// errors.Is(err, ErrInvalidGrant) works on errors returned by Refresh.
var ErrInvalidGrant = errors.New("refresh token rejected by the identity provider (invalid_grant)")

// ErrorKind tells the caller what to do about a failed refresh.
type ErrorKind int

// Kinds of RefreshError.
const (
	// InvalidGrant: the refresh token is dead; the user must log in again.
	InvalidGrant ErrorKind = iota + 1
	// InvalidClient: the IdP rejected the OAuth client (id, secret, or its
	// permission to use refresh tokens): invalid_client, unauthorized_client,
	// deleted_client, incorrect_client_credentials, or any 401 whose code is
	// not invalid_grant. The connection must be fixed.
	InvalidClient
	// Transient: 5xx, 429, network failure or an IdP saying it is
	// temporarily unavailable; retry with backoff.
	Transient
	// BadResponse: a success status with a body that has no usable token.
	// Treated as transient, but the IdP may already have spent a rotating
	// refresh token.
	BadResponse
	// Rejected: any other 4xx (invalid_request, invalid_scope, ...).
	Rejected
)

// String names the kind for logs and conditions.
func (k ErrorKind) String() string {
	switch k {
	case InvalidGrant:
		return "InvalidGrant"
	case InvalidClient:
		return "InvalidClient"
	case Transient:
		return "Transient"
	case BadResponse:
		return "BadResponse"
	case Rejected:
		return "Rejected"
	default:
		return fmt.Sprintf("ErrorKind(%d)", int(k))
	}
}

const maxDescriptionLen = 200

// RefreshError is a failed refresh. It carries the status, the OAuth2 error
// code and a truncated error_description, both scrubbed of the refresh token,
// the client secret and anything token-shaped (safetext.Scrub), never the
// response body, tokens or the client secret.
type RefreshError struct {
	Kind ErrorKind
	// StatusCode is the HTTP status; 0 when no response was received.
	StatusCode  int
	Code        string // OAuth2 "error"
	Description string // OAuth2 "error_description", scrubbed and truncated
	RetryAfter  time.Duration
	// TokenURL is the endpoint without query or credentials.
	TokenURL string
	// Err is the transport error for network failures.
	Err error
}

// Error renders e.g. "idp: refreshing at https://oauth2.googleapis.com/token:
// 400 Bad Request: invalid_grant: Token has been expired or revoked."
func (e *RefreshError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "idp: refreshing at %s: ", e.TokenURL)
	noStatus := e.Kind.String()
	if e.Kind == Transient {
		noStatus = "network error"
	}
	httpclient.WriteStatus(&b, e.StatusCode, noStatus)
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(e.Code)
	}
	httpclient.WriteDetail(&b, e.Description, e.Err, e.RetryAfter)
	return b.String()
}

// Unwrap exposes a transport cause.
func (e *RefreshError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrInvalidGrant) true for InvalidGrant errors.
func (e *RefreshError) Is(target error) bool {
	return target == ErrInvalidGrant && e.Kind == InvalidGrant
}

// IsTransient reports whether retrying the same refresh later may succeed.
func IsTransient(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && (re.Kind == Transient || re.Kind == BadResponse)
}

// IsInvalidClient reports whether the IdP rejected the OAuth client itself,
// so the endpoint (connection options) needs fixing rather than the user.
func IsInvalidClient(err error) bool {
	var re *RefreshError
	return errors.As(err, &re) && re.Kind == InvalidClient
}

// invalidGrantCodes are the error codes meaning "this refresh token is dead".
// GitHub says bad_refresh_token where RFC 6749 says invalid_grant.
var invalidGrantCodes = map[string]bool{"invalid_grant": true, "bad_refresh_token": true}

// invalidClientCodes are the error codes meaning "this OAuth client may not
// do this", whatever the status. GitHub says incorrect_client_credentials
// (with HTTP 200), Google deleted_client.
var invalidClientCodes = map[string]bool{
	"invalid_client": true, "unauthorized_client": true, "incorrect_client_credentials": true, "deleted_client": true,
}

// deadRefreshTokenRequest recognises IdPs that say invalid_request where RFC 6749 says
// invalid_grant for a refresh token they no longer accept: Bitbucket answers
// {"error":"invalid_request","error_description":"Invalid refresh_token"}. Only an
// invalid_request whose description is about the refresh token counts.
func deadRefreshTokenRequest(code, description string) bool {
	if code != "invalid_request" {
		return false
	}
	d := strings.ToLower(description)
	aboutToken := strings.Contains(d, "refresh_token") || strings.Contains(d, "refresh token")
	return aboutToken && (strings.Contains(d, "invalid") || strings.Contains(d, "expired") || strings.Contains(d, "revoked"))
}

// transientCodes are OAuth2 error codes for server-side trouble (RFC 6749 §4.1.2.1).
var transientCodes = map[string]bool{"temporarily_unavailable": true, "server_error": true}

// classify turns an x/oauth2 error into a RefreshError. RetrieveError.Error()
// embeds the response body, so only its structured fields are used. secrets are
// the values sent or held for the request (refresh token, client secret, Basic
// credentials): an IdP may echo them, so they are scrubbed from its text here,
// and they go no further than this call.
func classify(ctx context.Context, tokenURL string, err error, now time.Time, secrets ...string) error {
	if ctx.Err() != nil {
		return fmt.Errorf("idp: refreshing at %s: %w", tokenURL, ctx.Err())
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fromRetrieveError(tokenURL, re, now, secrets...)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &RefreshError{Kind: Transient, TokenURL: tokenURL, Err: ue.Err}
	}
	// Remaining errors are x/oauth2's own, built with %v from the body or
	// from a body read failure; their text is not reused.
	msg := err.Error()
	switch {
	case strings.Contains(msg, "missing access_token"):
		return &RefreshError{Kind: BadResponse, TokenURL: tokenURL, Err: errors.New("response has no access_token")}
	case strings.HasPrefix(msg, "oauth2: cannot fetch token"):
		return &RefreshError{Kind: Transient, TokenURL: tokenURL, Err: errors.New("reading the response failed")}
	default:
		return &RefreshError{Kind: BadResponse, TokenURL: tokenURL, Err: errors.New("response could not be parsed")}
	}
}

// fromRetrieveError classifies on the raw error code and keeps only scrubbed
// server text, so the RefreshError never holds a secret the IdP echoed.
func fromRetrieveError(tokenURL string, re *oauth2.RetrieveError, now time.Time, secrets ...string) *RefreshError {
	e := &RefreshError{
		TokenURL:    tokenURL,
		Code:        safetext.ScrubCode(re.ErrorCode, 64, secrets...),
		Description: safetext.Scrub(re.ErrorDescription, maxDescriptionLen, secrets...),
	}
	if re.Response != nil {
		e.StatusCode = re.Response.StatusCode
	}
	switch {
	case invalidGrantCodes[re.ErrorCode] || deadRefreshTokenRequest(re.ErrorCode, re.ErrorDescription):
		e.Kind = InvalidGrant
	case e.StatusCode == http.StatusUnauthorized:
		// The client failed to authenticate, whatever code came with it.
		e.Kind = InvalidClient
	case e.StatusCode == http.StatusTooManyRequests:
		e.Kind = Transient
		e.RetryAfter = retryAfter(re.Response.Header, now)
	case e.StatusCode >= 500 || e.StatusCode == http.StatusRequestTimeout || transientCodes[re.ErrorCode]:
		e.Kind = Transient
	case invalidClientCodes[re.ErrorCode]:
		e.Kind = InvalidClient
	default:
		e.Kind = Rejected
	}
	return e
}

// retryAfter parses Retry-After (seconds or HTTP date); 0 when absent.
func retryAfter(h http.Header, now time.Time) time.Duration {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs > 0 {
		return time.Duration(min(secs, maxExpiresIn)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// displayURL strips query, fragment and credentials from a token URL before
// it goes into an error message.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	return u.Scheme + "://" + u.Host + u.EscapedPath()
}

// resultOf names a Refresh error for the idptoken_idp_refresh_total metric.
func resultOf(err error) string {
	var re *RefreshError
	if !errors.As(err, &re) {
		return metrics.ResultError
	}
	switch re.Kind {
	case InvalidGrant:
		return metrics.ResultInvalidGrant
	case InvalidClient:
		return metrics.ResultInvalidClient
	case Transient:
		return metrics.ResultTransient
	case BadResponse:
		return metrics.ResultBadResponse
	case Rejected:
		return metrics.ResultRejected
	default:
		return metrics.ResultError
	}
}
