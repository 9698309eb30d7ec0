package auth0

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseUser(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		wantErr   string
		wantIDs   []string // identity user ids
		wantLogin *time.Time
		wantExp   int64 // first identity's ExpiresIn
	}{
		{name: "numeric and string ids", body: `{"user_id":"github|1","identities":[{"user_id":1234567},{"user_id":"abc"}]}`, wantIDs: []string{"1234567", "abc"}},
		{name: "large numeric id keeps its digits", body: `{"user_id":"x","identities":[{"user_id":123456789012345678901234567890}]}`, wantIDs: []string{"123456789012345678901234567890"}},
		{name: "null id", body: `{"user_id":"x","identities":[{"user_id":null}]}`, wantIDs: []string{""}},
		{name: "boolean identity id is ignored", body: `{"user_id":"x","identities":[{"user_id":true}]}`, wantIDs: []string{""}},
		{name: "boolean user id", body: `{"user_id":true}`, wantErr: "neither a string nor a number"},
		{name: "numeric top-level id", body: `{"user_id":42}`, wantIDs: nil},
		{name: "expires_in number", body: `{"user_id":"x","identities":[{"expires_in":3600}]}`, wantIDs: []string{""}, wantExp: 3600},
		{name: "expires_in integral float", body: `{"user_id":"x","identities":[{"expires_in":3600.0}]}`, wantIDs: []string{""}, wantExp: 3600},
		{name: "expires_in string", body: `{"user_id":"x","identities":[{"expires_in":"3600"}]}`, wantIDs: []string{""}, wantExp: 3600},
		{name: "expires_in negative is ignored", body: `{"user_id":"x","identities":[{"expires_in":-1}]}`, wantIDs: []string{""}},
		{name: "expires_in fraction is ignored", body: `{"user_id":"x","identities":[{"expires_in":1.5}]}`, wantIDs: []string{""}},
		{name: "expires_in huge is ignored", body: `{"user_id":"x","identities":[{"expires_in":1e300}]}`, wantIDs: []string{""}},
		{name: "an identity that is not an object is dropped", body: `{"user_id":"x","identities":["SECRET",{"user_id":"a"},null]}`, wantIDs: []string{"a"}},
		{name: "last_login", body: `{"user_id":"x","last_login":"2024-01-02T03:04:05.678+01:00"}`, wantLogin: ptr(time.Date(2024, 1, 2, 2, 4, 5, 678e6, time.UTC))},
		{name: "bad last_login is ignored", body: `{"user_id":"x","last_login":"yesterday"}`},
		{name: "last_login of another type is ignored", body: `{"user_id":"x","last_login":1704164645}`},
		{name: "no user_id", body: `{"identities":[]}`, wantErr: "no user_id"},
		{name: "syntax error", body: `{"user_id":"x","identities":[{"access_token":"SECRET"`, wantErr: "invalid JSON at offset"},
		{name: "identities not an array", body: `{"user_id":"x","identities":"SECRET"}`, wantErr: `"identities" has the wrong JSON type (string)`},
		{name: "not an object", body: `["SECRET"]`, wantErr: "wrong JSON type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUser([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				assertNoSecrets(t, err.Error())
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, id := range u.Identities {
				ids = append(ids, id.UserID)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("identity ids = %q, want %q", ids, tc.wantIDs)
			}
			if (u.LastLogin == nil) != (tc.wantLogin == nil) || (u.LastLogin != nil && !u.LastLogin.Equal(*tc.wantLogin)) {
				t.Errorf("LastLogin = %v, want %v", u.LastLogin, tc.wantLogin)
			}
			if len(u.Identities) > 0 && u.Identities[0].ExpiresIn != tc.wantExp {
				t.Errorf("ExpiresIn = %d, want %d", u.Identities[0].ExpiresIn, tc.wantExp)
			}
		})
	}
}

