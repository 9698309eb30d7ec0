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
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// t0 is deliberately not on a second boundary.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 250_000_000, time.UTC)

// newSim starts a server with a fake clock (unless opts.Clock is set) and
// registers its Close as cleanup.
func newSim(t *testing.T, opts auth0sim.Options) (*auth0sim.Server, *testingclock.FakeClock) {
	t.Helper()
	var clk *testingclock.FakeClock
	if opts.Clock == nil {
		clk = testingclock.NewFakeClock(t0)
		opts.Clock = clk
	}
	s, err := auth0sim.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(s.Close)
	return s, clk
}

// clientFor builds a client that trusts only CAPEM, the way the operator
// would from Auth0Tenant.spec.caBundle.
func clientFor(t *testing.T, s *auth0sim.Server) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CAPEM()) {
		t.Fatal("CAPEM contains no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) object(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %.200s", err, r.body)
	}
	return m
}

func do(t *testing.T, c *http.Client, req *http.Request) response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: body}
}

func newRequest(t *testing.T, method, u string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatalf("NewRequest: %v", err)
	}
	return req
}

func postForm(t *testing.T, c *http.Client, u string, v url.Values, header ...string) response {
	t.Helper()
	req := newRequest(t, http.MethodPost, u, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return do(t, c, req)
}

func get(t *testing.T, c *http.Client, u, bearer string) response {
	t.Helper()
	req := newRequest(t, http.MethodGet, u, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return do(t, c, req)
}

// assertJSON compares a JSON body with the expected JSON text semantically.
func assertJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("response is not JSON: %v: %.200s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad expectation %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body mismatch\n got: %s\nwant: %s", got, want)
	}
}

// m2mToken registers an M2M client with the scopes and returns a token.
func m2mToken(t *testing.T, s *auth0sim.Server, c *http.Client, scopes ...string) string {
	t.Helper()
	id := "m2m-" + strings.ReplaceAll(strings.Join(scopes, "-"), ":", "_")
	s.AddM2MClient(id, "secret-"+id, scopes...)
	r := postForm(t, c, s.URL()+"/oauth/token", url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {id},
		"client_secret": {"secret-" + id},
		"audience":      {s.Audience()},
	})
	if r.status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", r.status, r.body)
	}
	tok, _ := r.object(t)["access_token"].(string)
	if tok == "" {
		t.Fatalf("no access_token in %s", r.body)
	}
	return tok
}

// logBuffer collects Logf output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.WriteString(strings.TrimSpace(fmt.Sprintf(format, args...)) + "\n")
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func assertDecode(t *testing.T, body []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("decode %.200s: %v", body, err)
	}
}

// brief is r's status and body for a failure message, or only its status when the body holds
// a token: test output never shows token values.
func brief(r response) string {
	if auth0sim.TokenPattern.Match(r.body) {
		return fmt.Sprintf("%d [body with a token]", r.status)
	}
	return fmt.Sprintf("%d %.300s", r.status, r.body)
}
