package tokenvault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// Token is the IdP access token Token Vault returned. There is deliberately
// no refresh token: Auth0 keeps it and refreshes the IdP token itself.
type Token struct {
	AccessToken string
	// ExpiresIn is Auth0's expires_in: the remaining lifetime of the stored
	// IdP token. 0 when absent or not usable (more than a year).
	ExpiresIn time.Duration
	// ExpiresAt is the send time of the request plus ExpiresIn, so never
	// later than the real expiry; zero when the expiry is unknown.
	ExpiresAt time.Time
	// Scope the IdP granted, space-separated.
	Scope string
	// IssuedTokenType is Auth0's issued_token_type.
	IssuedTokenType string
}

// String keeps the token out of logs and test output.
func (t *Token) String() string {
	if t == nil {
		return "<nil>"
	}
	return fmt.Sprintf("tokenvault.Token{AccessToken:[redacted], ExpiresIn:%s, Scope:%q, IssuedTokenType:%q}", t.ExpiresIn, t.Scope, t.IssuedTokenType)
}

// GoString is String, for %#v.
func (t *Token) GoString() string { return t.String() }

// Client exchanges subject tokens at one tenant. It is safe for concurrent use.
type Client struct {
	cfg      resolved
	http     *http.Client
	endpoint string
	signer   *signer
	limiter  *rate.Limiter

	mu        sync.Mutex
	holdUntil time.Time // set by a 429: no request before then
}

// New validates cfg (see Config.Validate) and returns a client.
func New(cfg Config) (*Client, error) {
	r, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if r.Burst < 1 {
		return nil, &ConfigError{Reason: ReasonInvalidConfig, Field: "Burst", Problem: "must be at least 1"}
	}
	s, err := newSigner(r.key, r.Domain, r.ClientID)
	if err != nil {
		return nil, err
	}
	return &Client{
		cfg: r,
		// A token endpoint that redirects is misconfigured or hostile: the
		// client never resends the signed JWTs (or a secret) somewhere else.
		http:     httpclient.New(r.Transport, r.Timeout),
		endpoint: "https://" + r.Domain + "/oauth/token",
		signer:   s,
		limiter:  rate.NewLimiter(r.limit(), r.Burst),
	}, nil
}

// Check validates the configuration the client was built from (it always
// passes for a client New returned) and that ctx is alive. It makes no
// request: whether Auth0 accepts the client is learnt from the first
// exchange (ClientAuthFailed, NotAuthorized).
func (c *Client) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.cfg.Validate()
}

// Exchange asks Token Vault for the access token Auth0 keeps for userID on
// connection. auditContext (e.g. "idptoken-operator team-a/alice-google") goes
// into the subject token for Auth0's logs; blank, DefaultAuditContext is sent.
// Every call signs a new subject token (new jti, iat = the send time).
// Failures are *Error values.
func (c *Client) Exchange(ctx context.Context, userID, connection, auditContext string) (*Token, error) {
	fail := func(k Kind, err error) *Error {
		return &Error{Kind: k, UserID: userID, Connection: connection, Err: err}
	}
	if userID == "" || connection == "" {
		return nil, fail(BadRequest, errors.New("user ID and connection are required"))
	}
	if wait := c.held(); wait > 0 {
		e := fail(RateLimited, errors.New("holding off after an earlier 429"))
		e.RetryAfter = wait
		return nil, e
	}
	if err := c.awaitLimiter(ctx); err != nil {
		return nil, err
	}

	now := c.cfg.Clock.Now()
	subject, err := c.signer.subjectToken(now, userID, auditContext)
	if err != nil {
		return nil, err
	}
	form := url.Values{
		"grant_type":           {GrantType},
		"subject_token_type":   {SubjectTokenType},
		"subject_token":        {subject},
		"requested_token_type": {RequestedTokenType},
		"connection":           {connection},
		"client_id":            {c.cfg.ClientID},
	}
	sent := []string{subject, c.cfg.ClientSecret}
	if c.cfg.ClientSecret != "" {
		form.Set("client_secret", c.cfg.ClientSecret)
	} else {
		assertion, err := c.signer.clientAssertion(now)
		if err != nil {
			return nil, err
		}
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", assertion)
		sent = append(sent, assertion)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fail(BadRequest, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The cause without the *url.Error around it: the URL adds nothing.
		return nil, fail(Transient, httpclient.TransportCause(err))
	}
	defer func() { _ = resp.Body.Close() }()
	body, readErr := httpclient.ReadLimited(resp.Body, c.cfg.MaxResponseBytes)
	if readErr != nil && !errors.Is(readErr, httpclient.ErrTooLarge) && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	tok, err := interpretResponse(resp.StatusCode, resp.Header, body, readErr, now, c.cfg.Clock.Now(), sent...)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.UserID, e.Connection = userID, connection
			if e.Kind == RateLimited {
				c.hold(c.cfg.Clock.Now().Add(e.RetryAfter))
			}
		}
		return nil, err
	}
	return tok, nil
}

