package tokenvault

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// Kind classifies a failed exchange by what the caller should do about it.
type Kind int

// The kinds of Error. The zero value is not a valid kind.
const (
	// IdentityNotFound is a 401 that is not about the client: the subject
	// token was refused or the user has no account linked on the connection
	// in Token Vault. Terminal for the binding until its spec changes or the
	// user connects the account (Ready=False IdentityNotFound).
	IdentityNotFound Kind = iota + 1
	// ClientAuthFailed is a 401 invalid_client, or a 401 access_denied whose
	// description is "Unauthorized" (Auth0's answer to a client it does not
	// know or whose credentials are wrong): Auth0 did not accept the client
	// assertion or secret. A tenant problem (TokenVaultNotAuthorized), never
	// one of each binding.
	ClientAuthFailed
	// NotAuthorized is a 403: the client may not use Token Vault (grant type,
	// Privileged Worker access, IP allow-list). A tenant problem
	// (TokenVaultNotAuthorized).
	NotAuthorized
	// RateLimited is a 429, or a call made while an earlier 429's
	// Retry-After has not passed. Error.RetryAfter says when to try again.
	RateLimited
	// Transient is a 5xx, a network failure, a redirect, or a response that
	// could not be used (malformed, oversize, no access_token). Back off.
	Transient
	// BadRequest is any other 4xx, usually a connection that is not set up
	// for Token Vault or a bug in the request.
	BadRequest
)

func (k Kind) String() string {
	switch k {
	case IdentityNotFound:
		return "IdentityNotFound"
	case ClientAuthFailed:
		return "ClientAuthFailed"
	case NotAuthorized:
		return "NotAuthorized"
	case RateLimited:
		return "RateLimited"
	case Transient:
		return "Transient"
	case BadRequest:
		return "BadRequest"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Sentinels for errors.Is: errors.Is(err, ErrIdentityNotFound) holds for
// every *Error of that kind.
var (
	ErrIdentityNotFound = errors.New("tokenvault: identity not found in Token Vault")
	ErrClientAuthFailed = errors.New("tokenvault: client authentication failed")
	ErrNotAuthorized    = errors.New("tokenvault: client not authorized for Token Vault")
	ErrRateLimited      = errors.New("tokenvault: rate limited")
	ErrTransient        = errors.New("tokenvault: transient failure")
	ErrBadRequest       = errors.New("tokenvault: request rejected")
)

func (k Kind) sentinel() error {
	switch k {
	case IdentityNotFound:
		return ErrIdentityNotFound
	case ClientAuthFailed:
		return ErrClientAuthFailed
	case NotAuthorized:
		return ErrNotAuthorized
	case RateLimited:
		return ErrRateLimited
	case Transient:
		return ErrTransient
	case BadRequest:
		return ErrBadRequest
	}
	return nil
}

// maxDescription bounds server text copied into an error.
const maxDescription = 200

// Error is a failed exchange. It carries the status, the OAuth error code and
// a clipped description, with what the request sent and anything token-like
// masked (safetext.Scrub): never a token, an assertion, a key or a secret.
type Error struct {
	Kind       Kind
	StatusCode int // 0 when no response was received
	// Code is the OAuth2 error, e.g. "access_denied".
	Code        string
	Description string
	// RetryAfter is how long to wait before trying again (RateLimited).
	RetryAfter time.Duration
	// Connection and UserID identify the request; ids, not secrets.
	Connection, UserID string
	// Refusal says which setting of the worker application Auth0 objected
	// to (ClientAuthFailed, NotAuthorized); "" when it cannot be told.
	Refusal Refusal
	// Err is the cause of Transient errors without a usable response.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "tokenvault: exchange for user %q on connection %q: ", e.UserID, e.Connection)
	httpclient.WriteStatus(&b, e.StatusCode, e.Kind.String())
	if e.Code != "" {
		fmt.Fprintf(&b, " (%s)", e.Code)
	}
	httpclient.WriteDetail(&b, e.Description, e.Err, e.RetryAfter)
	if hint := e.Refusal.hint(); hint != "" {
		b.WriteString("; ")
		b.WriteString(hint)
	}
	return b.String()
}

// Unwrap exposes the cause, e.g. context.DeadlineExceeded.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's kind.
func (e *Error) Is(target error) bool {
	s := e.Kind.sentinel()
	return s != nil && target == s
}

// KindOf returns the kind of err, or 0 when err is not an *Error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return 0
}

// RetryAfter returns how long a RateLimited error asks to wait, and whether
// err is one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.Kind == RateLimited {
		return e.RetryAfter, true
	}
	return 0, false
}

// IsTransient reports whether trying again later may succeed without a
// configuration change.
func IsTransient(err error) bool {
	k := KindOf(err)
	return k == Transient || k == RateLimited
}
