// Package auth0 is a small Auth0 Management API client: just the calls the
// operator needs to read users' IdP tokens and connection settings, with a
// shared M2M token, client- and server-side rate limiting, request
// coalescing and typed errors that never contain secrets.
package auth0

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/safetext"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
)

// errLimiterBurst cannot happen with a validated Config (Burst >= 1); it
// exists so a future misconfiguration fails instead of spinning.
var errLimiterBurst = errors.New("auth0: rate limiter burst is below 1")

// Stats counts requests so tests and benchmarks can check how much traffic
// the client really produced.
type Stats struct {
	// TokenRequests is the number of requests sent to /oauth/token.
	TokenRequests int64
	// APIRequests is the number of Management API requests actually sent.
	APIRequests int64
	// RateLimited is the number of 429 responses received (from either API).
	RateLimited int64
}

type counters struct {
	tokenRequests, apiRequests, rateLimited atomic.Int64
}

// Client talks to one Auth0 tenant. It is safe for concurrent use and meant
// to be shared by every reconcile for that tenant, so that the M2M token,
// rate limits and coalescing are shared too.
type Client struct {
	cfg     Config
	baseURL string
	http    *http.Client
	pace    *pacer
	tokens  *tokenCache
	quota   *quotaGate
	flights singleflight.Group
	stats   counters

	// flightWaiters counts callers attached to an in-flight request; tests
	// use it to know every caller has joined before releasing the server.
	flightWaiters atomic.Int64

	// streamGen is the generation of the token StreamToken last returned.
	streamGen atomic.Uint64
}

// NewClient validates cfg, applies defaults and builds the client. No network
// traffic happens until the first call.
func NewClient(cfg Config) (*Client, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	hc, err := newHTTPClient(cfg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:     cfg,
		baseURL: "https://" + cfg.Domain,
		http:    hc,
		pace:    newPacer(cfg.Clock, cfg.limit(), cfg.Burst),
	}
	cc := &clientcredentials.Config{
		ClientID:       cfg.ClientID,
		ClientSecret:   cfg.ClientSecret,
		TokenURL:       c.baseURL + tokenPath,
		EndpointParams: url.Values{"audience": {cfg.Audience}},
		// Explicit style: auto-detection would send the secret twice on failure.
		AuthStyle: oauth2.AuthStyleInParams,
	}
	tenant := cfg.MetricsTenant
	if tenant == "" {
		tenant = cfg.Domain
	}
	c.quota = &quotaGate{clk: cfg.Clock, tenant: tenant}
	// The token requests' own client: the same transport, timeout and redirect policy, and
	// the answers' headers recorded for the quota gate.
	tokenHC := *hc
	tokenHC.Transport = answerRecorder{next: hc.Transport}
	c.tokens = newTokenCache(&m2mSource{
		conf:  cc,
		ctx:   context.WithValue(context.Background(), oauth2.HTTPClient, &tokenHC),
		stats: &c.stats,
		clk:   cfg.Clock,
		gate:  c.quota,
	}, cfg.Clock)
	return c, nil
}

// M2MQuota returns what the client knows of its M2M token quota: whether new token requests are
// held, until when and why, and the quota buckets Auth0 last reported. It sends nothing and is
// cheap enough to call on every reconcile.
func (c *Client) M2MQuota() QuotaState { return c.quota.state(c.cfg.Clock.Now()) }

// HTTPClient returns the tenant's TLS-configured client (CA bundle, timeout)
// so IdP token calls for this tenant trust the same roots. Do not modify it.
func (c *Client) HTTPClient() *http.Client { return c.http }

// Stats returns a snapshot of the request counters.
func (c *Client) Stats() Stats {
	return Stats{
		TokenRequests: c.stats.tokenRequests.Load(),
		APIRequests:   c.stats.apiRequests.Load(),
		RateLimited:   c.stats.rateLimited.Load(),
	}
}

