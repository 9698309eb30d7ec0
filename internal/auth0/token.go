package auth0

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/idptoken/idptoken-operator/internal/safetext"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	"golang.org/x/sync/singleflight"
	"k8s.io/utils/clock"
)

// tokenEarlyExpiry makes the shared M2M token be replaced a minute before it
// expires, so a request never leaves with a token that dies in flight.
// Tokens issued with expires_in under a minute are therefore never reused.
const tokenEarlyExpiry = time.Minute

const tokenPath = "/oauth/token"

// minTokenValidity is how long a token must still be valid to be sent when no new one can be
// had: enough for a request to reach Auth0 before it dies.
const minTokenValidity = 10 * time.Second

// m2mSource fetches a new client-credentials token on every call, unless Auth0 asked it to hold
// off (gate): then it answers RateLimited without a request. It is only called through
// tokenCache, so each call that passes the gate is a real request to /oauth/token, which is
// what Stats.TokenRequests counts.
type m2mSource struct {
	conf *clientcredentials.Config
	// ctx carries oauth2.HTTPClient, whose transport records each answer (answerRecorder).
	// oauth2.TokenSource has no context parameter, so per-request deadlines come from the
	// http.Client timeout.
	ctx   context.Context
	stats *counters
	clk   clock.PassiveClock
	gate  *quotaGate
}

// Token implements oauth2.TokenSource.
func (s *m2mSource) Token() (*oauth2.Token, error) {
	now := s.clk.Now()
	if until, reason := s.gate.held(now); !until.IsZero() {
		return nil, heldError(until, reason, now)
	}
	s.stats.tokenRequests.Add(1)
	var ans answer
	tok, err := s.conf.Token(context.WithValue(s.ctx, answerKey{}, &ans))
	if err != nil {
		return nil, s.tokenError(err, &ans)
	}
	s.gate.observe(ans.status, ans.header, "", true, s.clk.Now())
	return tok, nil
}

// answerKey keys, in a token request's context, the answer that answerRecorder fills in:
// x/oauth2 returns no status or headers with a token, and Auth0's quota headers come with both.
type answerKey struct{}

// answer is the status and headers of a token request's response; zero when none arrived.
type answer struct {
	status int
	header http.Header
}

// answerRecorder records each answer into the answer its request's context carries.
// http.Client calls it on the caller's goroutine, so the caller reads the answer afterwards
// without locking.
type answerRecorder struct{ next http.RoundTripper }

func (t answerRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if a, ok := req.Context().Value(answerKey{}).(*answer); ok && err == nil {
		a.status, a.header = resp.StatusCode, resp.Header
	}
	return resp, err
}

// tokenError converts an x/oauth2 error to an APIError, after folding the answer (if any) into
// the quota gate. RetrieveError.Error() embeds the raw response body, so only its status, error
// and error_description fields are used, scrubbed of the client secret the request sent, which
// a broken or hostile token endpoint may echo.
func (s *m2mSource) tokenError(err error, ans *answer) error {
	apiErr := &APIError{Method: http.MethodPost, Path: tokenPath}
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		if ans.header == nil && re.Response != nil {
			ans.status, ans.header = re.Response.StatusCode, re.Response.Header
		}
		status := ans.status
		hold := s.gate.observe(status, ans.header, re.ErrorDescription, false, s.clk.Now())
		apiErr.StatusCode = status
		apiErr.Code = safetext.ScrubCode(re.ErrorCode, 64, s.conf.ClientSecret)
		apiErr.Message = safetext.Scrub(re.ErrorDescription, maxMessageLen, s.conf.ClientSecret)
		switch {
		case status == http.StatusTooManyRequests:
			s.stats.rateLimited.Add(1)
			apiErr.Kind = RateLimited
			apiErr.RetryAfter = hold
		case hold > 0: // the global rate limit
			apiErr.Kind = RateLimited
			apiErr.RetryAfter = hold
		case status >= 500:
			apiErr.Kind = ServerError
		default:
			// 400/401/403 (access_denied, invalid_client, unauthorized_client)
			// and 2xx bodies carrying an error all mean "not allowed".
			apiErr.Kind = Unauthorized
		}
	case errors.As(err, &ue):
		apiErr.Kind = Network
		apiErr.Err = ue.Err
	default:
		// Parse failures or a missing access_token. x/oauth2's message may
		// quote bytes of the body, so it is replaced.
		if ans.header != nil {
			s.gate.observe(ans.status, ans.header, "", false, s.clk.Now())
		}
		apiErr.Kind = BadResponse
		apiErr.Err = errors.New("token endpoint response could not be used")
	}
	return apiErr
}

