package conformance

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"math"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/internal/tokenvault"
)

// The Privileged Worker application the suite exchanges as, and the user and connection.
const (
	vaultClientID   = "conformance-token-vault-worker"
	vaultUser       = "google-oauth2|111199914890750704174"
	vaultConnection = "google-oauth2"
)

// vaultRow drives tokenvault.Client against one answer of the Token Vault exchange at
// /oauth/token. The exchange is tried twice; the second attempt shows any hold.
type vaultRow struct {
	fixture string
	now     func(t testing.TB, f *fixture) time.Time
	check   func(t *testing.T, f *fixture, o vaultOutcome)
}

type vaultOutcome struct {
	tok            *tokenvault.Token
	err, secondErr error
	requests       int
	sentAt         time.Time
}

// vaultRows: DESIGN.md, "Token Vault" and "Real IdPs and real Auth0 answers" (a 401 that is
// the worker client's problem is the tenant's TokenVaultNotAuthorized, not IdentityNotFound).
var vaultRows = []vaultRow{
	{fixture: "auth0-token-vault-exchange-success", check: func(t *testing.T, f *fixture, o vaultOutcome) {
		if o.err != nil {
			t.Fatalf("Exchange: %v", o.err)
		}
		if o.tok.AccessToken != f.field(t, "access_token") {
			t.Error("the access token is not the one answered")
		}
		if o.tok.ExpiresIn != 1377*time.Second || !o.tok.ExpiresAt.Equal(o.sentAt.Add(1377*time.Second)) {
			t.Errorf("ExpiresIn %s, ExpiresAt %s; want 1377s after %s", o.tok.ExpiresIn, o.tok.ExpiresAt, o.sentAt)
		}
		if o.tok.Scope != f.field(t, "scope") || o.tok.IssuedTokenType != f.field(t, "issued_token_type") {
			t.Errorf("scope %q, issued_token_type %q: not the answered ones", o.tok.Scope, o.tok.IssuedTokenType)
		}
	}},
	{fixture: "auth0-token-vault-401-no-identity", check: func(t *testing.T, _ *fixture, o vaultOutcome) {
		wantVaultKind(t, o.err, tokenvault.IdentityNotFound)
	}},
	{fixture: "auth0-oauth-token-401-access-denied", check: func(t *testing.T, _ *fixture, o vaultOutcome) {
		wantVaultKind(t, o.err, tokenvault.ClientAuthFailed)
	}},
	{fixture: "auth0-token-vault-403-forbidden", check: func(t *testing.T, _ *fixture, o vaultOutcome) {
		wantVaultKind(t, o.err, tokenvault.NotAuthorized)
	}},
	{
		// 429 → back off until X-RateLimit-Reset; the next exchange is held, not sent.
		fixture: "auth0-oauth-token-429-rate-limit", now: beforeReset(30 * time.Second),
		check: func(t *testing.T, _ *fixture, o vaultOutcome) {
			wantVaultKind(t, o.err, tokenvault.RateLimited)
			if wait, _ := tokenvault.RetryAfter(o.err); wait != 30*time.Second {
				t.Errorf("RetryAfter = %s, want 30s (X-RateLimit-Reset)", wait)
			}
			if tokenvault.KindOf(o.secondErr) != tokenvault.RateLimited || o.requests != 1 {
				t.Errorf("second exchange: %v after %d requests; want RateLimited after 1", o.secondErr, o.requests)
			}
		},
	},
}

func TestTokenVault(t *testing.T) {
	key := workerKey(t)
	for _, row := range vaultRows {
		t.Run(row.fixture, func(t *testing.T) {
			f := loadFixture(t, row.fixture)
			r := newReplay(t, at(f))
			now := t0
			if row.now != nil {
				now = row.now(t, f)
			}
			c, err := tokenvault.New(tokenvault.Config{
				Domain: r.domain(), ClientID: vaultClientID, PrivateKey: key, CABundle: r.caPEM(),
				RequestsPerSecond: math.Inf(1), Burst: 1, Timeout: 5 * time.Second, Clock: clocktesting.NewFakeClock(now),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			o := vaultOutcome{sentAt: now}
			o.tok, o.err = c.Exchange(ctx, vaultUser, vaultConnection, "idptoken-operator conformance/row")
			if o.err != nil {
				_, o.secondErr = c.Exchange(ctx, vaultUser, vaultConnection, "idptoken-operator conformance/row")
			}
			o.requests = len(r.requests(at(f)))
			row.check(t, f, o)
		})
	}
}

func wantVaultKind(t *testing.T, err error, kind tokenvault.Kind) {
	t.Helper()
	if got := tokenvault.KindOf(err); got != kind {
		t.Errorf("kind %s, want %s: %v", got, kind, err)
	}
}

var (
	workerKeyOnce sync.Once
	workerKeyPEM  []byte
)

// workerKey is a fresh RSA key of the worker application, made once per test binary.
func workerKey(t testing.TB) []byte {
	t.Helper()
	workerKeyOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		workerKeyPEM = pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	})
	return workerKeyPEM
}