// Authenticate obtains (or reuses) the M2M token and returns the scopes Auth0
// granted it, so callers can report a missing scope before using the API.
func (c *Client) Authenticate(ctx context.Context) ([]string, error) {
	tok, _, err := c.tokens.token(ctx)
	if err != nil {
		return nil, wrapCtx(http.MethodPost, tokenPath, err)
	}
	return grantedScopes(tok), nil
}

// userFields limits the user read to what the operator needs, keeping the
// response (and what passes through memory) small.
const userFields = "user_id,identities,last_login"

// GetUser reads a user with its identities and IdP tokens (needs the
// read:users and read:user_idp_tokens scopes). An answer whose user_id is not
// exactly id is a NotFound error, never another user's tokens.
func (c *Client) GetUser(ctx context.Context, id string) (*User, error) {
	if id == "" {
		return nil, errors.New("auth0: GetUser: empty user id")
	}
	req := request{
		method:  http.MethodGet,
		path:    "/api/v2/users/" + url.PathEscape(id),
		display: "/api/v2/users/" + id,
		query:   url.Values{"fields": {userFields}, "include_fields": {"true"}},
	}
	body, err := c.get(ctx, req)
	if err != nil {
		return nil, err
	}
	u, err := parseUser(body)
	if err != nil {
		return nil, req.badResponse(http.StatusOK, err)
	}
	if u.UserID != id {
		return nil, req.otherUser(u.UserID, id, append(c.tokens.recentTokens(), c.cfg.ClientSecret)...)
	}
	return u, nil
}

// maxAnsweredIDLen bounds, in bytes, the answered user_id quoted in an error: it is the
// server's text.
const maxAnsweredIDLen = 128

// clipID cuts an id to maxAnsweredIDLen bytes at a rune boundary. Unlike safetext.Clip it keeps
// spaces and control characters (which %q then escapes): an id differing from another only by
// them must not read the same in the error.
func clipID(s string) string {
	if len(s) <= maxAnsweredIDLen {
		return s
	}
	cut := maxAnsweredIDLen
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// otherUser reports an answer about another user than the one asked for. Whatever the cause (a
// proxy or cache in front of Auth0 mixing up answers, a misrouted request), that user's tokens
// must never be written for this one, so the read fails as NotFound: the asked-for user was not
// found, the binding reports UserNotFound and is not retried as if the answer were transient.
//
// The message names both ids, which are identifiers, not secrets, and never quotes the body.
// The answered id is still the server's text: when it holds one of secrets (the M2M tokens and
// client secret of the client, which a hostile server could echo), it is not shown at all.
func (r request) otherUser(answered, asked string, secrets ...string) *APIError {
	shown := strconv.Quote(clipID(answered))
	if holdsSecret(answered, secrets) {
		shown = "[redacted]"
	}
	return &APIError{
		StatusCode: http.StatusOK,
		Kind:       NotFound,
		Code:       "user_id_mismatch",
		Message:    fmt.Sprintf("Auth0 answered with user_id %s, not the %q asked for", shown, asked),
		Method:     r.method,
		Path:       r.display,
	}
}

// holdsSecret reports whether s contains a non-empty secret as it is or URL-escaped, ignoring
// ASCII case, as servers echo what they received in either form and with either case.
func holdsSecret(s string, secrets []string) bool {
	s = strings.ToLower(s)
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		for _, form := range []string{secret, url.QueryEscape(secret), url.PathEscape(secret)} {
			if strings.Contains(s, strings.ToLower(form)) {
				return true
			}
		}
	}
	return false
}

// GetConnection reads a connection by id (needs read:connections).
func (c *Client) GetConnection(ctx context.Context, id string) (*Connection, error) {
	if id == "" {
		return nil, errors.New("auth0: GetConnection: empty connection id")
	}
	req := request{
		method:  http.MethodGet,
		path:    "/api/v2/connections/" + url.PathEscape(id),
		display: "/api/v2/connections/" + id,
	}
	body, err := c.get(ctx, req)
	if err != nil {
		return nil, err
	}
	conn, err := parseConnection(body)
	if err != nil {
		return nil, req.badResponse(http.StatusOK, err)
	}
	return conn, nil
}

