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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"
)

const (
	defaultAddr                = "127.0.0.1:0"
	defaultM2MTokenLifetime    = 24 * time.Hour
	defaultAccessTokenLifetime = time.Hour
	// maxRequestBody bounds every request body the server reads.
	maxRequestBody = 64 << 10
)

// Options configures a Server. The zero value is usable.
type Options struct {
	// Addr is the TCP listen address. Default "127.0.0.1:0" (a free port).
	Addr string
	// Clock is used for every expiry decision and for the rate-limit
	// bucket's refill. Default clock.RealClock{}.
	Clock clock.Clock
	// M2MTokenLifetime is the lifetime of Management API (client
	// credentials) tokens. Default 24h.
	M2MTokenLifetime time.Duration
	// RateLimitPerSecond is the refill rate of the Management API's (/api/v2/*)
	// token bucket, in requests per second of Clock; Auth0 meters the
	// Management API with a token bucket per tenant. 0 means unlimited; the
	// rate-limit headers are still sent then, with a nominal limit of
	// UnlimitedRateLimit.
	RateLimitPerSecond int
	// TokenVaultRefreshWindow is how long before its expiry Token Vault
	// refreshes a vaulted IdP token at the IdP. 0 (the default) is Auth0's
	// documented behaviour: the stored token is returned until it has
	// expired, and only then refreshed.
	TokenVaultRefreshWindow time.Duration
	// TokenVaultRateLimitPerSecond limits Token Vault exchanges (Auth0's
	// Authentication API budget) per one-second window of Clock; past it the
	// server answers 429 with Retry-After. 0 means unlimited.
	TokenVaultRateLimitPerSecond int
	// M2MQuota is the fine-grained M2M token quota of every M2M client (see
	// M2MQuota and SetM2MQuota). The zero value is none: no
	// Auth0-Client-Quota-Limit header, no 429 from /oauth/token.
	M2MQuota M2MQuota
	// TokenVaultBadClientAccessDenied makes the Token Vault exchange answer
	// a client it cannot authenticate (unknown client, wrong secret, client
	// assertion refused) with 401 {"error":"access_denied",
	// "error_description":"Unauthorized"}, as Auth0 does for a bad client,
	// instead of 401 invalid_client. See SetTokenVaultBadClientAccessDenied.
	TokenVaultBadClientAccessDenied bool
	// RateLimitBurst is the size of that bucket, reported as
	// x-ratelimit-limit. The bucket starts full. Default RateLimitPerSecond.
	RateLimitBurst int
	// RateLimitReset selects what x-ratelimit-reset means. Default
	// ResetWhenFull, as Auth0 documents it.
	RateLimitReset ResetMode
	// Logf, when set, receives one line per request (method, path, status,
	// duration) and the HTTP server's own error messages. Token values are
	// never passed to it. It is not called once Close has returned.
	Logf func(format string, args ...any)
}

// ResetMode is a reading of x-ratelimit-reset (epoch seconds, rounded up).
type ResetMode int

const (
	// ResetWhenFull: the time the bucket is full again (Auth0's documented meaning).
	ResetWhenFull ResetMode = iota
	// ResetNextToken: the time the bucket next gains a token (now, when full).
	ResetNextToken
)

// UnlimitedRateLimit is the x-ratelimit-limit value reported when
// Options.RateLimitPerSecond is 0. It is never enforced.
const UnlimitedRateLimit = 1_000_000

