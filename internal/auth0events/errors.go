package auth0events

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// ErrOffsetExpired is matched (errors.Is) by the error Subscribe returns when Auth0 no longer
// has the offset it was asked to resume from: HTTP 410, or an "event: error" frame with code
// cursor_expired or invalid_cursor. Events since that offset are lost to the stream: re-read
// the state they would have announced once, then subscribe again from a time.
var ErrOffsetExpired = errors.New("the events offset has expired")

// eventsPath is the endpoint, as errors name it (without the query, which holds the offset).
const eventsPath = "/api/v2/events"

// maxMessageLen bounds server text copied into an error.
const maxMessageLen = 200

// Error is a failure of the events stream. It carries the status, Auth0's code and a scrubbed,
// clipped message: never a response body, a header or the token.
type Error struct {
	// StatusCode is the HTTP status; 0 for a failure without one (network, an error frame).
	StatusCode int
	// Code is Auth0's errorCode, or the code of an "event: error" frame.
	Code string
	// Message is Auth0's message, scrubbed and clipped.
	Message string
	// RetryAfter is how long the server asked the client to wait (429).
	RetryAfter time.Duration
	// Err is the cause: a transport error, or a description of a bad answer.
	Err error
}

// Error renders e.g.
// "auth0events: GET /api/v2/events: 403 Forbidden (insufficient_scope): Insufficient scope".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("auth0events: GET " + eventsPath + ": ")
	switch {
	case e.StatusCode != 0:
		httpclient.WriteStatus(&b, e.StatusCode, "")
	case e.Code != "":
		b.WriteString("stream error")
	default:
		b.WriteString("network")
	}
	if e.Code != "" {
		b.WriteString(" (" + e.Code + ")")
	}
	httpclient.WriteDetail(&b, e.Message, e.Err, e.RetryAfter)
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrOffsetExpired) hold for an expired or unknown offset.
func (e *Error) Is(target error) bool {
	return target == ErrOffsetExpired &&
		(e.StatusCode == http.StatusGone || e.Code == "cursor_expired" || e.Code == "invalid_cursor")
}

// IsNotAuthorized reports whether Auth0 refused the token (401) or its scopes (403, e.g. no
// read:events): waiting will not help, the tenant's credentials or grants must change.
func IsNotAuthorized(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden)
}

// statusError builds the Error of a non-200 answer from its (bounded) body; token is scrubbed
// from the server's text.
func statusError(status int, body []byte, retryAfter time.Duration, token string) *Error {
	code, msg := httpclient.ParseManagementError(body)
	return &Error{
		StatusCode: status,
		Code:       safetext.ScrubCode(code, 64, token),
		Message:    safetext.Scrub(msg, maxMessageLen, token),
		RetryAfter: retryAfter,
	}
}

// streamFailure builds the Error of an "event: error" frame.
func streamFailure(se streamError, token string) *Error {
	return &Error{
		Code:    safetext.ScrubCode(se.Code, 64, token),
		Message: safetext.Scrub(se.Message, maxMessageLen, token),
	}
}

// retryable reports whether a failure is worth waiting out: rate limits, server errors,
// timeouts, failures without a status, and error frames other than an expired offset.
func retryable(e *Error) bool {
	if errors.Is(e, ErrOffsetExpired) {
		return false
	}
	switch s := e.StatusCode; {
	case s == 0:
		return true
	case s == http.StatusTooManyRequests, s == http.StatusRequestTimeout, s >= 500:
		return true
	case s == http.StatusOK:
		return true // a 200 that is not an event stream: a proxy's page, say
	}
	return false
}
