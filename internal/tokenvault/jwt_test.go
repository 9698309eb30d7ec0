package tokenvault

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// testKey is generated once: RSA key generation is the slow part.
var testKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func pkcs1PEM(k *rsa.PrivateKey) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
}

func pkcs8PEM(t *testing.T, k any) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

func publicPEM(t testing.TB, k *rsa.PrivateKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// now is deliberately not on a second boundary.
var now = time.Date(2026, 11, 28, 9, 0, 0, 700_000_000, time.UTC)

const (
	domain   = "tenant.example.com:8443"
	audience = "https://tenant.example.com:8443/"
	clientID = "worker-client"
)

func testSigner(t *testing.T) *signer {
	t.Helper()
	s, err := newSigner(testKey(), domain, clientID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify parses tok with the library, allowing RS256 only, checks the
// signature against the public key and returns header typ and claims.
func verify(t *testing.T, tok string, pub *rsa.PublicKey) (string, jwt.Claims, map[string]any) {
	t.Helper()
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("not an RS256 JWS: %v", err)
	}
	if len(parsed.Headers) != 1 || parsed.Headers[0].Algorithm != string(jose.RS256) {
		t.Fatalf("headers = %+v, want one RS256 header", parsed.Headers)
	}
	var claims jwt.Claims
	raw := map[string]any{}
	if err := parsed.Claims(pub, &claims, &raw); err != nil {
		t.Fatalf("signature does not verify with the public key: %v", err)
	}
	typ, _ := parsed.Headers[0].ExtraHeaders[jose.HeaderType].(string)
	return typ, claims, raw
}

func TestSubjectTokenVerifiesWithThePublicKey(t *testing.T) {
	s := testSigner(t)
	tok, err := s.subjectToken(now, "google-oauth2|42", "idptoken-operator team-a/alice")
	if err != nil {
		t.Fatal(err)
	}
	typ, c, raw := verify(t, tok, &testKey().PublicKey)
	if typ != "token-vault-req+jwt" {
		t.Errorf("typ = %q, want token-vault-req+jwt", typ)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: clientID, Subject: "google-oauth2|42", AnyAudience: jwt.Audience{audience}, Time: now}, 0); err != nil {
		t.Errorf("claims do not validate: %v", err)
	}
	// aud is a single string, as in Auth0's examples.
	if aud, ok := raw["aud"].(string); !ok || aud != audience {
		t.Errorf("aud = %#v, want the string %q", raw["aud"], audience)
	}
	iat := now.Truncate(time.Second)
	if c.IssuedAt == nil || !c.IssuedAt.Time().Equal(iat) || c.NotBefore == nil || !c.NotBefore.Time().Equal(iat) {
		t.Errorf("iat %v nbf %v, want both %v", c.IssuedAt, c.NotBefore, iat)
	}
	if c.Expiry == nil || c.Expiry.Time().Sub(c.IssuedAt.Time()) > 60*time.Second || !c.Expiry.Time().After(now) {
		t.Errorf("exp %v: lifetime must be at most 60 s and end after now", c.Expiry)
	}
	if c.ID == "" {
		t.Error("no jti")
	}
	if raw["audit_context"] != "idptoken-operator team-a/alice" {
		t.Errorf("audit_context = %#v", raw["audit_context"])
	}

	// The same token must not verify with another key.
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if err := parsed.Claims(&other.PublicKey, &jwt.Claims{}); err == nil {
		t.Error("the subject token verifies with an unrelated key")
	}
}

func TestClientAssertionVerifiesWithThePublicKey(t *testing.T) {
	s := testSigner(t)
	tok, err := s.clientAssertion(now)
	if err != nil {
		t.Fatal(err)
	}
	typ, c, raw := verify(t, tok, &testKey().PublicKey)
	if typ != "JWT" {
		t.Errorf("typ = %q, want JWT", typ)
	}
	// RFC 7523 §3: iss and sub are the client ID; Auth0 wants the tenant URL
	// with its trailing slash as aud.
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: clientID, Subject: clientID, AnyAudience: jwt.Audience{audience}, Time: now}, 0); err != nil {
		t.Errorf("claims do not validate: %v", err)
	}
	if c.ID == "" || len(c.ID) > 64 {
		t.Errorf("jti %q: want 1..64 characters", c.ID)
	}
	if c.Expiry == nil || c.IssuedAt == nil || c.Expiry.Time().Sub(c.IssuedAt.Time()) > 60*time.Second {
		t.Errorf("exp %v iat %v: lifetime must be at most 60 s", c.Expiry, c.IssuedAt)
	}
	if _, ok := raw["audit_context"]; ok {
		t.Error("the client assertion carries audit_context")
	}
	if len(tok) > 2048 {
		t.Errorf("assertion is %d bytes; Auth0 accepts at most 2048", len(tok))
	}
}

