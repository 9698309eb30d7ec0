package expiry

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxJWTLen bounds the work spent on a string that merely looks like a JWT.
const maxJWTLen = 64 << 10

// maxNumericDate is 9999-12-31T23:59:59Z; later "dates" are garbage.
const maxNumericDate = 253402300799

// JWTExpiry reads the exp (and iat, when present and valid) claims of a JWT
// access token, for IdPs that issue JWTs but omit expires_in. The signature
// is NOT checked: the result is only a hint for when to refresh, never a
// trust decision. ok is false unless token is a JWS in compact form with a
// JSON header and payload and a positive numeric exp.
func JWTExpiry(token string) (exp, iat time.Time, ok bool) {
	if len(token) > maxJWTLen || strings.Count(token, ".") != 2 {
		return time.Time{}, time.Time{}, false
	}
	parts := strings.SplitN(token, ".", 3)
	var header map[string]json.RawMessage
	if !decodeSegment(parts[0], &header) {
		return time.Time{}, time.Time{}, false
	}
	// A map, not a struct: claim names are case-sensitive and
	// encoding/json matches struct fields case-insensitively.
	var claims map[string]json.RawMessage
	if !decodeSegment(parts[1], &claims) {
		return time.Time{}, time.Time{}, false
	}
	exp, ok = numericDate(claims["exp"])
	if !ok {
		return time.Time{}, time.Time{}, false
	}
	iat, _ = numericDate(claims["iat"])
	return exp, iat, true
}

// decodeSegment decodes one base64url segment holding a JSON object,
// tolerating '=' padding although RFC 7515 forbids it.
func decodeSegment(seg string, v *map[string]json.RawMessage) bool {
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return false
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return false
	}
	return json.Unmarshal(raw, v) == nil && *v != nil
}

// numericDate parses an RFC 7519 NumericDate: a JSON number of seconds since
// the epoch, integer or fractional. Strings and non-positive values are rejected.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	s := string(bytes.TrimSpace(raw))
	if s == "" || s == "null" || s[0] == '"' {
		return time.Time{}, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		if i <= 0 || i > maxNumericDate {
			return time.Time{}, false
		}
		return time.Unix(i, 0).UTC(), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}
