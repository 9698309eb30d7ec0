package idp

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
	"github.com/idptoken/idptoken-operator/internal/metrics"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// defaultTimeout applies only when Refresher.HTTPClient is nil; callers
// normally pass the tenant's client from auth0.Client.HTTPClient.
const defaultTimeout = 30 * time.Second

// maxExpiresIn (seconds, ten years) bounds a believable expires_in: a larger
// value is read as absent, and never overflows time.Duration arithmetic.
const maxExpiresIn = 10 * 366 * 24 * 3600

// Token is the result of a refresh.
type Token struct {
	AccessToken  string
	RefreshToken string // the refresh token to use next time (new or unchanged)
	TokenType    string
	// RefreshTokenRotated is true when the IdP returned a refresh token
	// different from the one sent; the old one must be considered spent.
	RefreshTokenRotated bool
	// ExpiresIn is the response's expires_in in whole seconds (a number or a
	// numeric string, fractions dropped); 0 when absent, under a second,
	// negative, NaN or over ten years.
	ExpiresIn time.Duration
	// Expiry is Clock.Now()+ExpiresIn at the time of the response; zero when unknown.
	Expiry time.Time
	// Extra returns other response fields (e.g. "scope", "id_token",
	// "refresh_token_expires_in"); nil for absent fields.
	Extra func(string) any
}

// String renders the token with secrets redacted.
func (t Token) String() string {
	return fmt.Sprintf("{AccessToken:%s RefreshToken:%s TokenType:%s RefreshTokenRotated:%t ExpiresIn:%s Expiry:%s}",
		safetext.Redacted(t.AccessToken), safetext.Redacted(t.RefreshToken), t.TokenType, t.RefreshTokenRotated, t.ExpiresIn, t.Expiry.UTC().Format(time.RFC3339))
}

// GoString keeps %#v from bypassing redaction.
func (t Token) GoString() string { return "idp.Token" + t.String() }

// Format keeps every fmt verb from bypassing redaction.
func (t Token) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "idp.Token", t.String())
}

// Refresher performs refresh-token grants. The zero value works but uses no
// custom CA roots; set HTTPClient to the tenant's client.
type Refresher struct {
	// HTTPClient is used for the token request; its Timeout bounds it.
	HTTPClient *http.Client
	// Clock computes Token.Expiry; default clock.RealClock{}.
	Clock clock.Clock
}

// httpClient never follows redirects, whatever client it was given: a 3xx from a token endpoint
// must not re-post the refresh token and client secret to the Location it names.
// Its transport is wrapped in jsonAnswers, which asks for JSON and makes odd answers readable.
func (r *Refresher) httpClient() *http.Client {
	var c *http.Client
	if r.HTTPClient == nil {
		c = httpclient.New(nil, defaultTimeout)
	} else {
		c = httpclient.WithoutRedirects(r.HTTPClient)
	}
	c.Transport = jsonAnswers{base: c.Transport}
	return c
}

func (r *Refresher) clock() clock.Clock {
	if r.Clock != nil {
		return r.Clock
	}
	return clock.RealClock{}
}

// Refresh exchanges refreshToken for a new access token at ep. It sends
// exactly one HTTP request, even on failure, because some IdPs (GitHub)
// accept a refresh token only once.
//
// Answers are read as real IdPs send them (see jsonAnswers): a body starting
// with '{' is JSON whatever its Content-Type, a nonsensical expires_in is
// ignored rather than failing the answer, and an error code is classified
// even when it comes with HTTP 200 (GitHub).
//
// Errors are *RefreshError (use errors.Is(err, ErrInvalidGrant), IsTransient,
// IsInvalidClient), a wrapped ErrNoEndpoint for an unusable ep, or a wrapped
// context error when ctx ended first.
func (r *Refresher) Refresh(ctx context.Context, ep Endpoint, refreshToken string) (*Token, error) {
	if err := ep.validate(); err != nil {
		return nil, fmt.Errorf("idp: %w", err)
	}
	if refreshToken == "" {
		return nil, errors.New("idp: no refresh token to refresh with")
	}
	conf := &oauth2.Config{
		ClientID:     ep.ClientID,
		ClientSecret: ep.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: ep.TokenURL, AuthStyle: ep.effectiveAuthStyle()},
	}
	octx := context.WithValue(ctx, oauth2.HTTPClient, r.httpClient())
	start := time.Now()
	// The seed token has no access token, so the source refreshes at once;
	// with an explicit AuthStyle x/oauth2 makes exactly one request.
	tok, err := conf.TokenSource(octx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		err = classify(ctx, displayURL(ep.TokenURL), err, r.clock().Now(), sentSecrets(ep, refreshToken)...)
		metrics.ObserveRefresh(ep.Provider, resultOf(err), time.Since(start))
		return nil, err
	}
	metrics.ObserveRefresh(ep.Provider, metrics.ResultSuccess, time.Since(start))
	return r.convert(tok, refreshToken), nil
}

// sentSecrets lists what a refresh request sends that an IdP must not get back
// into an error: the refresh token, the client secret and, for
// AuthStyleInHeader, the Basic credentials as x/oauth2 encodes them.
func sentSecrets(ep Endpoint, refreshToken string) []string {
	secrets := []string{refreshToken, ep.ClientSecret}
	if ep.ClientSecret != "" && ep.effectiveAuthStyle() == oauth2.AuthStyleInHeader {
		basic := url.QueryEscape(ep.ClientID) + ":" + url.QueryEscape(ep.ClientSecret)
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte(basic)))
	}
	return secrets
}

// convert builds our Token. x/oauth2 copies the sent refresh token into the
// result when the IdP omits one, so rotation is detected by comparison.
func (r *Refresher) convert(tok *oauth2.Token, sent string) *Token {
	t := &Token{
		AccessToken:         tok.AccessToken,
		RefreshToken:        tok.RefreshToken,
		TokenType:           tok.TokenType,
		RefreshTokenRotated: tok.RefreshToken != "" && tok.RefreshToken != sent,
		ExpiresIn:           expiresIn(tok),
		Extra:               tok.Extra,
	}
	if t.RefreshToken == "" {
		t.RefreshToken = sent
	}
	if t.ExpiresIn > 0 {
		t.Expiry = r.clock().Now().Add(t.ExpiresIn)
	}
	return t
}

// expiresIn reads expires_in, as whole seconds. x/oauth2 sets Token.ExpiresIn
// only for JSON bodies (which jsonAnswers has already normalized); for
// form-encoded bodies (GitHub without Accept: application/json) the value is
// only reachable through Extra, as an int64, float64 or string. A value that is
// no usable duration (see secondsOf) reads as absent: 0.
func expiresIn(tok *oauth2.Token) time.Duration {
	var secs int64
	var ok bool
	if tok.ExpiresIn != 0 {
		secs, ok = secondsOf(float64(tok.ExpiresIn))
	} else {
		switch v := tok.Extra("expires_in").(type) {
		case int64:
			secs, ok = secondsOf(float64(v))
		case float64:
			secs, ok = secondsOf(v)
		case string:
			secs, ok = stringSeconds(v)
		}
	}
	if !ok {
		return 0
	}
	return time.Duration(secs) * time.Second
}