func TestJTIsAreUnique(t *testing.T) {
	s := testSigner(t)
	seen := map[string]bool{}
	for range 200 {
		sub, err := s.subjectToken(now, "u", "")
		if err != nil {
			t.Fatal(err)
		}
		as, err := s.clientAssertion(now)
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{sub, as} {
			_, c, _ := verify(t, tok, &testKey().PublicKey)
			if seen[c.ID] {
				t.Fatalf("jti %q repeated", c.ID)
			}
			seen[c.ID] = true
		}
	}
}

func TestAuditContextIsBoundedAndNeverEmpty(t *testing.T) {
	s := testSigner(t)
	for _, blank := range []string{"", " \t"} {
		tok, err := s.subjectToken(now, "u", blank)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, raw := verify(t, tok, &testKey().PublicKey); raw["audit_context"] != DefaultAuditContext {
			t.Errorf("audit context %q rendered as %#v, want %q", blank, raw["audit_context"], DefaultAuditContext)
		}
	}
	long := make([]rune, 1000)
	for i := range long {
		long[i] = 'é'
	}
	tok, err := s.subjectToken(now, "u", string(long))
	if err != nil {
		t.Fatal(err)
	}
	_, _, raw := verify(t, tok, &testKey().PublicKey)
	if got, _ := raw["audit_context"].(string); len([]rune(got)) != maxAuditContext {
		t.Errorf("audit_context has %d runes, want %d", len([]rune(got)), maxAuditContext)
	}
}

func TestParsePrivateKey(t *testing.T) {
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	encrypted := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte("x")})
	tests := map[string]struct {
		pem        []byte
		wantReason string // "" = success
	}{
		"PKCS#1":            {pem: pkcs1PEM(testKey())},
		"PKCS#8":            {pem: pkcs8PEM(t, testKey())},
		"with text around":  {pem: append(append([]byte("comment\n"), pkcs1PEM(testKey())...), "trailer\n"...)},
		"empty":             {pem: nil, wantReason: ReasonInvalidKey},
		"not PEM":           {pem: []byte("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"), wantReason: ReasonInvalidKey},
		"public key":        {pem: publicPEM(t, testKey()), wantReason: ReasonInvalidKey},
		"EC key":            {pem: pkcs8PEM(t, ec), wantReason: ReasonInvalidKey},
		"encrypted PKCS#1":  {pem: encrypted, wantReason: ReasonInvalidKey},
		"encrypted PKCS#8":  {pem: pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("x")}), wantReason: ReasonInvalidKey},
		"garbage in PKCS#1": {pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte("secret-bytes")}), wantReason: ReasonInvalidKey},
		"1024-bit":          {pem: pkcs1PEM(small), wantReason: ReasonWeakKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			key, err := ParsePrivateKey(tc.pem)
			if tc.wantReason == "" {
				if err != nil || key == nil {
					t.Fatalf("ParsePrivateKey: %v", err)
				}
				return
			}
			var ce *ConfigError
			if !asConfigError(err, &ce) || ce.Reason != tc.wantReason {
				t.Fatalf("err = %v, want a ConfigError with reason %s", err, tc.wantReason)
			}
			assertNoKeyMaterial(t, err.Error(), tc.pem)
		})
	}
}
