package auth0

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// User is the part of an Auth0 user the operator needs: who it is, when it
// last logged in (a new login means Auth0 holds fresh IdP tokens), and its
// linked identities with their IdP tokens.
//
// User holds secrets, so its String, GoString and Format methods redact them;
// json.Marshal does NOT redact, so never marshal a User into logs.
type User struct {
	UserID     string
	LastLogin  *time.Time // nil when absent or not a valid timestamp
	Identities []Identity
}

// Identity is one IdP identity linked to an Auth0 user, with the tokens Auth0
// obtained from that IdP (present only with the read:user_idp_tokens scope).
type Identity struct {
	Connection string
	Provider   string
	// UserID is the IdP's id for the user. Auth0 returns a JSON number for
	// some providers (GitHub) and a string for others; it is always a string here.
	UserID            string
	IsSocial          bool
	AccessToken       string
	AccessTokenSecret string
	RefreshToken      string
	ExpiresIn         int64 // seconds, 0 when absent or malformed
	// ExpiresInMalformed is true when expires_in was present but not a whole number of seconds
	// from 0 to a century (fractional, negative, absurd, or not a number): ExpiresIn is then 0.
	ExpiresInMalformed bool
}

// Connection is an Auth0 connection; its options hold the OAuth client the
// operator needs to refresh tokens at the IdP.
type Connection struct {
	ID       string
	Name     string
	Strategy string
	Options  ConnectionOptions
	// TokenVault is true when Auth0 Token Vault keeps the connection's tokens
	// (options.federated_connections_access_tokens.active, or the newer
	// top-level connected_accounts.active): identities[] then carry none.
	TokenVault bool
}

// ConnectionOptions is the subset of a connection's options used to find and
// authenticate to the IdP's token endpoint.
type ConnectionOptions struct {
	ClientID     string
	ClientSecret string
	// TokenURL is options.tokenURL of strategy "oauth2" connections.
	TokenURL string
	// TenantDomain is options.tenant_domain of strategy "waad" connections.
	TenantDomain string
	// WAADCommonEndpoint is options.waad_common_endpoint or options.useCommonEndpoint of
	// strategy "waad" connections: the connection signs in through Entra ID's multi-tenant
	// "common" endpoint.
	WAADCommonEndpoint bool
	// TokenEndpoint is options.token_endpoint of strategy "oidc" and "okta" connections.
	TokenEndpoint string
	// DiscoveryURL is options.discovery_url of strategy "oidc" connections: the IdP's
	// OpenID configuration document, or the issuer it is found under.
	DiscoveryURL string
	// Issuer is options.issuer of strategy "oidc" and "okta" connections.
	Issuer string
	// TokenEndpointAuthMethod is options.token_endpoint_auth_method of strategy "oidc" and
	// "okta" connections (client_secret_post, client_secret_basic, private_key_jwt...);
	// empty when not set.
	TokenEndpointAuthMethod string
	// Domain is options.domain: the Okta organisation's domain of strategy "okta" connections.
	Domain            string
	AdminAccessToken  string
	AdminRefreshToken string
	// AdminAccessTokenExpiresAt is options.admin_access_token_expiresin which,
	// despite its name, is an absolute ISO 8601 time. nil when absent or
	// unparseable: it is advisory and must not make the connection unreadable.
	AdminAccessTokenExpiresAt *time.Time
}

// String renders the identity with its tokens redacted.
func (i Identity) String() string {
	return fmt.Sprintf("{Connection:%s Provider:%s UserID:%s IsSocial:%t AccessToken:%s AccessTokenSecret:%s RefreshToken:%s ExpiresIn:%d ExpiresInMalformed:%t}",
		i.Connection, i.Provider, i.UserID, i.IsSocial,
		safetext.Redacted(i.AccessToken), safetext.Redacted(i.AccessTokenSecret), safetext.Redacted(i.RefreshToken), i.ExpiresIn, i.ExpiresInMalformed)
}

// GoString keeps %#v from bypassing redaction.
func (i Identity) GoString() string { return "auth0.Identity" + i.String() }

// Format keeps every fmt verb from bypassing redaction.
func (i Identity) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "auth0.Identity", i.String())
}