// Server is a running simulated Auth0 tenant plus simulated IdPs. Create it
// with New and stop it with Close.
type Server struct {
	opts   Options
	clk    clock.Clock
	url    string
	domain string
	caPEM  []byte
	caPool *x509.CertPool

	srv       *http.Server
	serveDone chan struct{}
	done      chan struct{} // closed by Close; releases hanging requests
	closeOnce sync.Once

	// hmu guards the in-flight handler accounting used by Close.
	hmu     sync.Mutex
	hcond   *sync.Cond
	closing bool
	active  int

	// logMu makes sure Logf is not called after Close returned.
	logMu  sync.RWMutex
	logOff bool

	// mu guards all simulated state below.
	mu            sync.Mutex
	clients       map[string]*m2mClient
	idps          map[string]*idp
	users         map[string]*user
	conns         map[string]*connection // by connection ID
	m2mTokens     map[string]*m2mToken
	accessTokens  map[string]*accessToken
	refreshTokens map[string]*refreshToken
	faults        map[string]*faultEntry
	m2mQuota      M2MQuota
	quotaUse      map[string]*quotaUse // by M2M client ID
	tv            tokenVaultState
	rlTokens      float64   // the Management API bucket's level at rlLast
	rlLast        time.Time // zero until the first request: the bucket starts full
	stats         Stats
	events        eventLog // the Events API (events.go); its own lock
}

// New starts a Server listening on opts.Addr and serving TLS with a freshly
// generated CA.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = defaultAddr
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.M2MTokenLifetime <= 0 {
		opts.M2MTokenLifetime = defaultM2MTokenLifetime
	}
	if opts.RateLimitPerSecond < 0 || opts.RateLimitBurst < 0 {
		return nil, fmt.Errorf("auth0sim: RateLimitPerSecond and RateLimitBurst must not be negative, got %d and %d", opts.RateLimitPerSecond, opts.RateLimitBurst)
	}
	if opts.RateLimitBurst == 0 {
		opts.RateLimitBurst = opts.RateLimitPerSecond
	}
	if opts.M2MQuota.PerHour < 0 || opts.M2MQuota.PerDay < 0 {
		return nil, errors.New("auth0sim: M2MQuota must not be negative")
	}
	if opts.TokenVaultRefreshWindow < 0 || opts.TokenVaultRateLimitPerSecond < 0 {
		return nil, errors.New("auth0sim: TokenVaultRefreshWindow and TokenVaultRateLimitPerSecond must not be negative")
	}

	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("auth0sim: listen on %q: %w", opts.Addr, err)
	}
	tcpAddr, ok := ln.Addr().(*net.TCPAddr)
	if !ok {
		_ = ln.Close()
		return nil, fmt.Errorf("auth0sim: unexpected listener address %v", ln.Addr())
	}
	host := "127.0.0.1"
	var extraIPs []net.IP
	if !tcpAddr.IP.IsUnspecified() {
		host = tcpAddr.IP.String()
		extraIPs = append(extraIPs, tcpAddr.IP)
	}
	// Certificates are checked by clients against the wall clock, so their
	// validity window is based on time.Now, not on opts.Clock.
	p, err := newPKI(time.Now(), extraIPs)
	if err != nil {
		_ = ln.Close()
		return nil, err
	}

	domain := net.JoinHostPort(host, strconv.Itoa(tcpAddr.Port))
	s := &Server{
		opts:          opts,
		clk:           opts.Clock,
		url:           "https://" + domain,
		domain:        domain,
		caPEM:         p.caPEM,
		caPool:        p.caPool,
		serveDone:     make(chan struct{}),
		done:          make(chan struct{}),
		clients:       map[string]*m2mClient{},
		idps:          map[string]*idp{},
		users:         map[string]*user{},
		conns:         map[string]*connection{},
		m2mTokens:     map[string]*m2mToken{},
		accessTokens:  map[string]*accessToken{},
		refreshTokens: map[string]*refreshToken{},
		faults:        map[string]*faultEntry{},
		m2mQuota:      opts.M2MQuota,
		quotaUse:      map[string]*quotaUse{},
		tv:            newTokenVaultState(opts.TokenVaultBadClientAccessDenied),
		stats:         newStats(),
	}
	s.hcond = sync.NewCond(&s.hmu)
	s.srv = &http.Server{
		Handler: http.HandlerFunc(s.handle),
		TLSConfig: &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{p.serverCert},
		},
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(logWriter{s}, "", 0),
	}
	go func() {
		defer close(s.serveDone)
		if err := s.srv.ServeTLS(ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logf("auth0sim: serve: %v", err)
		}
	}()
	return s, nil
}

