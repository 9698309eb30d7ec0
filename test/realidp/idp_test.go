package realidp

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/oauth2"
)

// These tests show that the IdP is as strict as the suite needs it to be: if fosite accepted a
// spent refresh token or a client authenticating the wrong way, the suite's specs could not fail.

func newTestIdP(t *testing.T) *IdP {
	t.Helper()
	p, err := NewIdP(IdPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	for _, c := range []struct{ id, method string }{{"post", AuthClientSecretPost}, {"basic", AuthClientSecretBasic}} {
		if err := p.AddClient(c.id, "realidp_cs_"+c.id, c.method); err != nil {
			t.Fatal(err)
		}
	}
	p.AddUser("alice")
	return p
}

func login(t *testing.T, p *IdP, client string) *oauth2.Token {
	t.Helper()
	tok, err := p.Login(context.Background(), client, "alice")
	if err != nil {
		t.Fatalf("login through %s: %v", client, err)
	}
	return tok
}

// refusal is the OAuth 2.0 error code of a refused grant, "" for success.
func refusal(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("not a refused grant: %v", err)
	}
	return re.ErrorCode
}

func TestRefreshRotatesAndRevokesTheFamilyOnReplay(t *testing.T) {
	p := newTestIdP(t)
	ctx := context.Background()
	first := login(t, p, "post")
	if !p.Active(first.AccessToken, false) || !p.Active(first.RefreshToken, true) {
		t.Fatal("the tokens of a login are not active")
	}
	if p.Active(first.AccessToken, true) || p.Active(first.RefreshToken, false) {
		t.Fatal("Active does not tell access from refresh tokens")
	}
	second, err := p.Refresh(ctx, "post", first.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if second.RefreshToken == "" || second.RefreshToken == first.RefreshToken || second.AccessToken == first.AccessToken {
		t.Fatal("a refresh did not rotate both tokens")
	}
	if p.Active(first.RefreshToken, true) || !p.Active(second.RefreshToken, true) || !p.Active(second.AccessToken, false) {
		t.Fatal("after a refresh only the new tokens must be active")
	}

	_, err = p.Refresh(ctx, "post", first.RefreshToken)
	if got := refusal(t, err); got != "invalid_grant" {
		t.Fatalf("replaying a spent refresh token: got %q, want invalid_grant", got)
	}
	if p.Active(second.RefreshToken, true) || p.Active(second.AccessToken, false) {
		t.Fatal("a replay must revoke the whole family (RFC 6819 §5.2.2.3)")
	}
	_, err = p.Refresh(ctx, "post", second.RefreshToken)
	if got := refusal(t, err); got != "invalid_grant" {
		t.Fatalf("refreshing with a revoked family: got %q, want invalid_grant", got)
	}

	ex := p.Exchanges()
	if len(ex) != 4 || ex[2].Error != "invalid_grant" || ex[2].Presented != Fingerprint(first.RefreshToken) {
		t.Fatalf("exchanges not recorded as sent: %+v", ex)
	}
	for _, e := range ex {
		if e.Caller != CallerTest || e.AuthMethod != AuthClientSecretPost || e.ClientID != "post" {
			t.Fatalf("exchange recorded wrongly: %+v", e)
		}
	}
	if ex[1].Subject != "alice" || ex[1].Refresh != Fingerprint(second.RefreshToken) {
		t.Fatalf("refresh recorded wrongly: %+v", ex[1])
	}
}

func TestRevocationRevokesTheFamily(t *testing.T) {
	p := newTestIdP(t)
	ctx := context.Background()
	tok := login(t, p, "basic")
	if err := p.Revoke(ctx, "basic", tok.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	if p.Active(tok.RefreshToken, true) || p.Active(tok.AccessToken, false) {
		t.Fatal("revoking the refresh token must revoke its access token too")
	}
	_, err := p.Refresh(ctx, "basic", tok.RefreshToken)
	if got := refusal(t, err); got != "invalid_grant" {
		t.Fatalf("got %q, want invalid_grant", got)
	}
}

func TestClientAuthentication(t *testing.T) {
	for _, tc := range []struct {
		client string
		style  oauth2.AuthStyle
		secret string
		want   string
	}{
		{client: "post", style: oauth2.AuthStyleInParams, want: ""},
		{client: "post", style: oauth2.AuthStyleInHeader, want: "invalid_client"},
		{client: "basic", style: oauth2.AuthStyleInHeader, want: ""},
		{client: "basic", style: oauth2.AuthStyleInParams, want: "invalid_client"},
		{client: "post", style: oauth2.AuthStyleInParams, secret: "realidp_cs_wrong", want: "invalid_client"},
		{client: "basic", style: oauth2.AuthStyleInHeader, secret: "realidp_cs_wrong", want: "invalid_client"},
	} {
		sent := map[oauth2.AuthStyle]string{oauth2.AuthStyleInParams: "post", oauth2.AuthStyleInHeader: "basic"}[tc.style]
		t.Run(fmt.Sprintf("%s client sending %s with secret %q", tc.client, sent, tc.secret), func(t *testing.T) {
			p := newTestIdP(t)
			tok := login(t, p, tc.client)
			conf, err := p.config(tc.client)
			if err != nil {
				t.Fatal(err)
			}
			conf.Endpoint.AuthStyle = tc.style
			if tc.secret != "" {
				conf.ClientSecret = tc.secret
			}
			ctx := context.WithValue(context.Background(), oauth2.HTTPClient, p.testClient())
			_, err = conf.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
			if got := refusal(t, err); got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			if tc.want != "" && !p.Active(tok.RefreshToken, true) {
				t.Fatal("a request refused for its client must not spend the refresh token")
			}
		})
	}
}

func TestSetClientSecret(t *testing.T) {
	p := newTestIdP(t)
	ctx := context.Background()
	tok := login(t, p, "post")
	conf, err := p.config("post")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetClientSecret("post", "realidp_cs_rotated"); err != nil {
		t.Fatal(err)
	}
	hc := context.WithValue(ctx, oauth2.HTTPClient, p.testClient())
	_, err = conf.TokenSource(hc, &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if got := refusal(t, err); got != "invalid_client" {
		t.Fatalf("old secret: got %q, want invalid_client", got)
	}
	if _, err := p.Refresh(ctx, "post", tok.RefreshToken); err != nil {
		t.Fatalf("new secret: %v", err)
	}
}

func TestRefusedErrorHidesTheBody(t *testing.T) {
	p := newTestIdP(t)
	tok := login(t, p, "post")
	if err := p.Revoke(context.Background(), "post", tok.RefreshToken, "refresh_token"); err != nil {
		t.Fatal(err)
	}
	_, err := p.Refresh(context.Background(), "post", tok.RefreshToken)
	if err == nil || err.Error() != "realidp: the IdP refused the grant: 400 invalid_grant" {
		t.Fatalf("got %v", err)
	}
}