// String renders the user with identity tokens redacted.
func (u User) String() string {
	var b strings.Builder
	b.WriteString("{UserID:")
	b.WriteString(u.UserID)
	b.WriteString(" LastLogin:")
	if u.LastLogin != nil {
		b.WriteString(u.LastLogin.UTC().Format(time.RFC3339))
	} else {
		b.WriteString("<nil>")
	}
	b.WriteString(" Identities:[")
	for n, id := range u.Identities {
		if n > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(id.String())
	}
	b.WriteString("]}")
	return b.String()
}

// GoString keeps %#v from bypassing redaction.
func (u User) GoString() string { return "auth0.User" + u.String() }

// Format keeps every fmt verb from bypassing redaction.
func (u User) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "auth0.User", u.String())
}

// String renders the options with the client secret and admin tokens redacted.
func (o ConnectionOptions) String() string {
	exp := "<nil>"
	if o.AdminAccessTokenExpiresAt != nil {
		exp = o.AdminAccessTokenExpiresAt.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("{ClientID:%s ClientSecret:%s TokenURL:%s TenantDomain:%s WAADCommonEndpoint:%t TokenEndpoint:%s DiscoveryURL:%s Issuer:%s TokenEndpointAuthMethod:%s Domain:%s AdminAccessToken:%s AdminRefreshToken:%s AdminAccessTokenExpiresAt:%s}",
		o.ClientID, safetext.Redacted(o.ClientSecret), o.TokenURL, o.TenantDomain,
		o.WAADCommonEndpoint, o.TokenEndpoint, o.DiscoveryURL, o.Issuer, o.TokenEndpointAuthMethod, o.Domain,
		safetext.Redacted(o.AdminAccessToken), safetext.Redacted(o.AdminRefreshToken), exp)
}

// GoString keeps %#v from bypassing redaction.
func (o ConnectionOptions) GoString() string { return "auth0.ConnectionOptions" + o.String() }

// Format keeps every fmt verb from bypassing redaction.
func (o ConnectionOptions) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "auth0.ConnectionOptions", o.String())
}

// String renders the connection with secrets in its options redacted.
func (c Connection) String() string {
	return fmt.Sprintf("{ID:%s Name:%s Strategy:%s Options:%s}", c.ID, c.Name, c.Strategy, c.Options.String())
}

// GoString keeps %#v from bypassing redaction.
func (c Connection) GoString() string { return "auth0.Connection" + c.String() }

// Format keeps every fmt verb from bypassing redaction.
func (c Connection) Format(f fmt.State, verb rune) {
	safetext.FormatRedacted(f, verb, "auth0.Connection", c.String())
}

// Errors of the lenient field decoders; they carry no input bytes.
var (
	errNotStringOrNumber = errors.New("an id is neither a string nor a number")
	errNotSeconds        = errors.New("expires_in is not a whole, non-negative number of seconds")
)

// flexString accepts a JSON string or number (kept as its literal digits, so
// large ids lose no precision) because Auth0 returns identity user_ids as
// numbers for some providers and strings for others.
type flexString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *flexString) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case string(b) == "null":
		*s = ""
		return nil
	case len(b) > 0 && b[0] == '"':
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = flexString(v)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return errNotStringOrNumber
	}
	*s = flexString(n.String())
	return nil
}

// flexSeconds accepts a non-negative whole number of seconds as a JSON number
// (integral floats included) or numeric string, because expires_in is not
// consistently typed across providers.
type flexSeconds int64

// maxSeconds bounds expires_in to a century so later Duration arithmetic
// (seconds * time.Second) cannot overflow.
const maxSeconds = 100 * 366 * 24 * 3600

// UnmarshalJSON implements json.Unmarshaler.
func (s *flexSeconds) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if string(b) == "null" {
		*s = 0
		return nil
	}
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		if v == "" {
			*s = 0
			return nil
		}
		b = []byte(v)
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSeconds || f != math.Trunc(f) {
		return errNotSeconds
	}
	*s = flexSeconds(f)
	return nil
}