func TestParseConnectionAdminExpiry(t *testing.T) {
	tests := []struct {
		name  string
		value string // JSON value of admin_access_token_expiresin
		want  *time.Time
	}{
		{name: "Auth0 format", value: `"2025-03-04T05:06:07.890Z"`, want: ptr(time.Date(2025, 3, 4, 5, 6, 7, 890e6, time.UTC))},
		{name: "offset", value: `"2025-03-04T05:06:07+02:00"`, want: ptr(time.Date(2025, 3, 4, 3, 6, 7, 0, time.UTC))},
		{name: "offset without colon", value: `"2025-03-04T05:06:07.5+0200"`, want: ptr(time.Date(2025, 3, 4, 3, 6, 7, 5e8, time.UTC))},
		{name: "no zone means UTC", value: `"2025-03-04T05:06:07"`, want: ptr(time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC))},
		{name: "null", value: `null`},
		{name: "empty", value: `""`},
		{name: "number is not a time", value: `3600`},
		{name: "garbage", value: `"soon"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := `{"id":"con_1","options":{"admin_access_token_expiresin":` + tc.value + `}}`
			c, err := parseConnection([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			got := c.Options.AdminAccessTokenExpiresAt
			if (got == nil) != (tc.want == nil) || (got != nil && !got.Equal(*tc.want)) {
				t.Errorf("AdminAccessTokenExpiresAt = %v, want %v", got, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

var userSeeds = []string{
	userBody("github|1"),
	`{"user_id":"x","identities":[{"user_id":1234567,"provider":"github","access_token":"SECRET","expires_in":"28800"}]}`,
	`{"user_id":"x","identities":[{"user_id":"1.5e3"},{"user_id":-0},{"user_id":null}]}`,
	`{"user_id":"x","last_login":"2024-01-02T03:04:05Z","identities":null}`,
	`{"user_id":"x","identities":[{"expires_in":1e400}]}`,
	`{"user_id":"\u0000","identities":[{"user_id":{"a":1}}]}`,
	`[]`, `null`, `{`, ``,
}

// FuzzParseUser checks that no input panics, that errors never quote the
// input (which holds tokens), and that accepted users are well-formed.
func FuzzParseUser(f *testing.F) {
	for _, s := range userSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		u, err := parseUser(body)
		if err != nil {
			if strings.Contains(err.Error(), "SECRET") || len(err.Error()) > 200 {
				t.Fatalf("error quotes input: %q", err)
			}
			return
		}
		if u.UserID == "" {
			t.Fatal("accepted a user without user_id")
		}
		if u.LastLogin != nil && u.LastLogin.Location() != time.UTC {
			t.Fatal("LastLogin not normalised to UTC")
		}
		for _, id := range u.Identities {
			if id.ExpiresIn < 0 || id.ExpiresIn > maxSeconds {
				t.Fatalf("ExpiresIn %d out of range", id.ExpiresIn)
			}
		}
		// What String shows must not depend on token values, only on
		// whether a token is set.
		masked := *u
		masked.Identities = append([]Identity(nil), u.Identities...)
		for i := range masked.Identities {
			id := &masked.Identities[i]
			id.AccessToken, id.AccessTokenSecret, id.RefreshToken = mask(id.AccessToken), mask(id.AccessTokenSecret), mask(id.RefreshToken)
		}
		if u.String() != masked.String() || fmt.Sprintf("%+v", u) != fmt.Sprintf("%+v", &masked) {
			t.Fatal("String() depends on token values")
		}
		again, err := parseUser(body)
		if err != nil || !reflect.DeepEqual(u, again) {
			t.Fatal("parsing is not deterministic")
		}
	})
}

// mask replaces a secret by a fixed value of the same presence.
func mask(s string) string {
	if s == "" {
		return ""
	}
	return "X"
}

// FuzzParseConnection covers both the single-connection and the list parser,
// including admin_access_token_expiresin.
func FuzzParseConnection(f *testing.F) {
	seeds := []string{
		`{"id":"con_1","name":"gh","strategy":"github","options":{"client_id":"a","client_secret":"SECRET"}}`,
		`{"id":"con_2","strategy":"waad","options":{"tenant_domain":"contoso.com","admin_access_token":"SECRET","admin_access_token_expiresin":"2025-03-04T05:06:07.890Z"}}`,
		`{"id":"con_3","options":{"admin_access_token_expiresin":"2025-03-04T05:06:07"}}`,
		`{"id":"con_4","options":{"admin_access_token_expiresin":12}}`,
		`{"id":"con_5","options":null}`,
		`[{"id":"con_1","name":"a"},{"id":"con_2","name":"b"}]`,
		`{"connections":[{"id":"con_1"}],"total":1}`,
		`{"connections":null}`,
		`[{"name":"no id"}]`,
		`{"id":"x","options":{"tokenURL":5}}`,
		``, `[`, `null`, `"str"`,
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkErr := func(err error) {
			if strings.Contains(err.Error(), "SECRET") || len(err.Error()) > 200 {
				t.Fatalf("error quotes input: %q", err)
			}
		}
		checkConn := func(c *Connection) {
			if c.ID == "" {
				t.Fatal("accepted a connection without id")
			}
			if exp := c.Options.AdminAccessTokenExpiresAt; exp != nil {
				if exp.Location() != time.UTC || exp.IsZero() {
					t.Fatalf("admin expiry %v not a UTC time", exp)
				}
			}
			masked := *c
			o := &masked.Options
			o.ClientSecret, o.AdminAccessToken, o.AdminRefreshToken = mask(o.ClientSecret), mask(o.AdminAccessToken), mask(o.AdminRefreshToken)
			if c.String() != masked.String() || fmt.Sprintf("%#v", c) != fmt.Sprintf("%#v", masked) {
				t.Fatal("String() depends on secret values")
			}
		}
		if c, err := parseConnection(body); err != nil {
			checkErr(err)
		} else {
			checkConn(c)
		}
		list, err := parseConnectionList(body)
		if err != nil {
			checkErr(err)
			return
		}
		for i := range list {
			checkConn(&list[i])
		}
	})
}

func TestParseConnectionSeesTokenVault(t *testing.T) {
	tests := map[string]struct {
		body string
		want bool
	}{
		"off":              {body: `{"id":"con_1","name":"google-oauth2","strategy":"google-oauth2","options":{}}`},
		"options flag":     {body: `{"id":"con_1","name":"g","strategy":"google-oauth2","options":{"federated_connections_access_tokens":{"active":true}}}`, want: true},
		"options flag off": {body: `{"id":"con_1","name":"g","strategy":"google-oauth2","options":{"federated_connections_access_tokens":{"active":false}}}`},
		"newer top level":  {body: `{"id":"con_1","name":"g","strategy":"google-oauth2","connected_accounts":{"active":true}}`, want: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConnection([]byte(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if c.TokenVault != tc.want {
				t.Errorf("TokenVault = %v, want %v", c.TokenVault, tc.want)
			}
		})
	}
}

// TestParseUserIgnoresOneIdentitysMalformedField: a field of one identity that
// does not decode is zeroed for that identity only; the user, the identity's
// other fields and the other identities read normally.
func TestParseUserIgnoresOneIdentitysMalformedField(t *testing.T) {
	const good = `{"connection":"github","provider":"github","user_id":7,"isSocial":true,"access_token":"SECRET-gh","expires_in":3600}`
	tests := map[string]struct {
		field string // "name":value inside the first identity
		want  Identity
	}{
		"expires_in fraction":   {field: `"expires_in":1.5`, want: Identity{ExpiresInMalformed: true}},
		"expires_in negative":   {field: `"expires_in":-1`, want: Identity{ExpiresInMalformed: true}},
		"expires_in absurd":     {field: `"expires_in":1e300`, want: Identity{ExpiresInMalformed: true}},
		"expires_in word":       {field: `"expires_in":"soon"`, want: Identity{ExpiresInMalformed: true}},
		"expires_in boolean":    {field: `"expires_in":true`, want: Identity{ExpiresInMalformed: true}},
		"expires_in object":     {field: `"expires_in":{"s":1}`, want: Identity{ExpiresInMalformed: true}},
		"isSocial as a string":  {field: `"isSocial":"true"`},
		"user_id as a boolean":  {field: `"user_id":true`},
		"access_token a number": {field: `"access_token":5`},
		"connection an array":   {field: `"connection":["SECRET"]`},
		"refresh_token object":  {field: `"refresh_token":{"v":"SECRET"}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := `{"user_id":"u1","last_login":"2024-01-02T03:04:05Z","identities":[{"provider":"google-oauth2","refresh_token":"SECRET-rt",` +
				tc.field + `},` + good + `]}`
			u, err := parseUser([]byte(body))
			if err != nil {
				t.Fatalf("the whole user is unreadable: %v", err)
			}
			if u.UserID != "u1" || u.LastLogin == nil || len(u.Identities) != 2 {
				t.Fatalf("user = %v, want u1 with its last login and two identities", u)
			}
			want := tc.want
			want.Provider = "google-oauth2"
			if !strings.HasPrefix(tc.field, `"refresh_token"`) {
				want.RefreshToken = "SECRET-rt"
			}
			if got := u.Identities[0]; got != want {
				t.Errorf("malformed identity = %v, want %v", got, want)
			}
			wantGood := Identity{Connection: "github", Provider: "github", UserID: "7", IsSocial: true, AccessToken: "SECRET-gh", ExpiresIn: 3600}
			if got := u.Identities[1]; got != wantGood {
				t.Errorf("other identity = %v, want %v", got, wantGood)
			}
		})
	}
}

