package auth0

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The quota headers (see quota.go for their form), and the entity each describes
// (QuotaBucket.Entity).
var quotaHeaders = []struct{ header, entity string }{
	{"Auth0-Client-Quota-Limit", "client"},
	{"Auth0-Organization-Quota-Limit", "organization"},
}

// Bounds of what one quota header may contribute: a few buckets with short names, so server
// text cannot grow the state or the metric's label set.
const (
	maxQuotaBuckets  = 4
	maxBucketNameLen = 32
	maxQuotaResetIn  = 366 * 24 * 60 * 60 // seconds
)

// parseQuotaHeaders reads both quota headers; named reports whether either was present.
func parseQuotaHeaders(h http.Header, now time.Time) (buckets []QuotaBucket, named bool) {
	for _, qh := range quotaHeaders {
		values := h.Values(qh.header)
		if len(values) == 0 {
			continue
		}
		named = true
		buckets = append(buckets, parseQuotaHeader(qh.entity, strings.Join(values, ","), now)...)
	}
	return buckets, named
}

// parseQuotaHeader reads one quota header's value. A malformed bucket is left out, the others
// are kept; of two buckets with one name, the first counts.
func parseQuotaHeader(entity, value string, now time.Time) []QuotaBucket {
	var out []QuotaBucket
	for part := range strings.SplitSeq(value, ",") {
		b, ok := parseQuotaBucket(part, now)
		if !ok || slices.ContainsFunc(out, func(o QuotaBucket) bool { return o.Name == b.Name }) {
			continue
		}
		b.Entity = entity
		out = append(out, b)
		if len(out) == maxQuotaBuckets {
			break
		}
	}
	return out
}

// parseQuotaBucket reads "b=per_hour;q=10;r=7;t=3540". b and r are required; q and t may be
// missing; unknown keys are ignored; a present value that does not parse spoils the bucket.
func parseQuotaBucket(s string, now time.Time) (QuotaBucket, bool) {
	var b QuotaBucket
	hasRemaining := false
	for item := range strings.SplitSeq(s, ";") {
		key, val, found := strings.Cut(strings.TrimSpace(item), "=")
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		if !found {
			if key == "" {
				continue
			}
			return b, false
		}
		var ok bool
		switch key {
		case "b":
			b.Name, ok = val, validBucketName(val)
		case "q":
			b.Quota, ok = quotaCount(val, 1<<53)
		case "r":
			b.Remaining, ok = quotaCount(val, 1<<53)
			hasRemaining = true
		case "t":
			var secs int64
			secs, ok = quotaCount(val, maxQuotaResetIn)
			b.ResetAt = now.Add(time.Duration(secs) * time.Second)
		default:
			ok = true
		}
		if !ok {
			return b, false
		}
	}
	return b, b.Name != "" && hasRemaining
}

// quotaCount parses a non-negative decimal of at most limit.
func quotaCount(s string, limit int64) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n >= 0 && n <= limit
}

// validBucketName accepts a short name of lower-case letters, digits and underscores.
func validBucketName(s string) bool {
	if s == "" || len(s) > maxBucketNameLen {
		return false
	}
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}