// lenient decodes a T where a value that is not a T must not make the enclosing
// document unreadable: such a value leaves V at T's zero value and sets Malformed.
// Only the JSON's syntax is checked for the whole document, before any field is decoded.
type lenient[T any] struct {
	V         T
	Malformed bool
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (l *lenient[T]) UnmarshalJSON(b []byte) error {
	var v T
	if json.Unmarshal(b, &v) != nil {
		*l = lenient[T]{Malformed: true}
		return nil
	}
	*l = lenient[T]{V: v}
	return nil
}

type userJSON struct {
	UserID    flexString      `json:"user_id"`
	LastLogin lenient[string] `json:"last_login"`
	// Identities is strict about being an array, lenient about each element: an element
	// that is null or not an object is dropped, a field of one that does not decode is zeroed.
	Identities []lenient[*identityJSON] `json:"identities"`
}

// identityJSON decodes every field leniently: Auth0 passes IdP answers through, and
// one IdP's odd value (a fractional expires_in, isSocial as a string) must cost that
// field of that identity only, never the user.
type identityJSON struct {
	Connection        lenient[string]      `json:"connection"`
	Provider          lenient[string]      `json:"provider"`
	UserID            lenient[flexString]  `json:"user_id"`
	IsSocial          lenient[bool]        `json:"isSocial"`
	AccessToken       lenient[string]      `json:"access_token"`
	AccessTokenSecret lenient[string]      `json:"access_token_secret"`
	RefreshToken      lenient[string]      `json:"refresh_token"`
	ExpiresIn         lenient[flexSeconds] `json:"expires_in"`
}

// parseUser decodes a Management API user. Errors name fields, never values,
// because the body carries tokens.
func parseUser(body []byte) (*User, error) {
	var uj userJSON
	if err := json.Unmarshal(body, &uj); err != nil {
		return nil, describeJSONError("user", err)
	}
	if uj.UserID == "" {
		return nil, errors.New("user has no user_id")
	}
	u := &User{UserID: string(uj.UserID), LastLogin: parseISO8601(&uj.LastLogin.V)}
	if len(uj.Identities) > 0 {
		u.Identities = make([]Identity, 0, len(uj.Identities))
	}
	for _, l := range uj.Identities {
		ij := l.V
		if ij == nil {
			continue // null or not an object: there is nothing of an identity to keep
		}
		u.Identities = append(u.Identities, Identity{
			Connection:         ij.Connection.V,
			Provider:           ij.Provider.V,
			UserID:             string(ij.UserID.V),
			IsSocial:           ij.IsSocial.V,
			AccessToken:        ij.AccessToken.V,
			AccessTokenSecret:  ij.AccessTokenSecret.V,
			RefreshToken:       ij.RefreshToken.V,
			ExpiresIn:          int64(ij.ExpiresIn.V),
			ExpiresInMalformed: ij.ExpiresIn.Malformed,
		})
	}
	return u, nil
}

type connectionJSON struct {
	ID                string                 `json:"id"`
	Name              string                 `json:"name"`
	Strategy          string                 `json:"strategy"`
	Options           *connectionOptionsJSON `json:"options"`
	ConnectedAccounts *activeFlag            `json:"connected_accounts"`
}

type activeFlag struct {
	Active bool `json:"active"`
}

type connectionOptionsJSON struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	TokenURL     string `json:"tokenURL"`
	TenantDomain string `json:"tenant_domain"`
	// The options below are read leniently: they are optional, and set on connections of
	// strategies that do not use them, so an odd value must not make the connection unreadable.
	WAADCommonEndpoint      lenient[bool]   `json:"waad_common_endpoint"`
	UseCommonEndpoint       lenient[bool]   `json:"useCommonEndpoint"`
	TokenEndpoint           lenient[string] `json:"token_endpoint"`
	DiscoveryURL            lenient[string] `json:"discovery_url"`
	Issuer                  lenient[string] `json:"issuer"`
	TokenEndpointAuthMethod lenient[string] `json:"token_endpoint_auth_method"`
	Domain                  lenient[string] `json:"domain"`

	AdminAccessToken  string          `json:"admin_access_token"`
	AdminRefreshToken string          `json:"admin_refresh_token"`
	AdminExpiresIn    json.RawMessage `json:"admin_access_token_expiresin"`
	FederatedTokens   *activeFlag     `json:"federated_connections_access_tokens"`
}

