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
	"k8s.io/utils/clock"
)

// tokenEarlyExpiry makes the shared M2M token be replaced a minute before it
// expires, so a request never leaves with a token that dies in flight.
// Tokens issued with expires_in under a minute are therefore never reused.
const tokenEarlyExpiry = time.Minute

const tokenPath = "/oauth/token"

// m2mSource fetches a new client-credentials token on every call. It is only
// ever called through the reuse source in tokenCache, so each call is a real
// request to /oauth/token, which is what Stats.TokenRequests counts.
type m2mSource struct {
	conf *clientcredentials.Config
	// ctx carries oauth2.HTTPClient. oauth2.TokenSource has no context
	// parameter, so per-request deadlines come from the http.Client timeout.
	ctx   context.Context
	stats *counters
	clk   clock.PassiveClock
}

// Token implements oauth2.TokenSource.
func (s *m2mSource) Token() (*oauth2.Token, error) {
	s.stats.tokenRequests.Add(1)
	tok, err := s.conf.Token(s.ctx)
	if err != nil {
		return nil, s.tokenError(err)
	}
	return tok, nil
}

// tokenError converts an x/oauth2 error to an APIError. RetrieveError.Error()
// embeds the raw response body, so only its status, error and
// error_description fields are used, scrubbed of the client secret the request
// sent, which a broken or hostile token endpoint may echo.
func (s *m2mSource) tokenError(err error) error {
	apiErr := &APIError{Method: http.MethodPost, Path: tokenPath}
	var re *oauth2.RetrieveError
	var ue *url.Error
	switch {
	case errors.As(err, &re):
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		apiErr.StatusCode = status
		apiErr.Code = safetext.ScrubCode(re.ErrorCode, 64, s.conf.ClientSecret)
		apiErr.Message = safetext.Scrub(re.ErrorDescription, maxMessageLen, s.conf.ClientSecret)
		switch {
		case status == http.StatusTooManyRequests:
			s.stats.rateLimited.Add(1)
			apiErr.Kind = RateLimited
			apiErr.RetryAfter = retryAfter(re.Response.Header, s.clk.Now())
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
		apiErr.Kind = BadResponse
		apiErr.Err = errors.New("token endpoint response could not be used")
	}
	return apiErr
}

// tokenCache shares one M2M token among all callers of a Client through
// oauth2.ReuseTokenSourceWithExpiry, whose mutex also guarantees that
// concurrent callers trigger a single token request. Dropping the token after
// a 401 replaces the reuse source; gen makes that happen once per token even
// when many in-flight requests see the same 401.
type tokenCache struct {
	base oauth2.TokenSource

	mu  sync.Mutex
	src oauth2.TokenSource
	gen uint64
	// recent are the access tokens last handed out, newest first, so that an
	// error quoting server text can leave them out even when a server echoes
	// one; two, so that a rotation between a request and its error does not
	// let through the token that request sent.
	recent [2]string
}

func newTokenCache(base oauth2.TokenSource) *tokenCache {
	return &tokenCache{base: base, src: oauth2.ReuseTokenSourceWithExpiry(nil, base, tokenEarlyExpiry)}
}

func (tc *tokenCache) current() (oauth2.TokenSource, uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.src, tc.gen
}

// invalidate drops the cached token if it still belongs to generation gen.
func (tc *tokenCache) invalidate(gen uint64) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.gen != gen {
		return
	}
	tc.gen++
	tc.src = oauth2.ReuseTokenSourceWithExpiry(nil, tc.base, tokenEarlyExpiry)
}

// token returns the shared token and its generation. The fetch itself cannot
// be cancelled (oauth2.TokenSource has no context), but the caller stops
// waiting as soon as ctx is done; the fetch is bounded by Config.Timeout.
func (tc *tokenCache) token(ctx context.Context) (*oauth2.Token, uint64, error) {
	src, gen := tc.current()
	type result struct {
		tok *oauth2.Token
		err error
	}
	done := make(chan result, 1)
	go func() {
		tok, err := src.Token()
		done <- result{tok, err}
	}()
	select {
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	case r := <-done:
		if r.err == nil && r.tok != nil {
			tc.remember(r.tok.AccessToken)
		}
		return r.tok, gen, r.err
	}
}

func (tc *tokenCache) remember(tok string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tok != tc.recent[0] {
		tc.recent[1], tc.recent[0] = tc.recent[0], tok
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
