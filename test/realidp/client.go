package realidp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/oauth2"
)

// What the test does at the IdP as one of its clients: log a user in, replay a refresh token,
// revoke one. Every request carries CallerHeader, so that Exchanges tells them from the
// operator's.

// config is the x/oauth2 configuration of a registered client.
func (p *IdP) config(clientID string) (*oauth2.Config, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	c, ok := p.clients[clientID]
	if !ok {
		return nil, fmt.Errorf("realidp: no client %q", clientID)
	}
	style := oauth2.AuthStyleInParams
	if c.TokenEndpointAuthMethod == AuthClientSecretBasic {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: c.secret,
		Endpoint:     oauth2.Endpoint{AuthURL: p.srv.URL + AuthPath, TokenURL: p.TokenURL(), AuthStyle: style},
		RedirectURL:  p.redirectURL,
		Scopes:       []string{OfflineScope, "profile"},
	}, nil
}

// testClient sends the test's requests: it trusts the server, marks them and follows no
// redirect (the authorization endpoint's redirect carries the code).
func (p *IdP) testClient() *http.Client {
	return &http.Client{
		Transport:     markTest{base: p.srv.Client().Transport},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type markTest struct{ base http.RoundTripper }

func (m markTest) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(CallerHeader, string(CallerTest))
	return m.base.RoundTrip(r)
}

// Login logs user in through client with the authorization-code grant and PKCE, as Auth0 does
// when a user signs in through a connection, and returns the tokens (with a refresh token: the
// client asks for offline_access).
func (p *IdP) Login(ctx context.Context, clientID, user string) (*oauth2.Token, error) {
	conf, err := p.config(clientID)
	if err != nil {
		return nil, err
	}
	hc := p.testClient()
	state := randomHex(16)
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("login_hint", user))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("realidp: authorization request: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		return nil, fmt.Errorf("realidp: authorization answered %s without a redirect", resp.Status)
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("realidp: authorization refused: %s", e)
	}
	if q.Get("state") != state || q.Get("code") == "" {
		return nil, errors.New("realidp: authorization redirect has no code or a wrong state")
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("realidp: code exchange: %w", errorCode(err))
	}
	if tok.RefreshToken == "" {
		return nil, errors.New("realidp: the code exchange gave no refresh token")
	}
	return tok, nil
}

// Refresh sends the refresh grant with refreshToken as client. A refused grant is an
// *oauth2.RetrieveError (its ErrorCode says why); its text is reduced to the code.
func (p *IdP) Refresh(ctx context.Context, clientID, refreshToken string) (*oauth2.Token, error) {
	conf, err := p.config(clientID)
	if err != nil {
		return nil, err
	}
	ctx = context.WithValue(ctx, oauth2.HTTPClient, p.testClient())
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, errorCode(err)
	}
	return tok, nil
}

// Revoke revokes token at the RFC 7009 endpoint as client; for a refresh token, fosite revokes
// its whole family (every token of the grant).
func (p *IdP) Revoke(ctx context.Context, clientID, token, hint string) error {
	conf, err := p.config(clientID)
	if err != nil {
		return err
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	if conf.Endpoint.AuthStyle == oauth2.AuthStyleInParams {
		form.Set("client_id", conf.ClientID)
		form.Set("client_secret", conf.ClientSecret)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.srv.URL+RevocationPath, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if conf.Endpoint.AuthStyle == oauth2.AuthStyleInHeader {
		req.SetBasicAuth(url.QueryEscape(conf.ClientID), url.QueryEscape(conf.ClientSecret))
	}
	resp, err := p.testClient().Do(req)
	if err != nil {
		return fmt.Errorf("realidp: revocation: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("realidp: revocation answered %s", resp.Status)
	}
	return nil
}

// errorCode keeps an *oauth2.RetrieveError (whose Error() quotes the response body) but makes
// it print only its status and code.
func errorCode(err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return &RefusedError{RetrieveError: re}
	}
	return err
}

// RefusedError is a grant the IdP refused.
type RefusedError struct {
	*oauth2.RetrieveError
}

// Error names the status and the OAuth 2.0 error code, nothing of the body.
func (e *RefusedError) Error() string {
	status := 0
	if e.Response != nil {
		status = e.Response.StatusCode
	}
	return fmt.Sprintf("realidp: the IdP refused the grant: %d %s", status, e.ErrorCode)
}

// Unwrap exposes the *oauth2.RetrieveError.
func (e *RefusedError) Unwrap() error { return e.RetrieveError }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
