package tokenvault

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// FuzzParseExchangeResponse runs arbitrary token endpoint answers through the
// parser and the classification: never a panic, always exactly one of a
// token or an *Error, never a negative or over-a-year lifetime, and never a
// value we sent (or anything token-like) in an error.
func FuzzParseExchangeResponse(f *testing.F) {
	seeds := []struct {
		status int
		body   string
	}{
		{200, `{"access_token":"ya29.a0","expires_in":1377,"scope":"openid email","issued_token_type":"http://auth0.com/oauth/token-type/token-vault-access-token","token_type":"Bearer"}`},
		{200, `{"access_token":"at","expires_in":0}`},
		{200, `{"access_token":"at","expires_in":3600.0}`},
		{200, `{"access_token":"at","expires_in":1.5}`},
		{200, `{"access_token":"at","expires_in":-1}`},
		{200, `{"access_token":"at","expires_in":"3600"}`},
		{200, `{"access_token":"at","expires_in":1e300}`},
		{200, `{"access_token":"at","expires_in":null,"refresh_token":"rt"}`},
		{200, `{"access_token":"at","token_type":"mac"}`},
		{200, `{"access_token":""}`},
		{200, `{"access_token":7}`},
		{200, `{"access_token":"at"} {"x":1}`},
		{200, `[]`},
		{200, `{"statusCode":200,"truncated":`},
		{401, `{"error":"invalid_grant","error_description":"Invalid subject_token: SENT-SUBJECT-TOKEN"}`},
		{401, `{"error":"invalid_client","error_description":"bad assertion eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"}`},
		{403, `{"error":"unauthorized_client","error_description":"Grant type not allowed"}`},
		{403, `{"error":"access_denied","error_description":"IP 192.0.2.1 not allowed"}`},
		{401, `{"error":"access_denied","error_description":"Unauthorized"}`},
		{429, `{"error":"too_many_requests"}`},
		{500, `<html>SENT-CLIENT-SECRET</html>`},
		{302, ``},
		{400, `{"error":"invalid_request","error_description":"` + strings.Repeat("é", 500) + `"}`},
	}
	for _, s := range seeds {
		f.Add(s.status, []byte(s.body), "3")
	}
	const subject, secret = "SENT-SUBJECT-TOKEN", "SENT-CLIENT-SECRET"
	sentAt := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, body []byte, retry string) {
		status = 100 + (status%500+500)%500
		h := http.Header{"Retry-After": {retry}}
		tok, err := interpretResponse(status, h, body, nil, sentAt, sentAt, subject, secret)
		if (tok == nil) == (err == nil) {
			t.Fatalf("token %v and error %v", tok, err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Kind < IdentityNotFound || e.Kind > BadRequest {
				t.Fatalf("error %v is not a classified *Error", err)
			}
			msg := err.Error()
			if strings.Contains(msg, subject) || strings.Contains(msg, secret) || hasTokenRun(e.Description) {
				t.Fatalf("error leaks what was sent: %q", msg)
			}
			if e.RetryAfter < 0 || e.RetryAfter > maxHold {
				t.Fatalf("RetryAfter %v out of range", e.RetryAfter)
			}
			if (e.Refusal == RefusalClientAuth) != (e.Kind == ClientAuthFailed) || (e.Refusal != "" && e.Kind != ClientAuthFailed && e.Kind != NotAuthorized) {
				t.Fatalf("refusal %q on a %v error", e.Refusal, e.Kind)
			}
			if status >= 200 && status < 300 && e.Kind != Transient {
				t.Fatalf("a 2xx that cannot be used is %v, want Transient", e.Kind)
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("status %d gave a token", status)
		}
		if tok.AccessToken == "" || tok.ExpiresIn < 0 || tok.ExpiresIn > maxLifetime {
			t.Fatalf("token with empty access token or lifetime %v", tok.ExpiresIn)
		}
		if !tok.ExpiresAt.IsZero() && !tok.ExpiresAt.Equal(sentAt.Add(tok.ExpiresIn)) {
			t.Fatalf("ExpiresAt %v does not match ExpiresIn %v", tok.ExpiresAt, tok.ExpiresIn)
		}
	})
}

func TestParseExchangeResponse(t *testing.T) {
	tests := map[string]struct {
		body          string
		wantErr       bool
		wantExpiresIn time.Duration
		wantKnown     bool
	}{
		"Auth0's example": {body: `{"access_token":"a","expires_in":1377,"scope":"s","issued_token_type":"t","token_type":"Bearer"}`, wantExpiresIn: 1377 * time.Second, wantKnown: true},
		"whole float":     {body: `{"access_token":"a","expires_in":60.0}`, wantExpiresIn: time.Minute, wantKnown: true},
		"zero":            {body: `{"access_token":"a","expires_in":0}`, wantKnown: true},
		"absent":          {body: `{"access_token":"a"}`},
		"over a year":     {body: `{"access_token":"a","expires_in":40000000}`},
		"fraction":        {body: `{"access_token":"a","expires_in":1.5}`, wantErr: true},
		"negative":        {body: `{"access_token":"a","expires_in":-1}`, wantErr: true},
		"string":          {body: `{"access_token":"a","expires_in":"60"}`, wantErr: true},
		"no access token": {body: `{"expires_in":60}`, wantErr: true},
		"not Bearer":      {body: `{"access_token":"a","token_type":"N_A"}`, wantErr: true},
		"trailing data":   {body: `{"access_token":"a"}x`, wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := parseExchangeResponse([]byte(tc.body))
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (p.ExpiresIn != tc.wantExpiresIn || p.expiresInGiven != tc.wantKnown) {
				t.Errorf("ExpiresIn %v known %v; want %v %v", p.ExpiresIn, p.expiresInGiven, tc.wantExpiresIn, tc.wantKnown)
			}
		})
	}
}

// hasTokenRun reports whether s holds a run of the token alphabet (base64url, JWT, standard
// base64) of safetext.MinTokenRun or more characters, which an error must never carry.
func hasTokenRun(s string) bool {
	for _, run := range strings.FieldsFunc(s, func(r rune) bool {
		return (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') && !strings.ContainsRune("-_.+/=", r)
	}) {
		if len(run) >= safetext.MinTokenRun {
			return true
		}
	}
	return false
}
