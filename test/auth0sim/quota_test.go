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

package auth0sim_test

import (
	"net/http"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func clientCredentials(t *testing.T, c *http.Client, s *auth0sim.Server, id string) response {
	t.Helper()
	return postForm(t, c, s.URL()+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {id + "-secret"}, "audience": {s.Audience()},
	})
}

// TestM2MQuota: with a quota, every token answer says what is left (Auth0-Client-Quota-Limit),
// and a spent quota answers 429 as Auth0 documents it, until the UTC hour turns.
func TestM2MQuota(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{M2MQuota: auth0sim.M2MQuota{PerHour: 2, PerDay: 5}})
	c := clientFor(t, s)
	s.AddM2MClient("a", "a-secret", auth0sim.ScopeReadUsers)
	s.AddM2MClient("b", "b-secret", auth0sim.ScopeReadUsers)
	// t0 is 10:00:00.25: the hour resets in 3599.75 s (3600 rounded up), the day in 14 h.
	for i, want := range []string{"b=per_hour;q=2;r=1;t=3600,b=per_day;q=5;r=4;t=50400", "b=per_hour;q=2;r=0;t=3600,b=per_day;q=5;r=3;t=50400"} {
		r := clientCredentials(t, c, s, "a")
		if r.status != http.StatusOK || r.header.Get("Auth0-Client-Quota-Limit") != want {
			t.Fatalf("token %d: %d %q, want 200 %q", i, r.status, r.header.Get("Auth0-Client-Quota-Limit"), want)
		}
	}

	clk.Step(10 * time.Minute)
	r := clientCredentials(t, c, s, "a")
	reset := t0.Truncate(time.Hour).Add(time.Hour)
	wantHeaders := map[string]string{
		"Auth0-Client-Quota-Limit": "b=per_hour;q=2;r=0;t=3000,b=per_day;q=5;r=3;t=49800",
		"Retry-After":              "3000",
		"X-Ratelimit-Limit":        "2",
		"X-Ratelimit-Remaining":    "0",
		"X-Ratelimit-Reset":        strconv.FormatInt(reset.Unix(), 10),
	}
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("spent quota: %s, want 429", brief(r))
	}
	for k, v := range wantHeaders {
		if got := r.header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	assertJSON(t, r.body, `{"error":"too_many_requests","error_description":"Client quota exceeded"}`)

	// Another client has its own quota; a wrong secret is refused before the quota.
	if r := clientCredentials(t, c, s, "b"); r.status != http.StatusOK {
		t.Errorf("client b: %s", brief(r))
	}
	if r := postForm(t, c, s.URL()+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"a"}, "client_secret": {"x"}, "audience": {s.Audience()}}); r.status != http.StatusUnauthorized {
		t.Errorf("wrong secret: %d, want 401", r.status)
	}

	// The next UTC hour has a fresh hourly bucket; the day keeps counting.
	clk.SetTime(reset)
	if r := clientCredentials(t, c, s, "a"); r.status != http.StatusOK || r.header.Get("Auth0-Client-Quota-Limit") != "b=per_hour;q=2;r=1;t=3600,b=per_day;q=5;r=2;t=46800" {
		t.Errorf("next hour: %d %q", r.status, r.header.Get("Auth0-Client-Quota-Limit"))
	}

	// Removing the quota removes the header and the refusals.
	s.SetM2MQuota(auth0sim.M2MQuota{})
	for range 3 {
		if r := clientCredentials(t, c, s, "a"); r.status != http.StatusOK || r.header.Get("Auth0-Client-Quota-Limit") != "" {
			t.Fatalf("without a quota: %d %q", r.status, r.header.Get("Auth0-Client-Quota-Limit"))
		}
	}
	if got := s.Stats().RateLimited; got != 1 {
		t.Errorf("Stats.RateLimited = %d, want 1", got)
	}
}

// TestM2MQuotaOffByDefault: no quota, no header.
func TestM2MQuotaOffByDefault(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddM2MClient("a", "a-secret", auth0sim.ScopeReadUsers)
	for range 3 {
		if r := clientCredentials(t, c, s, "a"); r.status != http.StatusOK || r.header.Get("Auth0-Client-Quota-Limit") != "" {
			t.Fatalf("%d %q", r.status, r.header.Get("Auth0-Client-Quota-Limit"))
		}
	}
}

// TestGlobalLimitFault: the global-limit shape of /oauth/token, 500 with spent x-ratelimit-*
// headers and no Retry-After, for as many requests as asked.
func TestGlobalLimitFault(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{RateLimitPerSecond: 10})
	c := clientFor(t, s)
	s.AddM2MClient("a", "a-secret", auth0sim.ScopeReadUsers)
	s.SetFault("/oauth/token", auth0sim.Fault{GlobalLimit: true, RetryAfter: 30 * time.Second, Times: 2})
	for i := range 2 {
		r := clientCredentials(t, c, s, "a")
		if r.status != http.StatusInternalServerError {
			t.Fatalf("request %d: %s, want 500", i, brief(r))
		}
		assertJSON(t, r.body, `{"error":"too_many_requests","error_description":"Global limit has been reached"}`)
		want := map[string]string{"X-Ratelimit-Limit": "10", "X-Ratelimit-Remaining": "0",
			"X-Ratelimit-Reset": strconv.FormatInt(t0.Add(30*time.Second).Unix(), 10), "Retry-After": ""}
		for k, v := range want {
			if got := r.header.Get(k); got != v {
				t.Errorf("request %d: %s = %q, want %q", i, k, got, v)
			}
		}
	}
	if r := clientCredentials(t, c, s, "a"); r.status != http.StatusOK {
		t.Errorf("after the fault: %s", brief(r))
	}
	s.SetFault("/oauth/token", auth0sim.Fault{GlobalLimit: true, Status: http.StatusTooManyRequests, Times: 1})
	if r := clientCredentials(t, c, s, "a"); r.status != http.StatusTooManyRequests || r.header.Get("X-Ratelimit-Remaining") != "0" {
		t.Errorf("with Status 429: %d %v", r.status, r.header)
	}
}
