package httpclient

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryAfter reads the Retry-After header, as delay-seconds or as an HTTP date measured from
// now, into a wait between 0 and limit: a date in the past is 0, anything longer is limit, so
// a bogus header (or a badly skewed clock) cannot hold a client off for hours. ok is false
// when the header is absent or is neither form, for the caller to fall back on something else.
func RetryAfter(h http.Header, now time.Time, limit time.Duration) (wait time.Duration, ok bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil && secs >= 0 {
		if secs > int64(limit/time.Second) {
			return limit, true
		}
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, min(t.Sub(now), limit)), true
	}
	return 0, false
}