// Close stops the server. Requests blocked by a Hang fault are released,
// open connections are closed, and Close waits until every request handler
// has returned. It is safe to call more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		s.hmu.Lock()
		s.closing = true
		s.hmu.Unlock()
		// Close the connections first, so that requests released from a
		// Hang below cannot get any response out.
		if err := s.srv.Close(); err != nil {
			s.logf("auth0sim: close: %v", err)
		}
		close(s.done)
		s.hmu.Lock()
		for s.active > 0 {
			s.hcond.Wait()
		}
		s.hmu.Unlock()
		<-s.serveDone
		s.logMu.Lock()
		s.logOff = true
		s.logMu.Unlock()
	})
}

// URL returns the base URL, e.g. "https://127.0.0.1:41234".
func (s *Server) URL() string { return s.url }

// Domain returns the tenant domain, e.g. "127.0.0.1:41234" — the value for
// Auth0Tenant.spec.domain. The Management API audience is
// "https://" + Domain() + "/api/v2/".
func (s *Server) Domain() string { return s.domain }

// Audience returns the Management API audience, "https://<Domain()>/api/v2/".
func (s *Server) Audience() string { return "https://" + s.domain + "/api/v2/" }

// CAPEM returns the PEM-encoded CA certificate that signed the server
// certificate (for Auth0Tenant.spec.caBundle). The returned slice is a copy.
func (s *Server) CAPEM() []byte { return append([]byte(nil), s.caPEM...) }

// Client returns a new *http.Client that trusts only the server's CA.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: s.caPool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
	}}
}

// handle is the root handler: accounting, logging, faults and routing.
func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		w.Header().Set("Connection", "close")
		writeJSON(w, http.StatusServiceUnavailable, oauthError{Error: "temporarily_unavailable", ErrorDescription: "server is shutting down"})
		return
	}
	defer s.leave()

	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	path := r.URL.Path
	isAPI := path == "/api/v2" || strings.HasPrefix(path, "/api/v2/")
	if isAPI {
		s.mu.Lock()
		s.stats.APIRequests++
		s.mu.Unlock()
	}
	defer func() {
		if rec.status == http.StatusTooManyRequests {
			s.mu.Lock()
			s.stats.RateLimited++
			s.mu.Unlock()
		}
		// Only method, path and status: never headers, query or bodies.
		s.logf("auth0sim: %s %s -> %d (%s)", r.Method, r.URL.EscapedPath(), rec.status, time.Since(start).Round(time.Microsecond))
	}()

	if f, ok := s.takeFault(path); ok {
		s.serveFault(rec, r, f, isAPI)
		return
	}
	switch {
	case path == "/oauth/token":
		s.handleOAuthToken(rec, r)
	case isAPI:
		s.handleAPI(rec, r)
	case strings.HasPrefix(path, "/idp/"):
		s.handleIdP(rec, r)
	case strings.HasPrefix(path, "/oidc/"):
		s.handleOIDC(rec, r)
	default:
		writeJSON(rec, http.StatusNotFound, apiError{StatusCode: http.StatusNotFound, Error: "Not Found", Message: "Not Found"})
	}
}

func (s *Server) enter() bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.closing {
		return false
	}
	s.active++
	return true
}

func (s *Server) leave() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.active--
	if s.active == 0 {
		s.hcond.Broadcast()
	}
}

func (s *Server) logf(format string, args ...any) {
	if s.opts.Logf == nil {
		return
	}
	s.logMu.RLock()
	defer s.logMu.RUnlock()
	if s.logOff {
		return
	}
	s.opts.Logf(format, args...)
}

// logWriter routes the http.Server's error log to Options.Logf.
type logWriter struct{ s *Server }

func (lw logWriter) Write(p []byte) (int, error) {
	lw.s.logf("auth0sim: http: %s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// statusRecorder remembers the status code for logging and statistics.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
