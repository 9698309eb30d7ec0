/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// M2MQuota is a fine-grained M2M token quota (Auth0's enforced
// token_quota.client_credentials): how many client-credentials tokens each M2M client may
// obtain per UTC hour and per UTC day. 0 leaves that bucket out; the zero value is no quota.
type M2MQuota struct {
	PerHour, PerDay int
}

// quotaBucket is one bucket of a client's quota at a moment.
type quotaBucket struct {
	name             string // per_hour | per_day
	quota, remaining int
	reset            time.Time
}

// quotaUse counts one client's tokens in the current hour and day.
type quotaUse struct {
	hour, day       time.Time // starts of the windows the counts belong to
	inHour, inToday int
}

// SetM2MQuota replaces the M2M token quota (Options.M2MQuota) from now on; tokens already
// counted in the current hour and day stay counted. The zero value removes it.
func (s *Server) SetM2MQuota(q M2MQuota) {
	if q.PerHour < 0 || q.PerDay < 0 {
		panic("auth0sim: SetM2MQuota: negative quota")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m2mQuota = q
}

// quotaBucketsLocked returns the client's buckets at now (remaining before this request).
func (s *Server) quotaBucketsLocked(clientID string, now time.Time) []quotaBucket {
	q := s.m2mQuota
	if q == (M2MQuota{}) {
		return nil
	}
	u := s.quotaUseLocked(clientID, now)
	var out []quotaBucket
	if q.PerHour > 0 {
		out = append(out, quotaBucket{name: "per_hour", quota: q.PerHour, remaining: max(0, q.PerHour-u.inHour), reset: u.hour.Add(time.Hour)})
	}
	if q.PerDay > 0 {
		out = append(out, quotaBucket{name: "per_day", quota: q.PerDay, remaining: max(0, q.PerDay-u.inToday), reset: u.day.AddDate(0, 0, 1)})
	}
	return out
}

// quotaUseLocked returns the client's counts, starting new windows when the hour or day turned.
func (s *Server) quotaUseLocked(clientID string, now time.Time) *quotaUse {
	utc := now.UTC()
	hour := utc.Truncate(time.Hour)
	day := time.Date(utc.Year(), utc.Month(), utc.Day(), 0, 0, 0, 0, time.UTC)
	u := s.quotaUse[clientID]
	if u == nil {
		u = &quotaUse{}
		s.quotaUse[clientID] = u
	}
	if !u.hour.Equal(hour) {
		u.hour, u.inHour = hour, 0
	}
	if !u.day.Equal(day) {
		u.day, u.inToday = day, 0
	}
	return u
}

// exhausted returns the first bucket with nothing left.
func exhausted(buckets []quotaBucket) (quotaBucket, bool) {
	for _, b := range buckets {
		if b.remaining == 0 {
			return b, true
		}
	}
	return quotaBucket{}, false
}

// spend counts one issued token in buckets (already counted in the server's state).
func spend(buckets []quotaBucket) {
	for i := range buckets {
		buckets[i].remaining--
	}
}

// setQuotaHeader writes Auth0-Client-Quota-Limit, e.g. "b=per_hour;q=10;r=7;t=3540".
func setQuotaHeader(h http.Header, buckets []quotaBucket, now time.Time) {
	if len(buckets) == 0 {
		return
	}
	parts := make([]string, 0, len(buckets))
	for _, b := range buckets {
		parts = append(parts, fmt.Sprintf("b=%s;q=%d;r=%d;t=%d", b.name, b.quota, b.remaining, retryAfterSeconds(b.reset.Sub(now))))
	}
	h.Set("Auth0-Client-Quota-Limit", strings.Join(parts, ","))
}

// writeQuotaExceeded answers a client whose bucket b is spent, as Auth0 documents it: 429,
// the quota header, x-ratelimit-* of the bucket and Retry-After until it resets.
func writeQuotaExceeded(w http.ResponseWriter, buckets []quotaBucket, b quotaBucket, now time.Time) {
	h := w.Header()
	setQuotaHeader(h, buckets, now)
	setRateLimitHeaders(w, b.quota, 0, b.reset)
	h.Set("Retry-After", strconv.FormatInt(retryAfterSeconds(b.reset.Sub(now)), 10))
	writeJSON(w, http.StatusTooManyRequests, oauthError{Error: "too_many_requests", ErrorDescription: "Client quota exceeded"})
}