// GetConnectionByName finds the connection with exactly this name. Auth0
// answers an unknown name with an empty list, which is reported as a
// NotFound APIError so callers handle both lookups alike.
func (c *Client) GetConnectionByName(ctx context.Context, name string) (*Connection, error) {
	if name == "" {
		return nil, errors.New("auth0: GetConnectionByName: empty connection name")
	}
	req := request{
		method:  http.MethodGet,
		path:    "/api/v2/connections",
		display: "/api/v2/connections?name=" + name,
		query:   url.Values{"name": {name}},
	}
	body, err := c.get(ctx, req)
	if err != nil {
		return nil, err
	}
	list, err := parseConnectionList(body)
	if err != nil {
		return nil, req.badResponse(http.StatusOK, err)
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i], nil
		}
	}
	return nil, &APIError{
		StatusCode: http.StatusNotFound,
		Kind:       NotFound,
		Code:       "inexistent_connection",
		Message:    fmt.Sprintf("no connection named %q", name),
		Method:     req.method,
		Path:       req.display,
	}
}

// request is one Management API read.
type request struct {
	method  string
	path    string // escaped, as sent
	display string // unescaped, for errors
	query   url.Values
}

func (r request) url(base string) string {
	if len(r.query) == 0 {
		return base + r.path
	}
	return base + r.path + "?" + r.query.Encode()
}

// key identifies identical reads for coalescing.
func (r request) key() string { return r.method + " " + r.url("") }

func (r request) badResponse(status int, cause error) *APIError {
	return &APIError{StatusCode: status, Kind: BadResponse, Method: r.method, Path: r.display, Err: cause}
}

// leaderGoneError marks a coalesced request that failed only because the
// caller that started it went away; other callers retry instead of failing.
type leaderGoneError struct{ err error }

func (e *leaderGoneError) Error() string { return e.err.Error() }
func (e *leaderGoneError) Unwrap() error { return e.err }

// get coalesces identical concurrent reads into one HTTP request. The shared
// result is the raw body, which nobody mutates; every caller parses its own
// copy, so callers never share slices or pointers.
func (c *Client) get(ctx context.Context, req request) ([]byte, error) {
	for {
		ch := c.flights.DoChan(req.key(), func() (any, error) {
			body, err := c.send(ctx, req)
			if err != nil && ctx.Err() != nil {
				return nil, &leaderGoneError{err: err}
			}
			return body, err
		})
		res, err := c.awaitFlight(ctx, ch)
		if err != nil {
			return nil, wrapCtx(req.method, req.display, err)
		}
		var gone *leaderGoneError
		if errors.As(res.Err, &gone) {
			if ctx.Err() == nil {
				continue // someone else's cancellation: try again ourselves
			}
			return nil, wrapCtx(req.method, req.display, ctx.Err())
		}
		if res.Err != nil {
			return nil, res.Err
		}
		body, _ := res.Val.([]byte)
		return body, nil
	}
}

func (c *Client) awaitFlight(ctx context.Context, ch <-chan singleflight.Result) (singleflight.Result, error) {
	c.flightWaiters.Add(1)
	defer c.flightWaiters.Add(-1)
	select {
	case <-ctx.Done():
		return singleflight.Result{}, ctx.Err()
	case res := <-ch:
		return res, nil
	}
}

// wrapCtx reports a cancelled or expired caller context. These are the
// caller's own doing, so they are plain errors rather than APIErrors.
func wrapCtx(method, path string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if _, isAPI := kindOf(err); !isAPI {
			return fmt.Errorf("auth0: %s %s: %w", method, path, err)
		}
	}
	return err
}

