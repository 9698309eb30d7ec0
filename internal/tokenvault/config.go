// Package tokenvault is a client of Auth0 Token Vault's Privileged Worker
// token exchange: it trades a JWT signed with the worker's private key for
// the IdP access token Auth0 keeps for a user, so that the cluster never needs
// the IdP's refresh token.
//
// One Client serves one tenant. It signs a fresh subject token (header typ
// token-vault-req+jwt) and, unless a client secret is configured, a fresh
// RFC 7523 client assertion for every exchange, with go-jose. Errors are
// *Error values with a Kind; none of them contains a token, a key or a secret.
package tokenvault

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"golang.org/x/time/rate"
	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// Defaults. Auth0 counts Token Vault exchanges against the Authentication API
// budget, which is separate from the Management API's.
const (
	DefaultRequestsPerSecond = 10
	DefaultBurst             = 10
	DefaultTimeout           = 10 * time.Second
	DefaultMaxResponseBytes  = 64 << 10
	DefaultUserAgent         = "idptoken-operator"
	// MinRSAKeyBits is the smallest RSA key accepted for RS256 signing.
	MinRSAKeyBits = 2048
)

// Reasons a configuration is rejected, for the tenant's TokenVaultReady
// condition (see ConfigError.Reason).
const (
	// ReasonInvalidConfig: the domain, the client ID or the CA bundle is unusable.
	ReasonInvalidConfig = "TokenVaultInvalidConfig"
	// ReasonInvalidKey: private_key is missing, is not PEM, is encrypted or is not an RSA key.
	ReasonInvalidKey = "TokenVaultInvalidKey"
	// ReasonWeakKey: the RSA key is shorter than MinRSAKeyBits.
	ReasonWeakKey = "TokenVaultWeakKey"
)

// Config describes how to reach one tenant's Token Vault as its Privileged
// Worker client. Zero values select the documented defaults.
type Config struct {
	// Domain is the tenant host, optionally with a port; HTTPS always.
	Domain string
	// ClientID of the Privileged Worker application.
	ClientID string
	// PrivateKey is the PEM RSA key (PKCS#1 "RSA PRIVATE KEY" or PKCS#8
	// "PRIVATE KEY") whose public half is registered with the application.
	// It signs the subject tokens and the client assertions.
	PrivateKey []byte
	// ClientSecret, when set, authenticates the client instead of a
	// private_key_jwt client assertion.
	ClientSecret string
	// CABundle is optional PEM added to the system roots.
	CABundle []byte
	// RequestsPerSecond and Burst configure the client-side token bucket every
	// exchange waits on. +Inf disables it.
	RequestsPerSecond float64
	Burst             int
	// Timeout bounds each HTTP request.
	Timeout time.Duration
	// MaxResponseBytes bounds the response body; a larger one is an error.
	MaxResponseBytes int64
	// Clock is the source of the JWTs' timestamps and of every wait.
	Clock     clock.Clock
	UserAgent string
	// Transport replaces the HTTP transport (tests); CABundle is then ignored.
	Transport http.RoundTripper
}

// Keys of the tenant's Token Vault credentials Secret (spec.tokenVault.credentialsSecretRef).
const (
	SecretKeyClientID     = "client_id"
	SecretKeyPrivateKey   = "private_key"
	SecretKeyClientSecret = "client_secret" // optional
)

// LoadSecretData sets ClientID, PrivateKey and ClientSecret from the data of
// the credentials Secret. A missing client_id or private_key is a
// *ConfigError naming the key; the key is not parsed here (see Validate).
func (cfg *Config) LoadSecretData(data map[string][]byte) error {
	for _, k := range []string{SecretKeyClientID, SecretKeyPrivateKey} {
		if len(data[k]) == 0 {
			return &ConfigError{Reason: ReasonInvalidConfig, Field: "Secret key " + k, Problem: "is missing or empty"}
		}
	}
	cfg.ClientID = strings.TrimSpace(string(data[SecretKeyClientID]))
	cfg.PrivateKey = data[SecretKeyPrivateKey]
	cfg.ClientSecret = strings.TrimSpace(string(data[SecretKeyClientSecret]))
	return nil
}

// ConfigError says why a Config cannot be used. Its message names the field
// and the problem, never a value of a secret field.
type ConfigError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Field is the Config field at fault, e.g. "PrivateKey".
	Field   string
	Problem string
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("tokenvault: config: %s %s", e.Field, e.Problem)
}

