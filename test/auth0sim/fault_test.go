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
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func TestFaults(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{RateLimitPerSecond: 100})
	c := clientFor(t, s)
	seedUsers(s)
	tok := m2mToken(t, s, c, "read:users")
	userURL := s.URL() + "/api/v2/users/google-oauth2%7C123"

	tests := []struct {
		name   string
		prefix string
		fault  auth0sim.Fault
		url    string
		check  func(t *testing.T, r response)
	}{
		{"500 on users", "/api/v2/users/", auth0sim.Fault{Status: 500}, userURL, func(t *testing.T, r response) {
			if r.status != 500 || r.object(t)["statusCode"] != float64(500) {
				t.Errorf("got %d %s", r.status, r.body)
			}
		}},
		{"503 with Retry-After", "/api/v2/", auth0sim.Fault{Status: 503, RetryAfter: 1500 * time.Millisecond}, userURL, func(t *testing.T, r response) {
			if r.status != 503 || r.header.Get("Retry-After") != "2" {
				t.Errorf("got %d Retry-After %q", r.status, r.header.Get("Retry-After"))
			}
		}},
		{"429 with Retry-After on the API", "/api/v2/users/", auth0sim.Fault{Status: 429, RetryAfter: 3 * time.Second}, userURL, func(t *testing.T, r response) {
			if r.status != 429 || r.header.Get("Retry-After") != "3" {
				t.Fatalf("got %d Retry-After %q", r.status, r.header.Get("Retry-After"))
			}
			if r.header.Get("X-RateLimit-Remaining") != "0" || r.header.Get("X-RateLimit-Reset") != strconv.FormatInt(t0.Unix()+3, 10) {
				t.Errorf("rate-limit headers %v", r.header)
			}
			assertJSON(t, r.body, `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}`)
		}},
		{"malformed", "/api/v2/users/", auth0sim.Fault{Malformed: true}, userURL, func(t *testing.T, r response) {
			var v any
			if r.status != 200 || json.Unmarshal(r.body, &v) == nil {
				t.Errorf("got %d with valid JSON %s", r.status, r.body)
			}
		}},
		{"oversize", "/api/v2/users/", auth0sim.Fault{Oversize: true}, userURL, func(t *testing.T, r response) {
			if r.status != 200 || len(r.body) <= 2<<20 || len(r.body) != auth0sim.OversizeBodyBytes || !json.Valid(r.body) {
				t.Errorf("got %d with %d bytes", r.status, len(r.body))
			}
		}},
		{"empty prefix hits the token endpoint", "", auth0sim.Fault{Status: 502}, s.URL() + "/oauth/token", func(t *testing.T, r response) {
			if r.status != 502 || r.object(t)["error"] == nil {
				t.Errorf("got %d %s", r.status, r.body)
			}
		}},
		{"IdP endpoint", "/idp/google/token", auth0sim.Fault{Status: 429, RetryAfter: time.Second}, s.TokenURL("google"), func(t *testing.T, r response) {
			if r.status != 429 || r.header.Get("Retry-After") != "1" || r.object(t)["error"] != "too_many_requests" {
				t.Errorf("got %d %s", r.status, r.body)
			}
		}},
		{"other prefix is untouched", "/api/v2/connections", auth0sim.Fault{Status: 500}, userURL, func(t *testing.T, r response) {
			if r.status != 200 {
				t.Errorf("got %d", r.status)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s.ClearFaults()
			s.SetFault(tc.prefix, tc.fault)
			var r response
			if strings.HasSuffix(tc.url, "/token") {
				r = postForm(t, c, tc.url, url.Values{"grant_type": {"client_credentials"}})
			} else {
				r = get(t, c, tc.url, tok)
			}
			tc.check(t, r)
			s.ClearFaults()
			if r := get(t, c, userURL, tok); r.status != http.StatusOK {
				t.Errorf("after ClearFaults: %d", r.status)
			}
		})
	}
}

func TestFaultTimesAndPrecedence(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	seedUsers(s)
	tok := m2mToken(t, s, c, "read:users")
	userURL := s.URL() + "/api/v2/users/google-oauth2%7C123"

	s.SetFault("/api/v2/", auth0sim.Fault{Status: 500, Times: 3})
	s.SetFault("/api/v2/users/", auth0sim.Fault{Status: 503, Times: 2}) // longer prefix wins
	want := []int{503, 503, 500, 500, 500, 200, 200}
	for i, w := range want {
		if r := get(t, c, userURL, tok); r.status != w {
			t.Errorf("request %d: status %d, want %d", i+1, r.status, w)
		}
	}

	s.SetFault("/api/v2/", auth0sim.Fault{Status: 500})
	s.SetFault("/api/v2/", auth0sim.Fault{}) // zero Fault removes
	if r := get(t, c, userURL, tok); r.status != http.StatusOK {
		t.Errorf("after removing with a zero Fault: %d", r.status)
	}
	s.SetFault("/api/v2/", auth0sim.Fault{Status: 500}) // Times 0: until cleared
	for i := range 5 {
		if r := get(t, c, userURL, tok); r.status != 500 {
			t.Fatalf("persistent fault request %d: %d", i, r.status)
		}
	}
	s.ClearFaults()
	if r := get(t, c, userURL, tok); r.status != http.StatusOK {
		t.Errorf("after ClearFaults: %d", r.status)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestHangReleasedByClientTimeout(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.SetFault("/oauth/token", auth0sim.Fault{Hang: true, Times: 1})

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/oauth/token", nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := c.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		t.Fatal("hanging request returned a response")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error = %v, want deadline exceeded", err)
	}
	if time.Since(start) < 150*time.Millisecond {
		t.Errorf("request returned after %v, before the client timeout", time.Since(start))
	}
	waitFor(t, "the server to release the request", func() bool { return s.Stats().HangingRequests == 0 })

	// Times: 1 — the next request is served normally.
	if r := postForm(t, c, s.URL()+"/oauth/token", url.Values{}); r.status != http.StatusBadRequest {
		t.Errorf("after the hang: status %d, want 400", r.status)
	}
}

func TestHangReleasedByClose(t *testing.T) {
	s, err := auth0sim.New(auth0sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := clientFor(t, s)
	c.Timeout = 0
	s.SetFault("", auth0sim.Fault{Hang: true})

	errc := make(chan error, 1)
	go func() {
		resp, err := c.Get(s.URL() + "/api/v2/users/x")
		if err == nil {
			_ = resp.Body.Close()
		}
		errc <- err
	}()
	waitFor(t, "the request to hang", func() bool { return s.Stats().HangingRequests == 1 })

	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return while a request was hanging")
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Error("hanging request got a response after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("client still blocked after Close")
	}
	if got := s.Stats().HangingRequests; got != 0 {
		t.Errorf("HangingRequests = %d after Close", got)
	}
}