// tokenCache shares one M2M token among all callers of a Client. Concurrent callers that find
// no usable token share one fetch (singleflight). A token is renewed tokenEarlyExpiry before it
// expires, on the client's clock; when the renewal fails transiently (a hold, a 5xx, the
// network), the old token keeps serving while it has minTokenValidity left. Dropping the token
// after a 401 is tied to its generation, so that many in-flight requests seeing the same 401
// drop it once.
type tokenCache struct {
	src     oauth2.TokenSource
	clk     clock.PassiveClock
	flights singleflight.Group

	mu     sync.Mutex
	tok    *oauth2.Token
	expiry time.Time // on clk; zero: the token did not say, and never expires
	gen    uint64
	// recent are the access tokens last handed out, newest first, so that an
	// error quoting server text can leave them out even when a server echoes
	// one; two, so that a rotation between a request and its error does not
	// let through the token that request sent.
	recent [2]string
}

func newTokenCache(src oauth2.TokenSource, clk clock.PassiveClock) *tokenCache {
	return &tokenCache{src: src, clk: clk}
}

// fetched is a token with its generation.
type fetched struct {
	tok *oauth2.Token
	gen uint64
}

// cached returns the token if it is valid for at least margin more.
func (tc *tokenCache) cached(margin time.Duration) (fetched, bool) {
	now := tc.clk.Now()
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.tok == nil || !tc.expiry.IsZero() && !now.Add(margin).Before(tc.expiry) {
		return fetched{}, false
	}
	return fetched{tc.tok, tc.gen}, true
}

// invalidate drops the cached token if it still belongs to generation gen.
func (tc *tokenCache) invalidate(gen uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.gen != gen {
		return
	}
	tc.gen++
	tc.tok, tc.expiry = nil, time.Time{}
}

// token returns the shared token and its generation. The fetch itself cannot
// be cancelled (oauth2.TokenSource has no context), but the caller stops
// waiting as soon as ctx is done; the fetch is bounded by Config.Timeout.
func (tc *tokenCache) token(ctx context.Context) (*oauth2.Token, uint64, error) {
	if f, ok := tc.cached(tokenEarlyExpiry); ok {
		return f.tok, f.gen, nil
	}
	ch := tc.flights.DoChan("m2m", tc.fetch)
	select {
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case r := <-ch:
		if r.Err == nil {
			f, _ := r.Val.(fetched)
			return f.tok, f.gen, nil
		}
		if f, ok := tc.cached(minTokenValidity); ok && IsTransient(r.Err) {
			return f.tok, f.gen, nil
		}
		return nil, 0, r.Err
	}
}

// fetch runs as the one flight of concurrent callers and stores what it gets.
func (tc *tokenCache) fetch() (any, error) {
	// A caller that found no token may start its flight just after another one stored it.
	if f, ok := tc.cached(tokenEarlyExpiry); ok {
		return f, nil
	}
	start := tc.clk.Now()
	tok, err := tc.src.Token()
	if err != nil {
		return nil, err
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.gen++
	tc.tok, tc.expiry = tok, expiryOf(tok, start)
	if tok.AccessToken != tc.recent[0] {
		tc.recent[1], tc.recent[0] = tc.recent[0], tok.AccessToken
	}
	return fetched{tok, tc.gen}, nil
}

// expiryOf places the token's expiry on the client's clock, counting its lifetime from the
// moment it was asked for. x/oauth2 keeps expires_in in ExpiresIn for JSON answers; for others
// only its wall-clock Expiry tells the lifetime.
func expiryOf(tok *oauth2.Token, asked time.Time) time.Time {
	switch {
	case tok.ExpiresIn > 0:
		return asked.Add(time.Duration(tok.ExpiresIn) * time.Second)
	case !tok.Expiry.IsZero():
		return asked.Add(time.Until(tok.Expiry))
	default:
		return time.Time{}
	}
}

// recentTokens returns the access tokens last handed out (empty strings for none).
func (tc *tokenCache) recentTokens() []string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.recent[:]
}

// grantedScopes reads the space-separated scope field of the token response.
func grantedScopes(tok *oauth2.Token) []string {
	s, _ := tok.Extra("scope").(string)
	return strings.Fields(s)
}