// send performs one logical read: wait for the tenant's budget (pacer), send,
// and resend after a 429 while attempts and MaxRateLimitWait allow. 5xx are returned as they are; the controller decides on backoff.
func (c *Client) send(ctx context.Context, req request) ([]byte, error) {
	var waited time.Duration
	var last *APIError
	for attempt := 1; ; attempt++ {
		// The M2M token first: a token of the budget is spent the moment it is taken, so
		// nothing slow may come between taking it and sending.
		tok, gen, err := c.tokens.token(ctx)
		if err != nil {
			return nil, err
		}
		if err := c.pace.take(ctx, req, c.cfg.MaxRateLimitWait, &waited, last); err != nil {
			return nil, err
		}
		body, err := c.attempt(ctx, req, tok, gen)
		if err == nil {
			return body, nil
		}
		apiErr, ok := kindOf(err)
		if !ok || apiErr.Kind != RateLimited || apiErr.StatusCode != http.StatusTooManyRequests || attempt >= maxAttempts {
			return nil, err
		}
		last = apiErr
	}
}

// attempt sends the request once with the shared M2M token. It holds a token
// of the pacer, and reports the answer (or its absence) back to it.
func (c *Client) attempt(ctx context.Context, req request, tok *oauth2.Token, gen uint64) ([]byte, error) {
	httpReq, err := http.NewRequestWithContext(ctx, req.method, req.url(c.baseURL), nil)
	if err != nil {
		c.pace.abandon()
		return nil, req.badRequest(err)
	}
	tok.SetAuthHeader(httpReq)
	httpReq.Header.Set("Accept", "application/json")
	httpReq.Header.Set("User-Agent", c.cfg.UserAgent)

	c.stats.apiRequests.Add(1)
	resp, err := c.http.Do(httpReq)
	if err != nil {
		c.pace.abandon()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, req.networkError(err)
	}
	defer func() { _ = resp.Body.Close() }()
	wait := c.pace.observe(resp.Header, resp.StatusCode)

	// What this request sent or what the client holds, for scrubbing the
	// server's text; never stored in an error.
	secrets := []string{tok.AccessToken, c.cfg.ClientSecret}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		// The token may have been revoked or the signing key rotated: drop
		// it so the next call fetches a new one. Not retried here, so a
		// persistently rejected client cannot loop on /oauth/token.
		c.tokens.invalidate(gen)
	case http.StatusTooManyRequests:
		c.stats.rateLimited.Add(1)
		body, _ := httpclient.ReadLimited(resp.Body, c.cfg.MaxResponseBytes)
		apiErr := newStatusError(req.method, req.display, resp.StatusCode, body, secrets...)
		apiErr.RetryAfter = wait
		return nil, apiErr
	}
	return c.readResponse(ctx, req, resp, secrets)
}

// readResponse reads a Management API answer; secrets are scrubbed from any
// server text that goes into an error.
func (c *Client) readResponse(ctx context.Context, req request, resp *http.Response, secrets []string) ([]byte, error) {
	body, err := httpclient.ReadLimited(resp.Body, c.cfg.MaxResponseBytes)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		// A failed or oversize read only costs us the error's message.
		return nil, newStatusError(req.method, req.display, resp.StatusCode, body, secrets...)
	}
	switch {
	case errors.Is(err, httpclient.ErrTooLarge):
		return nil, req.badResponse(resp.StatusCode, fmt.Errorf("response body exceeds %d bytes", c.cfg.MaxResponseBytes))
	case err != nil:
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, req.networkError(err)
	}
	if !isJSON(resp.Header.Get("Content-Type")) {
		mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		return nil, req.badResponse(resp.StatusCode, fmt.Errorf("unexpected content type %q", safetext.Scrub(mt, 64, secrets...)))
	}
	return body, nil
}

func (r request) networkError(err error) *APIError {
	// The cause without the *url.Error around it: the URL is already in Path.
	return &APIError{Kind: Network, Method: r.method, Path: r.display, Err: httpclient.TransportCause(err)}
}

func (r request) badRequest(err error) *APIError {
	return &APIError{Kind: BadRequest, Method: r.method, Path: r.display, Err: err}
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