func (cj *connectionJSON) toConnection() (Connection, error) {
	if cj.ID == "" {
		return Connection{}, errors.New("connection has no id")
	}
	c := Connection{ID: cj.ID, Name: cj.Name, Strategy: cj.Strategy}
	c.TokenVault = cj.ConnectedAccounts != nil && cj.ConnectedAccounts.Active
	if o := cj.Options; o != nil {
		c.TokenVault = c.TokenVault || (o.FederatedTokens != nil && o.FederatedTokens.Active)
		c.Options = ConnectionOptions{
			ClientID:                o.ClientID,
			ClientSecret:            o.ClientSecret,
			TokenURL:                o.TokenURL,
			TenantDomain:            o.TenantDomain,
			WAADCommonEndpoint:      o.WAADCommonEndpoint.V || o.UseCommonEndpoint.V,
			TokenEndpoint:           o.TokenEndpoint.V,
			DiscoveryURL:            o.DiscoveryURL.V,
			Issuer:                  o.Issuer.V,
			TokenEndpointAuthMethod: o.TokenEndpointAuthMethod.V,
			Domain:                  o.Domain.V,
			AdminAccessToken:        o.AdminAccessToken,
			AdminRefreshToken:       o.AdminRefreshToken,
		}
		var s *string
		if err := json.Unmarshal(o.AdminExpiresIn, &s); err == nil {
			c.Options.AdminAccessTokenExpiresAt = parseISO8601(s)
		}
	}
	return c, nil
}

// parseConnection decodes a single Management API connection.
func parseConnection(body []byte) (*Connection, error) {
	var cj connectionJSON
	if err := json.Unmarshal(body, &cj); err != nil {
		return nil, describeJSONError("connection", err)
	}
	c, err := cj.toConnection()
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// parseConnectionList decodes GET /api/v2/connections, which is a JSON array,
// or {"connections":[...]} when include_totals is in effect.
func parseConnectionList(body []byte) ([]Connection, error) {
	var list []connectionJSON
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var page struct {
			Connections *[]connectionJSON `json:"connections"`
		}
		if err := json.Unmarshal(trimmed, &page); err != nil {
			return nil, describeJSONError("connection list", err)
		}
		if page.Connections == nil {
			return nil, errors.New("connection list object has no connections field")
		}
		list = *page.Connections
	} else if err := json.Unmarshal(trimmed, &list); err != nil {
		return nil, describeJSONError("connection list", err)
	}
	out := make([]Connection, 0, len(list))
	for i := range list {
		c, err := list[i].toConnection()
		if err != nil {
			return nil, fmt.Errorf("connection list entry %d: %w", i, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// iso8601Layouts are the shapes Auth0 has been seen to use, most likely first;
// layouts without a zone are taken as UTC.
var iso8601Layouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999",
}

// parseISO8601 returns nil for absent, empty or unparseable timestamps.
func parseISO8601(s *string) *time.Time {
	if s == nil || *s == "" {
		return nil
	}
	for _, layout := range iso8601Layouts {
		if t, err := time.Parse(layout, *s); err == nil {
			t = t.UTC()
			return &t
		}
	}
	return nil
}

// describeJSONError reduces a decoding error to its position and the field it
// concerns. encoding/json's syntax errors can quote input bytes, and the input
// here contains tokens, so the original message is not kept.
func describeJSONError(what string, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("decoding %s: invalid JSON at offset %d", what, syn.Offset)
	case errors.As(err, &typ):
		kind, _, _ := strings.Cut(typ.Value, " ") // "number 12" -> "number"
		return fmt.Errorf("decoding %s: field %q has the wrong JSON type (%s)", what, typ.Field, kind)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("decoding %s: truncated JSON", what)
	case errors.Is(err, errNotStringOrNumber), errors.Is(err, errNotSeconds):
		return fmt.Errorf("decoding %s: %w", what, err)
	default:
		return fmt.Errorf("decoding %s: invalid value", what)
	}
}
