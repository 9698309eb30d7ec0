package auth0

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// ErrorKind classifies an APIError so callers can decide between requeueing,
// surfacing a condition, or giving up without parsing status codes themselves.
type ErrorKind int

// The kinds of APIError. The zero value is deliberately not a valid kind so a
// forgotten assignment shows up as "unknown" rather than as a plausible kind.
const (
	// NotFound is a 404: the user or connection does not exist.
	NotFound ErrorKind = iota + 1
	// Unauthorized is a 401 from the Management API, or any rejection by the
	// token endpoint: the client credentials or the M2M token are not accepted.
	Unauthorized
	// Forbidden is a 403: the M2M token lacks a scope (see IsMissingScope) or
	// the tenant forbids the call.
	Forbidden
	// RateLimited is a 429, or a server-imposed hold that would outlast
	// Config.MaxRateLimitWait, or Auth0's global rate limit on /oauth/token (a 500 with
	// X-RateLimit-*), or an M2M token request not sent while such an answer holds them
	// (StatusCode 0; see Client.M2MQuota). RetryAfter says when trying again makes sense.
	RateLimited
	// ServerError is a 5xx. The client never retries these itself.
	ServerError
	// BadResponse is a response that could not be used: malformed JSON,
	// an oversize body or an unexpected content type.
	BadResponse
	// Network is a transport failure: DNS, TLS, connection reset, timeout.
	Network
	// BadRequest is any other 4xx, which usually means a bug in the request.
	BadRequest
)

// String returns the kind's name, used in logs and test failure messages.
func (k ErrorKind) String() string {
	switch k {
	case NotFound:
		return "NotFound"
	case Unauthorized:
		return "Unauthorized"
	case Forbidden:
		return "Forbidden"
	case RateLimited:
		return "RateLimited"
	case ServerError:
		return "ServerError"
	case BadResponse:
		return "BadResponse"
	case Network:
		return "Network"
	case BadRequest:
		return "BadRequest"
	default:
		return fmt.Sprintf("ErrorKind(%d)", int(k))
	}
}

// maxMessageLen bounds server-provided text copied into errors, so a hostile or
// broken server cannot flood logs or smuggle a whole body into a condition.
const maxMessageLen = 200

// APIError is returned for every failed call to Auth0. It carries only the
// status, Auth0's error code and a truncated message, both scrubbed of the
// secrets of the request and of anything token-shaped (safetext.Scrub): never
// a response body, a token or a header value.
type APIError struct {
	// StatusCode is the HTTP status, or 0 when no response was received
	// (Network) or the client gave up before sending (RateLimited).
	StatusCode int
	Kind       ErrorKind
	// Code is Auth0's errorCode (Management API) or OAuth2 error (token endpoint).
	Code string
	// Message is Auth0's message or OAuth2 error_description, scrubbed and truncated.
	Message string
	// RetryAfter is how long to wait before retrying, when the server said so.
	RetryAfter time.Duration
	// Method and Path identify the request; Path may contain a user or
	// connection id, which are identifiers, not secrets.
	Method, Path string
	// Err is the underlying cause for Network and BadResponse errors.
	Err error
}

// Error renders e.g.
// "auth0: GET /api/v2/users/github|1: 404 Not Found (inexistent_user): The user does not exist."
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("auth0: ")
	b.WriteString(e.Method)
	b.WriteByte(' ')
	b.WriteString(e.Path)
	b.WriteString(": ")
	httpclient.WriteStatus(&b, e.StatusCode, e.Kind.String())
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	httpclient.WriteDetail(&b, e.Message, e.Err, e.RetryAfter)
	return b.String()
}

// Unwrap exposes the cause so errors.Is(err, context.DeadlineExceeded) and
// errors.As(err, *tls.CertificateVerificationError) keep working.
func (e *APIError) Unwrap() error { return e.Err }

// MissingScope reports whether Auth0 refused the call because the M2M token
// lacks a scope, which needs a change in the Auth0 dashboard rather than a retry.
func (e *APIError) MissingScope() bool {
	return e.Kind == Forbidden && e.Code == "insufficient_scope"
}

func kindOf(err error) (*APIError, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr, true
	}
	return nil, false
}

func isKind(err error, k ErrorKind) bool {
	e, ok := kindOf(err)
	return ok && e.Kind == k
}

// IsNotFound reports whether err is an APIError of kind NotFound.
func IsNotFound(err error) bool { return isKind(err, NotFound) }

// IsUnauthorized reports whether err is an APIError of kind Unauthorized.
func IsUnauthorized(err error) bool { return isKind(err, Unauthorized) }

// IsForbidden reports whether err is an APIError of kind Forbidden.
func IsForbidden(err error) bool { return isKind(err, Forbidden) }

// IsMissingScope reports whether err is a 403 insufficient_scope.
func IsMissingScope(err error) bool {
	e, ok := kindOf(err)
	return ok && e.MissingScope()
}

// IsRateLimited reports whether err is a RateLimited APIError and how long
// the server asked to wait (0 when unknown).
func IsRateLimited(err error) (time.Duration, bool) {
	e, ok := kindOf(err)
	if !ok || e.Kind != RateLimited {
		return 0, false
	}
	return e.RetryAfter, true
}

// IsTransient reports whether retrying later may succeed without anyone
// changing configuration: rate limits, 5xx, network failures and bad responses.
func IsTransient(err error) bool {
	e, ok := kindOf(err)
	if !ok {
		return false
	}
	switch e.Kind {
	case RateLimited, ServerError, Network, BadResponse:
		return true
	default:
		return false
	}
}

// kindForStatus maps an HTTP status from the Management API to a kind.
func kindForStatus(status int) ErrorKind {
	switch {
	case status == http.StatusNotFound:
		return NotFound
	case status == http.StatusUnauthorized:
		return Unauthorized
	case status == http.StatusForbidden:
		return Forbidden
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status >= 500:
		return ServerError
	case status >= 400:
		return BadRequest
	default:
		return BadResponse
	}
}

// newStatusError builds the APIError for a non-2xx Management API response.
// Only errorCode and message are taken from the body
// ({"statusCode":404,"error":"Not Found","message":"...","errorCode":"inexistent_user"});
// anything that does not parse is ignored so the raw body can never leak into the error.
// secrets are the values sent or held for the request (the M2M access token, the client
// secret): they are scrubbed from the server's text and not kept.
func newStatusError(method, path string, status int, body []byte, secrets ...string) *APIError {
	code, message := httpclient.ParseManagementError(body)
	return &APIError{
		StatusCode: status,
		Kind:       kindForStatus(status),
		Code:       safetext.ScrubCode(code, 64, secrets...),
		Message:    safetext.Scrub(message, maxMessageLen, secrets...),
		Method:     method,
		Path:       path,
	}
}