func TestParseConnectionReadsRefreshOptions(t *testing.T) {
	tests := map[string]struct {
		options string
		want    ConnectionOptions
	}{
		"oidc": {
			options: `{"client_id":"cid","token_endpoint":"https://idp.example.com/token","discovery_url":"https://idp.example.com/.well-known/openid-configuration",` +
				`"issuer":"https://idp.example.com","token_endpoint_auth_method":"client_secret_basic"}`,
			want: ConnectionOptions{ClientID: "cid", TokenEndpoint: "https://idp.example.com/token",
				DiscoveryURL: "https://idp.example.com/.well-known/openid-configuration", Issuer: "https://idp.example.com", TokenEndpointAuthMethod: "client_secret_basic"},
		},
		"okta":                      {options: `{"domain":"acme.okta.com"}`, want: ConnectionOptions{Domain: "acme.okta.com"}},
		"waad_common_endpoint":      {options: `{"waad_common_endpoint":true}`, want: ConnectionOptions{WAADCommonEndpoint: true}},
		"useCommonEndpoint":         {options: `{"useCommonEndpoint":true,"waad_common_endpoint":false}`, want: ConnectionOptions{WAADCommonEndpoint: true}},
		"neither common flag":       {options: `{"useCommonEndpoint":false,"tenant_domain":"contoso.com"}`, want: ConnectionOptions{TenantDomain: "contoso.com"}},
		"common flag as a string":   {options: `{"waad_common_endpoint":"yes","client_id":"cid"}`, want: ConnectionOptions{ClientID: "cid"}},
		"issuer of another type":    {options: `{"issuer":{"url":"x"},"token_endpoint":5,"domain":[1],"client_id":"cid"}`, want: ConnectionOptions{ClientID: "cid"}},
		"auth method of other type": {options: `{"token_endpoint_auth_method":7,"discovery_url":null}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseConnection([]byte(`{"id":"con_1","name":"c","strategy":"oidc","options":` + tc.options + `}`))
			if err != nil {
				t.Fatal(err)
			}
			if c.Options != tc.want {
				t.Errorf("options = %v, want %v", c.Options, tc.want)
			}
		})
	}
}
