package realidp

import (
	"context"
	"maps"
	"net/http"
	"time"

	"github.com/ory/fosite"
	"github.com/ory/fosite/handler/oauth2"
	"github.com/ory/fosite/token/jwt"
)

// The IdP's endpoints, the introspection the tests use, and the session of a user's grant.

// authorize is the authorization endpoint. The login page is a stand-in: the user named by
// login_hint is logged in and consents to every scope the client asked for and may have.
func (p *IdP) authorize(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := r.Context()
	ar, err := p.provider.NewAuthorizeRequest(ctx, r)
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	user := r.URL.Query().Get("login_hint")
	if !p.users[user] {
		p.provider.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied.WithHint("No such user."))
		return
	}
	for _, scope := range ar.GetRequestedScopes() {
		ar.GrantScope(scope)
	}
	resp, err := p.provider.NewAuthorizeResponse(ctx, ar, newSession(user))
	if err != nil {
		p.provider.WriteAuthorizeError(ctx, w, ar, err)
		return
	}
	p.provider.WriteAuthorizeResponse(ctx, w, ar, resp)
}

// token is the token endpoint; it records every request as an Exchange.
func (p *IdP) token(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := r.Context()
	ar, err := p.provider.NewAccessRequest(ctx, r, newSession(""))
	var resp fosite.AccessResponder
	if err == nil {
		resp, err = p.provider.NewAccessResponse(ctx, ar)
	}
	ex := Exchange{
		Caller: callerOf(r), ClientID: clientIDOf(r), Grant: r.PostForm.Get("grant_type"),
		AuthMethod: authMethodOf(r), Presented: Fingerprint(r.PostForm.Get("refresh_token")), At: arrived,
	}
	if err != nil {
		ex.Error = fosite.ErrorToRFC6749Error(err).ErrorField
		p.exchanges = append(p.exchanges, ex)
		p.provider.WriteAccessError(ctx, w, ar, err)
		return
	}
	refresh, _ := resp.GetExtra("refresh_token").(string)
	ex.Subject = ar.GetSession().GetSubject()
	ex.Access, ex.Refresh = Fingerprint(resp.GetAccessToken()), Fingerprint(refresh)
	p.exchanges = append(p.exchanges, ex)
	p.issued = append(p.issued, resp.GetAccessToken())
	if refresh != "" {
		p.issued = append(p.issued, refresh)
	}
	p.provider.WriteAccessResponse(ctx, w, ar, resp)
}

// revoke is the RFC 7009 revocation endpoint: revoking a refresh token revokes its family.
func (p *IdP) revoke(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx := r.Context()
	p.provider.WriteRevocationResponse(ctx, w, p.provider.NewRevocationRequest(ctx, r))
}

// Active reports whether fosite would accept token now, as an access token (refresh false) or
// as a refresh token (refresh true): introspection, which changes nothing.
func (p *IdP) Active(token string, refresh bool) bool {
	use := fosite.AccessToken
	if refresh {
		use = fosite.RefreshToken
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	got, _, err := p.provider.IntrospectToken(context.Background(), token, use, newSession(""))
	return err == nil && got == use
}

// session is the JWT session of a user's grant.
type session struct {
	oauth2.JWTSession
}

func newSession(subject string) *session {
	return &session{JWTSession: oauth2.JWTSession{
		JWTClaims: &jwt.JWTClaims{Subject: subject},
		JWTHeader: &jwt.Headers{},
		Subject:   subject,
	}}
}

// Clone gives a refreshed token fresh claims: fosite's JWTSession would keep the first token's
// iat.
func (s *session) Clone() fosite.Session {
	c := newSession(s.Subject)
	c.ExpiresAt = maps.Clone(s.ExpiresAt)
	c.Username = s.Username
	return c
}
