package httpclient

import (
	"encoding/json"
	"errors"
	"io"
)

// ErrTooLarge is returned by ReadLimited for a body longer than its limit.
var ErrTooLarge = errors.New("the response body exceeds the size limit")

// ReadLimited reads at most limit bytes of r. One byte more means the body is too large, which
// is ErrTooLarge and no data, never a silently truncated document; a failed read is its error.
func ReadLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, ErrTooLarge
	}
	return b, nil
}

// managementError is the part of a Management API error body that is used:
// {"statusCode":404,"error":"Not Found","message":"...","errorCode":"inexistent_user"}.
type managementError struct {
	Message   string `json:"message"`
	ErrorCode string `json:"errorCode"`
}

// ParseManagementError reads errorCode and message from an Auth0 Management API error body.
// A body that is not a JSON object with string fields there yields two empty strings, and
// nothing else of the body is kept. The text is the server's: scrub it before use.
func ParseManagementError(body []byte) (errorCode, message string) {
	eb := decodeOrZero[managementError](body)
	return eb.ErrorCode, eb.Message
}

// oauthError is an OAuth 2.0 error response (RFC 6749 §5.2), as Auth0's /oauth/token sends it:
// {"error":"invalid_grant","error_description":"..."}.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
}

// ParseOAuthError reads error and error_description from an OAuth 2.0 error body. A body that
// is not a JSON object with string fields there yields two empty strings, and nothing else of
// the body is kept. The text is the server's: scrub it before use.
func ParseOAuthError(body []byte) (code, description string) {
	eb := decodeOrZero[oauthError](body)
	return eb.Error, eb.ErrorDescription
}

// decodeOrZero decodes an error body, or returns the zero T when any of it does not decode:
// never half of a body. Each shape declares only the fields it uses, so that an odd value in
// another field cannot make the whole body unreadable.
func decodeOrZero[T any](body []byte) T {
	var v T
	if json.Unmarshal(body, &v) != nil {
		var zero T
		return zero
	}
	return v
}
