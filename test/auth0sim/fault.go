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
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OversizeBodyBytes is the body size of an Oversize fault response (more
// than 2 MiB).
const OversizeBodyBytes = 3 << 20

// Fault describes a failure injected into requests whose path starts with
// a given prefix (see SetFault). Hang takes precedence over Malformed, which
// takes precedence over Oversize; otherwise Status is sent.
type Fault struct {
	// Status is the HTTP status to answer with, e.g. 500, 503 or 429
	// (default 500). The body is a plausible JSON error for the endpoint.
	Status int
	// RetryAfter, when positive, is sent as a Retry-After header (whole
	// seconds, rounded up). For a 429 on /api/v2 the rate-limit headers
	// are sent too, with x-ratelimit-reset at Clock.Now()+RetryAfter.
	RetryAfter time.Duration
	// Malformed answers 200 with a body that is not valid JSON.
	Malformed bool
	// Hang blocks the request until the client gives up or the server is
	// closed; nothing is written.
	Hang bool
	// Oversize answers 200 with a valid JSON body of OversizeBodyBytes.
	Oversize bool
	// GlobalLimit answers with the shape of Auth0's global rate limit on
	// /oauth/token: Status (default 500) with x-ratelimit-limit,
	// x-ratelimit-remaining: 0 and x-ratelimit-reset at
	// Clock.Now()+RetryAfter (at least a second; epoch seconds), the body
	// {"error":"too_many_requests","error_description":"Global limit has
	// been reached"} (Auth0's Management API error body on /api/v2), and no
	// Retry-After header.
	GlobalLimit bool
	// Times is the number of requests the fault applies to; 0 means until
	// ClearFaults (or SetFault with the same prefix).
	Times int
}

type faultEntry struct {
	fault     Fault
	remaining int // 0 = unlimited
}

// SetFault injects f into requests whose URL path starts with pathPrefix
// (e.g. "/api/v2/users/", "/oauth/token", "/idp/<name>/token", or "" for
// every request). It replaces any fault with the same prefix; a zero Fault
// removes it. When several prefixes match, the longest one applies.
// Faulted requests do not consume the Management API rate limit.
func (s *Server) SetFault(pathPrefix string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, pathPrefix)
		return
	}
	s.faults[pathPrefix] = &faultEntry{fault: f, remaining: max(0, f.Times)}
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault for path, counting it down.
func (s *Server) takeFault(path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best, bestPrefix := (*faultEntry)(nil), ""
	for prefix, e := range s.faults {
		if strings.HasPrefix(path, prefix) && (best == nil || len(prefix) > len(bestPrefix)) {
			best, bestPrefix = e, prefix
		}
	}
	if best == nil {
		return Fault{}, false
	}
	if best.remaining > 0 {
		best.remaining--
		if best.remaining == 0 {
			delete(s.faults, bestPrefix)
		}
	}
	return best.fault, true
}

func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f Fault, isAPI bool) {
	switch {
	case f.Hang:
		s.mu.Lock()
		s.stats.HangingRequests++
		s.mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		s.mu.Lock()
		s.stats.HangingRequests--
		s.mu.Unlock()
		// Abort instead of returning, so that net/http does not send an
		// empty 200 on a connection that is still open.
		panic(http.ErrAbortHandler)
	case f.Malformed:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"statusCode":200,"truncated":`))
		return
	case f.Oversize:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		const open, closing = `{"padding":"`, `"}`
		if _, err := w.Write([]byte(open)); err != nil {
			return
		}
		chunk := bytes.Repeat([]byte("A"), 64<<10)
		for left := OversizeBodyBytes - len(open) - len(closing); left > 0; left -= len(chunk) {
			if _, err := w.Write(chunk[:min(left, len(chunk))]); err != nil {
				return
			}
		}
		_, _ = w.Write([]byte(closing))
		return
	}

	status := f.Status
	if status == 0 {
		status = http.StatusInternalServerError
	}
	if f.GlobalLimit {
		s.serveGlobalLimit(w, status, f.RetryAfter, isAPI)
		return
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(f.RetryAfter), 10))
	}
	if !isAPI {
		code := "server_error"
		switch status {
		case http.StatusTooManyRequests:
			code = "too_many_requests"
		case http.StatusServiceUnavailable:
			code = "temporarily_unavailable"
		}
		noStore(w)
		writeJSON(w, status, oauthError{Error: code, ErrorDescription: "simulated fault"})
		return
	}
	if status == http.StatusTooManyRequests {
		s.serveGlobalLimit(w, status, f.RetryAfter, isAPI)
		return
	}
	writeAPIError(w, status, "Simulated fault", "simulated_fault")
}

// serveGlobalLimit answers "Global limit has been reached" with status and the rate-limit
// headers of a spent bucket that refills in retryAfter (whole seconds, at least one).
func (s *Server) serveGlobalLimit(w http.ResponseWriter, status int, retryAfter time.Duration, isAPI bool) {
	limit := s.opts.RateLimitBurst
	if limit == 0 {
		limit = UnlimitedRateLimit
	}
	reset := s.clk.Now().Add(time.Duration(retryAfterSeconds(retryAfter)) * time.Second)
	setRateLimitHeaders(w, limit, 0, reset)
	if isAPI {
		writeAPIError(w, status, "Global limit has been reached", "too_many_requests")
		return
	}
	noStore(w)
	writeJSON(w, status, oauthError{Error: "too_many_requests", ErrorDescription: "Global limit has been reached"})
}
