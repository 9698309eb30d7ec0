package conformance

import (
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/internal/idp"
)

// The IdP OAuth client and refresh token the suite refreshes with, unless a fixture shows the
// refresh token its request sent.
const (
	idpClientID     = "conformance-idp-client"
	idpClientSecret = "conformance-idp-client-SECRET"
	sentRefresh     = "conformance-refresh-token-SENT"
)

// refreshRow drives idp.Refresher against one token endpoint answer.
type refreshRow struct {
	fixture string
	style   oauth2.AuthStyle // zero: client_secret_post
	check   func(t *testing.T, f *fixture, sent string, tok *idp.Token, err error)
}

func TestIdPRefresh(t *testing.T) {
	for _, row := range refreshRows {
		t.Run(row.fixture, func(t *testing.T) {
			f := loadFixture(t, row.fixture)
			r := newReplay(t, at(f))
			sent := sentRefresh
			if rt := f.Request.Form["refresh_token"]; rt != "" {
				sent = rt
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			refresher := &idp.Refresher{HTTPClient: r.client(), Clock: clocktesting.NewFakeClock(t0)}
			tok, err := refresher.Refresh(ctx, idp.Endpoint{
				TokenURL: r.url(f.Request.Path), ClientID: idpClientID, ClientSecret: idpClientSecret,
				AuthStyle: row.style, Provider: "conformance",
			}, sent)
			if n := len(r.requests(at(f))); n != 1 {
				t.Errorf("%d requests to the token endpoint, want exactly 1", n)
			}
			assertNoSecret(t, err, sent, idpClientSecret)
			row.check(t, f, sent, tok, err)
		})
	}
}

// wantToken checks a successful refresh: the access token, the lifetime (0: none given) and
// whether the IdP rotated the refresh token.
func wantToken(t *testing.T, tok *idp.Token, err error, access string, lifetime time.Duration, rotatedTo string) {
	t.Helper()
	if err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if tok.AccessToken != access {
		t.Error("the access token is not the one answered")
	}
	if tok.ExpiresIn != lifetime {
		t.Errorf("ExpiresIn = %s, want %s", tok.ExpiresIn, lifetime)
	}
	if lifetime > 0 && !tok.Expiry.Equal(t0.Add(lifetime)) {
		t.Errorf("Expiry = %s, want %s", tok.Expiry, t0.Add(lifetime))
	}
	if lifetime == 0 && !tok.Expiry.IsZero() {
		t.Errorf("Expiry = %s for an answer without expires_in", tok.Expiry)
	}
	rotated := rotatedTo != ""
	if tok.RefreshTokenRotated != rotated || (rotated && tok.RefreshToken != rotatedTo) {
		t.Errorf("RefreshTokenRotated = %t, want %t (or the new refresh token is not the one answered)", tok.RefreshTokenRotated, rotated)
	}
}

// wantRefreshError checks a failed refresh: its kind and, when given, OAuth code and status.
func wantRefreshError(t *testing.T, err error, kind idp.ErrorKind, code string, status int) {
	t.Helper()
	var re *idp.RefreshError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not an *idp.RefreshError", err)
	}
	if re.Kind != kind || (code != "" && re.Code != code) || (status != 0 && re.StatusCode != status) {
		t.Errorf("got %s %q at %d, want %s %q at %d: %v", re.Kind, re.Code, re.StatusCode, kind, code, status, err)
	}
	if got := errors.Is(err, idp.ErrInvalidGrant); got != (kind == idp.InvalidGrant) {
		t.Errorf("errors.Is(err, ErrInvalidGrant) = %t: %v", got, err)
	}
	if got := idp.IsInvalidClient(err); got != (kind == idp.InvalidClient) {
		t.Errorf("IsInvalidClient = %t: %v", got, err)
	}
}
