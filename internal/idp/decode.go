package idp

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
)

// maxAnswerSize is how much of a token answer x/oauth2 reads (1 MiB); the
// answer is read to the same bound here.
const maxAnswerSize = 1 << 20

// jsonAnswers is the http.RoundTripper under every refresh. x/oauth2 still
// does the grant; jsonAnswers only makes real token endpoints' answers
// readable to it:
//
//   - it sends "Accept: application/json", so GitHub answers in JSON rather
//     than form-encoded;
//   - an answer whose body starts (after white space) with '{' is handed on
//     as application/json whatever its Content-Type said: x/oauth2 reads a
//     text/plain or form-labelled body as a query string, which loses a
//     rotated refresh token and hides an invalid_grant;
//   - in a JSON object, expires_in is rewritten as whole seconds, or dropped
//     when it is not a usable duration (see secondsOf); x/oauth2 fails the
//     whole answer on a fractional expires_in, which would lose a rotated
//     refresh token the IdP has already spent the old one for.
//
// Anything else in the answer, status and headers included, is passed on as
// it came. It sends the request once: it never retries.
type jsonAnswers struct {
	base http.RoundTripper // nil: http.DefaultTransport
}

// RoundTrip sends a copy of req that asks for JSON and normalizes the answer.
func (t jsonAnswers) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	out := req.Clone(req.Context())
	out.Header.Set("Accept", "application/json")
	resp, err := base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	normalizeAnswer(resp)
	return resp, nil
}

// normalizeAnswer reads resp's body (up to maxAnswerSize) and replaces it
// with the normalized one. A body that fails to read or is too long is handed
// back as it came, bytes already read first, so that x/oauth2 fails on it as
// it would have without this step.
func normalizeAnswer(resp *http.Response) {
	orig := resp.Body
	body, err := io.ReadAll(io.LimitReader(orig, maxAnswerSize+1))
	if err != nil || len(body) > maxAnswerSize {
		rest := orig
		if err != nil {
			rest = io.NopCloser(errReader{err})
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(body), rest), orig}
		if looksLikeJSONObject(body) {
			resp.Header.Set("Content-Type", "application/json")
		}
		return
	}
	_ = orig.Close()
	if looksLikeJSONObject(body) {
		resp.Header.Set("Content-Type", "application/json")
		body = normalizeJSON(body)
		resp.ContentLength = int64(len(body))
		resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
}

// looksLikeJSONObject reports whether body's first non-white-space byte is '{'.
func looksLikeJSONObject(body []byte) bool {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{'
}

// normalizeJSON returns a JSON object body with expires_in as whole seconds,
// or without expires_in when it is no usable duration. Any other body,
// including one that is not a single valid JSON object, is returned as it is,
// for x/oauth2 to fail on.
func normalizeJSON(body []byte) []byte {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return body
	}
	raw, ok := fields["expires_in"]
	if !ok {
		return body
	}
	secs, ok := rawSeconds(raw)
	if ok && string(raw) == strconv.FormatInt(secs, 10) {
		return body
	}
	if ok {
		fields["expires_in"] = json.RawMessage(strconv.FormatInt(secs, 10))
	} else {
		delete(fields, "expires_in")
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	if enc.Encode(fields) != nil {
		return body
	}
	return bytes.TrimRight(out.Bytes(), "\n")
}

// rawSeconds reads a JSON expires_in: a number or a string holding one.
func rawSeconds(raw json.RawMessage) (int64, bool) {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return 0, false // e.g. 1e400, beyond float64
	}
	switch v := v.(type) {
	case float64:
		return secondsOf(v)
	case string:
		return stringSeconds(v)
	default:
		return 0, false
	}
}

// stringSeconds reads a duration in seconds written as a JSON number inside a
// string ("3600", " 3599.5 "); NaN, Inf, hex or empty strings are not.
func stringSeconds(s string) (int64, bool) {
	var f float64
	if json.Unmarshal([]byte(strings.TrimSpace(s)), &f) != nil {
		return 0, false
	}
	return secondsOf(f)
}

// secondsOf keeps the whole seconds of an expires_in value. Less than one
// second, NaN, or more than maxExpiresIn is no usable duration: the answer is
// read as if it had no expires_in.
func secondsOf(f float64) (int64, bool) {
	if math.IsNaN(f) || f < 1 || f > maxExpiresIn {
		return 0, false
	}
	return int64(f), true
}

// errReader fails every read with err.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// readCloser reads from one source and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
