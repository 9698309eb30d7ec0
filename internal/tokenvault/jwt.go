package tokenvault

import (
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Protocol constants of the Privileged Worker token exchange.
const (
	GrantType          = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
	SubjectTokenType   = "urn:ietf:params:oauth:token-type:jwt"
	RequestedTokenType = "http://auth0.com/oauth/token-type/token-vault-access-token"
	// SubjectTokenJWTType is the typ header Auth0 requires on the subject token.
	SubjectTokenJWTType = "token-vault-req+jwt"
	// ClientAssertionType is RFC 7523's client_assertion_type.
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// AuditContextClaim carries who asked, for Auth0's logs.
	AuditContextClaim = "audit_context"
	// DefaultAuditContext is sent when the caller gives no audit context:
	// Auth0 requires a non-empty audit_context on every subject token.
	DefaultAuditContext = "idptoken-operator"
)

// Lifetimes of the JWTs. Both are single-use: Auth0 rejects a replayed jti
// and recommends at most a minute.
const (
	SubjectTokenLifetime    = 60 * time.Second
	ClientAssertionLifetime = 60 * time.Second
)

// maxAuditContext bounds the audit_context claim (runes).
const maxAuditContext = 256

// signer signs both kinds of JWT with the worker's key.
type signer struct {
	audience      string // https://<domain>/
	clientID      string
	subjectSigner jose.Signer
	assertSigner  jose.Signer
}

func newSigner(key *rsa.PrivateKey, domain, clientID string) (*signer, error) {
	sk := jose.SigningKey{Algorithm: jose.RS256, Key: key}
	subject, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType(SubjectTokenJWTType))
	if err != nil {
		return nil, fmt.Errorf("tokenvault: subject token signer: %w", err)
	}
	assert, err := jose.NewSigner(sk, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("tokenvault: client assertion signer: %w", err)
	}
	return &signer{audience: "https://" + domain + "/", clientID: clientID, subjectSigner: subject, assertSigner: assert}, nil
}

// subjectToken is the JWT that names the user: iss = client ID, sub = user,
// aud = the tenant, a lifetime of SubjectTokenLifetime, a random jti and
// audit_context (DefaultAuditContext when auditContext is blank).
func (s *signer) subjectToken(now time.Time, userID, auditContext string) (string, error) {
	claims := s.claims(now, userID, SubjectTokenLifetime)
	if strings.TrimSpace(auditContext) == "" {
		auditContext = DefaultAuditContext
	}
	extra := map[string]any{AuditContextClaim: clipRunes(auditContext, maxAuditContext)}
	tok, err := jwt.Signed(s.subjectSigner).Claims(claims).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("tokenvault: signing the subject token: %w", err)
	}
	return tok, nil
}

// clientAssertion is the RFC 7523 §2.2 private_key_jwt assertion: iss = sub =
// client ID, aud = the tenant URL with its trailing slash, as Auth0 documents.
func (s *signer) clientAssertion(now time.Time) (string, error) {
	tok, err := jwt.Signed(s.assertSigner).Claims(s.claims(now, s.clientID, ClientAssertionLifetime)).Serialize()
	if err != nil {
		return "", fmt.Errorf("tokenvault: signing the client assertion: %w", err)
	}
	return tok, nil
}

func (s *signer) claims(now time.Time, subject string, lifetime time.Duration) jwt.Claims {
	// NumericDate has whole seconds: truncate first so that exp - iat is
	// exactly the lifetime and never one second more.
	iat := now.Truncate(time.Second)
	return jwt.Claims{
		Issuer:    s.clientID,
		Subject:   subject,
		Audience:  jwt.Audience{s.audience},
		IssuedAt:  jwt.NewNumericDate(iat),
		NotBefore: jwt.NewNumericDate(iat),
		Expiry:    jwt.NewNumericDate(iat.Add(lifetime)),
		ID:        rand.Text(),
	}
}

func clipRunes(s string, n int) string {
	i := 0
	for j := range s {
		if i == n {
			return s[:j]
		}
		i++
	}
	return s
}