// interpretResponse turns a token endpoint response into a Token or an
// *Error. sentAt is when the request left (the base of ExpiresAt), now is the
// time Retry-After dates are measured from, and sent lists values that must
// never be echoed into an error (the subject token, the client assertion, the
// client secret): safetext.Scrub removes them, and anything else token-shaped,
// from the server's error and error_description.
func interpretResponse(status int, h http.Header, body []byte, readErr error, sentAt, now time.Time, sent ...string) (*Token, error) {
	if status < 200 || status > 299 {
		code, description := httpclient.ParseOAuthError(body)
		// Classified on the code and description as received, so that
		// scrubbing can never change the kind; only the scrubbed text is kept.
		e := &Error{
			StatusCode:  status,
			Code:        safetext.ScrubCode(code, 64, sent...),
			Description: safetext.Scrub(description, maxDescription, sent...),
		}
		e.Kind, e.Refusal = classify(status, safetext.Clip(code, 64), safetext.Clip(description, maxDescription))
		switch {
		case status >= 300 && status < 400:
			e.Err = errors.New("the token endpoint answered with a redirect, which is never followed")
		case e.Kind == RateLimited:
			e.RetryAfter = retryAfter(h, now)
		}
		return nil, e
	}
	if errors.Is(readErr, httpclient.ErrTooLarge) {
		return nil, &Error{Kind: Transient, StatusCode: status, Err: readErr}
	}
	if readErr != nil {
		return nil, &Error{Kind: Transient, StatusCode: status, Err: errors.New("reading the response failed")}
	}
	tok, err := parseExchangeResponse(body)
	if err != nil {
		return nil, &Error{Kind: Transient, StatusCode: status, Err: err}
	}
	if tok.expiresInGiven {
		tok.ExpiresAt = sentAt.Add(tok.ExpiresIn)
	}
	return &tok.Token, nil
}

// maxLifetime: an expires_in beyond a year is treated as unknown.
const maxLifetime = 365 * 24 * time.Hour

type parsedToken struct {
	Token
	expiresInGiven bool
}

// parseExchangeResponse parses a 200 body: a JSON object with a non-empty
// string access_token; expires_in a non-negative integer number of seconds
// when present. Errors describe the shape, never the content.
func parseExchangeResponse(body []byte) (parsedToken, error) {
	var raw struct {
		AccessToken     *string          `json:"access_token"`
		ExpiresIn       *json.RawMessage `json:"expires_in"`
		Scope           *string          `json:"scope"`
		IssuedTokenType *string          `json:"issued_token_type"`
		TokenType       *string          `json:"token_type"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&raw); err != nil {
		return parsedToken{}, errors.New("the response is not a JSON object of the expected shape")
	}
	if dec.More() {
		return parsedToken{}, errors.New("the response has data after its JSON object")
	}
	if raw.AccessToken == nil || *raw.AccessToken == "" {
		return parsedToken{}, errors.New("the response has no access_token")
	}
	if raw.TokenType != nil && *raw.TokenType != "" && !strings.EqualFold(*raw.TokenType, "bearer") {
		return parsedToken{}, errors.New("the response's token_type is not Bearer")
	}
	var p parsedToken
	p.AccessToken = *raw.AccessToken
	if raw.Scope != nil {
		p.Scope = safetext.Clip(*raw.Scope, 1024)
	}
	if raw.IssuedTokenType != nil {
		p.IssuedTokenType = safetext.Clip(*raw.IssuedTokenType, 200)
	}
	if raw.ExpiresIn != nil && string(*raw.ExpiresIn) != "null" {
		var f float64
		if err := json.Unmarshal(*raw.ExpiresIn, &f); err != nil || f < 0 || f != math.Trunc(f) {
			return parsedToken{}, errors.New("the response's expires_in is not a non-negative whole number")
		}
		if f <= maxLifetime.Seconds() {
			p.ExpiresIn = time.Duration(f) * time.Second
			p.expiresInGiven = true
		}
	}
	return p, nil
}

// maxHold bounds a server-requested wait, so a hostile Retry-After cannot
// stall a tenant for hours.
const maxHold = 10 * time.Minute

// defaultRetryAfter is used for a 429 that says nothing.
const defaultRetryAfter = time.Second

// retryAfter parses Retry-After (seconds or an HTTP date), else Auth0's
// x-ratelimit-reset (epoch seconds), else a second.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if d, ok := httpclient.RetryAfter(h, now, maxHold); ok {
		return d
	}
	if v := strings.TrimSpace(h.Get("X-Ratelimit-Reset")); v != "" {
		if epoch, err := strconv.ParseInt(v, 10, 64); err == nil {
			if d := time.Unix(epoch, 0).Sub(now); d > 0 {
				return min(d, maxHold)
			}
		}
	}
	return defaultRetryAfter
}

func (c *Client) held() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.holdUntil.Sub(c.cfg.Clock.Now())
}

func (c *Client) hold(until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if until.After(c.holdUntil) {
		c.holdUntil = until
	}
}

// awaitLimiter reserves at the injected clock's time and sleeps on it, so a
// fake clock controls the pacing in tests.
func (c *Client) awaitLimiter(ctx context.Context) error {
	now := c.cfg.Clock.Now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		return errors.New("tokenvault: rate limiter burst is below 1")
	}
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	if err := sleep(ctx, c.cfg.Clock, d); err != nil {
		r.CancelAt(c.cfg.Clock.Now())
		return err
	}
	return nil
}

func sleep(ctx context.Context, clk clock.Clock, d time.Duration) error {
	t := clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