// Validate checks everything that can be checked without calling Auth0: the
// domain, the client ID, the CA bundle and that the private key parses as an
// RSA key of at least MinRSAKeyBits. The error is a *ConfigError.
func (cfg Config) Validate() error {
	_, err := cfg.withDefaults()
	return err
}

// withDefaults validates cfg, fills in defaults and returns the parsed key.
func (cfg Config) withDefaults() (resolved, error) {
	if err := validateDomain(cfg.Domain); err != nil {
		return resolved{}, err
	}
	if strings.TrimSpace(cfg.ClientID) == "" {
		return resolved{}, &ConfigError{Reason: ReasonInvalidConfig, Field: "ClientID", Problem: "is empty"}
	}
	key, err := ParsePrivateKey(cfg.PrivateKey)
	if err != nil {
		return resolved{}, err
	}
	if math.IsNaN(cfg.RequestsPerSecond) || cfg.RequestsPerSecond < 0 {
		return resolved{}, &ConfigError{Reason: ReasonInvalidConfig, Field: "RequestsPerSecond", Problem: "must be positive"}
	}
	if cfg.Burst < 0 || cfg.Timeout < 0 || cfg.MaxResponseBytes < 0 {
		return resolved{}, &ConfigError{Reason: ReasonInvalidConfig, Field: "Burst, Timeout or MaxResponseBytes", Problem: "must not be negative"}
	}
	if cfg.RequestsPerSecond == 0 {
		cfg.RequestsPerSecond = DefaultRequestsPerSecond
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxResponseBytes == 0 {
		cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = DefaultUserAgent
	}
	if cfg.Transport == nil {
		t, err := newTransport(cfg.CABundle)
		if err != nil {
			return resolved{}, err
		}
		cfg.Transport = t
	}
	return resolved{Config: cfg, key: key}, nil
}

// resolved is a validated Config with its parsed key.
type resolved struct {
	Config
	key *rsa.PrivateKey
}

func (cfg Config) limit() rate.Limit {
	if math.IsInf(cfg.RequestsPerSecond, 1) {
		return rate.Inf
	}
	return rate.Limit(cfg.RequestsPerSecond)
}

// ParsePrivateKey parses a PEM RSA private key in PKCS#1 or PKCS#8 form and
// insists on at least MinRSAKeyBits. Encrypted keys are refused: the Secret
// holds the key in the clear, like every other credential of the tenant. The
// error is a *ConfigError that never quotes the PEM.
func ParsePrivateKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	invalid := func(problem string) error {
		return &ConfigError{Reason: ReasonInvalidKey, Field: "PrivateKey", Problem: problem}
	}
	if len(strings.TrimSpace(string(pemBytes))) == 0 {
		return nil, invalid("is empty")
	}
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, invalid("is not PEM")
	}
	if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
		return nil, invalid("is encrypted; store it unencrypted in the Secret")
	}
	var key *rsa.PrivateKey
	switch block.Type {
	case "RSA PRIVATE KEY":
		k, err := x509.ParsePKCS1PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalid("is not a valid PKCS#1 RSA private key")
		}
		key = k
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, invalid("is not a valid PKCS#8 private key")
		}
		rk, ok := k.(*rsa.PrivateKey)
		if !ok {
			return nil, invalid(fmt.Sprintf("is a %T, not an RSA key (RS256 needs RSA)", k))
		}
		key = rk
	default:
		return nil, invalid(fmt.Sprintf("has PEM type %q; want \"RSA PRIVATE KEY\" or \"PRIVATE KEY\"", block.Type))
	}
	if bits := key.N.BitLen(); bits < MinRSAKeyBits {
		return nil, &ConfigError{Reason: ReasonWeakKey, Field: "PrivateKey", Problem: fmt.Sprintf("is a %d-bit RSA key; at least %d bits are required", bits, MinRSAKeyBits)}
	}
	return key, nil
}

// validateDomain insists on a bare host[:port].
func validateDomain(domain string) error {
	if err := httpclient.CheckHost(domain); err != nil {
		return &ConfigError{Reason: ReasonInvalidConfig, Field: "Domain", Problem: err.Error()}
	}
	return nil
}

// newTransport clones the default transport (proxy settings, pooling) with
// TLS 1.2+ and the system roots plus caBundle.
func newTransport(caBundle []byte) (*http.Transport, error) {
	t, err := httpclient.NewTransport(caBundle)
	switch {
	case errors.Is(err, httpclient.ErrInvalidCABundle):
		return nil, &ConfigError{Reason: ReasonInvalidConfig, Field: "CABundle", Problem: err.Error()}
	case err != nil:
		return nil, fmt.Errorf("tokenvault: %w", err)
	}
	return t, nil
}
