package secrettemplate

import (
	"fmt"
	"time"

	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// Input is what a template reads: {{ .AccessToken }}, {{ .ExpiresAt }} and so on. Printed
// with fmt (any verb), encoded as JSON, or rendered whole as {{ . }}, it shows the token
// values redacted; only a template's field access reads them.
type Input struct {
	AccessToken       string
	TokenType         string
	Scope             string
	AccessTokenSecret string
	Provider          string
	Connection        string
	// RefreshToken is readable only by a template compiled with includeRefreshToken.
	RefreshToken string
	// ExpiresAt is zero when the expiry is unknown.
	ExpiresAt time.Time
}

// secrets are the values that must never appear in an error.
func (in Input) secrets() []string {
	return []string{in.AccessToken, in.AccessTokenSecret, in.RefreshToken}
}

// String renders the input with the token values redacted.
func (in Input) String() string {
	return fmt.Sprintf("{AccessToken:%s TokenType:%s Scope:%s AccessTokenSecret:%s Provider:%s Connection:%s RefreshToken:%s ExpiresAt:%s}",
		safetext.Redacted(in.AccessToken), in.TokenType, in.Scope, safetext.Redacted(in.AccessTokenSecret),
		in.Provider, in.Connection, safetext.Redacted(in.RefreshToken), formatTime(in.ExpiresAt))
}

// GoString keeps %#v from bypassing redaction.
func (in Input) GoString() string { return "secrettemplate.Input" + in.String() }

// Format keeps every fmt verb from bypassing redaction.
func (in Input) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "secrettemplate.Input", in.String())
}

// MarshalJSON keeps JSON encoders (structured loggers, {{ toJson . }}) from bypassing
// redaction.
func (in Input) MarshalJSON() ([]byte, error) {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "<redacted>"
	}
	s, err := toJSON(struct {
		AccessToken, TokenType, Scope, AccessTokenSecret, Provider, Connection, RefreshToken, ExpiresAt string
	}{
		redact(in.AccessToken), in.TokenType, in.Scope, redact(in.AccessTokenSecret),
		in.Provider, in.Connection, redact(in.RefreshToken), formatTime(in.ExpiresAt),
	})
	return []byte(s), err
}

// formatTime is RFC 3339 in UTC, or "" for the zero time (an unknown expiry).
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
