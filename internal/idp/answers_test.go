package idp

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
	clocktesting "k8s.io/utils/clock/testing"
)

// noContentType makes the fake send no Content-Type at all (net/http would
// otherwise sniff one).
const noContentType = "-"

// rotatedRT is the new refresh token in the answers below.
const rotatedRT = "rt-SECRET-rotated"

// TestRefreshReadsRealIdPAnswers feeds Refresh the shapes real token
// endpoints answer in: JSON under any Content-Type, expires_in as a number or
// a string, fractional or nonsensical, and errors with HTTP 200 or 401.
func TestRefreshReadsRealIdPAnswers(t *testing.T) {
	const tok = `"access_token":"at-SECRET-1","refresh_token":"` + rotatedRT + `","token_type":"Bearer"`
	const form = "access_token=at-SECRET-1&refresh_token=" + rotatedRT + "&token_type=bearer"
	tests := map[string]struct {
		status        int
		contentType   string // "" means application/json
		body          string
		wantExpiresIn time.Duration // for a success
		wantKind      ErrorKind     // 0: success
		wantCode      string
	}{
		// A JSON success, whatever it is labelled, keeps its new refresh token.
		"JSON labelled text/plain": {
			status: 200, contentType: "text/plain; charset=utf-8", body: `{` + tok + `,"expires_in":3599}`, wantExpiresIn: 3599 * time.Second,
		},
		"JSON labelled form-encoded": {
			status: 200, contentType: "application/x-www-form-urlencoded", body: `{` + tok + `,"expires_in":3599}`, wantExpiresIn: 3599 * time.Second,
		},
		"JSON without Content-Type": {
			status: 200, contentType: noContentType, body: `{` + tok + `,"expires_in":3599}`, wantExpiresIn: 3599 * time.Second,
		},
		"JSON after white space, labelled text/html": {
			status: 200, contentType: "text/html", body: "\r\n\t {" + tok + `,"expires_in":3599}`, wantExpiresIn: 3599 * time.Second,
		},
		// expires_in: whole seconds of any number; nonsense is absent, never fatal.
		"fractional expires_in":             {status: 200, body: `{` + tok + `,"expires_in":3599.5}`, wantExpiresIn: 3599 * time.Second},
		"fractional expires_in, text/plain": {status: 200, contentType: "text/plain", body: `{` + tok + `,"expires_in":3599.9}`, wantExpiresIn: 3599 * time.Second},
		"exponent expires_in":               {status: 200, body: `{` + tok + `,"expires_in":3.6e3}`, wantExpiresIn: time.Hour},
		"numeric string expires_in":         {status: 200, body: `{` + tok + `,"expires_in":"3600"}`, wantExpiresIn: time.Hour},
		"fractional string expires_in":      {status: 200, body: `{` + tok + `,"expires_in":" 3599.5 "}`, wantExpiresIn: 3599 * time.Second},
		"negative expires_in":               {status: 200, body: `{` + tok + `,"expires_in":-5}`},
		"absurd expires_in":                 {status: 200, body: `{` + tok + `,"expires_in":1e12}`},
		"expires_in beyond float64":         {status: 200, body: `{` + tok + `,"expires_in":1e400}`},
		"NaN string expires_in":             {status: 200, body: `{` + tok + `,"expires_in":"NaN"}`},
		"hex string expires_in":             {status: 200, body: `{` + tok + `,"expires_in":"0x10"}`},
		"empty string expires_in":           {status: 200, body: `{` + tok + `,"expires_in":""}`},
		"boolean expires_in":                {status: 200, body: `{` + tok + `,"expires_in":true}`},
		"null expires_in":                   {status: 200, body: `{` + tok + `,"expires_in":null}`},
		"form fractional expires_in": {
			status: 200, contentType: "application/x-www-form-urlencoded", body: form + "&expires_in=28799.5", wantExpiresIn: 28799 * time.Second,
		},
		"form absurd expires_in": {status: 200, contentType: "application/x-www-form-urlencoded", body: form + "&expires_in=99999999999"},
		"form NaN expires_in":    {status: 200, contentType: "text/plain", body: form + "&expires_in=NaN"},
		// Errors are classified by their code, whatever the status and Content-Type.
		"invalid_grant in text/plain JSON": {
			status: 400, contentType: "text/plain", body: `{"error":"invalid_grant","error_description":"Bad Request"}`,
			wantKind: InvalidGrant, wantCode: "invalid_grant",
		},
		"invalid_grant in JSON without Content-Type": {
			status: 400, contentType: noContentType, body: `{"error":"invalid_grant"}`, wantKind: InvalidGrant, wantCode: "invalid_grant",
		},
		"invalid_grant echoing the refresh token": {
			status: 400, contentType: "text/plain", body: `{"error":"invalid_grant","error_description":"` + initialRT + ` is expired"}`,
			wantKind: InvalidGrant, wantCode: "invalid_grant",
		},
		"GitHub 200 bad_refresh_token, JSON": {
			status: 200, body: `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`,
			wantKind: InvalidGrant, wantCode: "bad_refresh_token",
		},
		"GitHub 200 bad_refresh_token, JSON labelled text/plain": {
			status: 200, contentType: "text/plain", body: `{"error":"bad_refresh_token","error_description":"The refresh token passed is incorrect or expired."}`,
			wantKind: InvalidGrant, wantCode: "bad_refresh_token",
		},
		"GitHub 200 bad_refresh_token, form": {
			status: 200, contentType: "application/x-www-form-urlencoded; charset=utf-8", body: "error=bad_refresh_token&error_description=expired",
			wantKind: InvalidGrant, wantCode: "bad_refresh_token",
		},
		"GitHub 200 incorrect_client_credentials, JSON labelled text/plain": {
			status: 200, contentType: "text/plain", body: `{"error":"incorrect_client_credentials"}`,
			wantKind: InvalidClient, wantCode: "incorrect_client_credentials",
		},
		"GitHub 200 incorrect_client_credentials, form": {
			status: 200, contentType: "application/x-www-form-urlencoded", body: "error=incorrect_client_credentials&error_description=bad",
			wantKind: InvalidClient, wantCode: "incorrect_client_credentials",
		},
		"Google 401 deleted_client": {
			status: 401, body: `{"error":"deleted_client","error_description":"The OAuth client was deleted."}`,
			wantKind: InvalidClient, wantCode: "deleted_client",
		},
		"400 deleted_client":               {status: 400, body: `{"error":"deleted_client"}`, wantKind: InvalidClient, wantCode: "deleted_client"},
		"401 invalid_request":              {status: 401, body: `{"error":"invalid_request"}`, wantKind: InvalidClient, wantCode: "invalid_request"},
		"401 temporarily_unavailable":      {status: 401, body: `{"error":"temporarily_unavailable"}`, wantKind: InvalidClient, wantCode: "temporarily_unavailable"},
		"401 HTML page":                    {status: 401, contentType: "text/html", body: "<html>SECRET</html>", wantKind: InvalidClient},
		"401 invalid_grant":                {status: 401, body: `{"error":"invalid_grant"}`, wantKind: InvalidGrant, wantCode: "invalid_grant"},
		"200 garbage after {, text/plain":  {status: 200, contentType: "text/plain", body: `{access_token=at-SECRET`, wantKind: BadResponse},
		"400 garbage after {, text/plain":  {status: 400, contentType: "text/plain", body: `{error=invalid_grant`, wantKind: Rejected},
		"200 JSON array":                   {status: 200, contentType: "text/plain", body: `[{"access_token":"at-SECRET"}]`, wantKind: BadResponse},
		"200 JSON without an access_token": {status: 200, contentType: "text/plain", body: `{"refresh_token":"` + rotatedRT + `"}`, wantKind: BadResponse},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
			f.hook = func(w http.ResponseWriter, _ *http.Request) bool {
				switch tc.contentType {
				case "":
					w.Header().Set("Content-Type", "application/json")
				case noContentType:
					w.Header()["Content-Type"] = nil
				default:
					w.Header().Set("Content-Type", tc.contentType)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
				return true
			}
			fc := clocktesting.NewFakeClock(fakeNow)
			tok, err := (&Refresher{HTTPClient: f.httpClient(t), Clock: fc}).Refresh(testContext(t), f.endpoint(), initialRT)
			if n := f.requests.Load(); n != 1 {
				t.Errorf("%d HTTP requests, want exactly 1", n)
			}
			f.mu.Lock()
			accept := f.lastAcc
			f.mu.Unlock()
			if accept != "application/json" {
				t.Errorf("Accept = %q, want application/json", accept)
			}
			if tc.wantKind != 0 {
				checkKind(t, err, tc.status, tc.wantKind, tc.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want a token", err)
			}
			checkRotated(t, tok, tc.wantExpiresIn)
		})
	}
}

func checkKind(t *testing.T, err error, status int, kind ErrorKind, code string) {
	t.Helper()
	var re *RefreshError
	if !errors.As(err, &re) {
		t.Fatalf("got %v, want a *RefreshError", err)
	}
	assertNoSecrets(t, err.Error())
	if re.Kind != kind || re.Code != code {
		t.Errorf("got %v %q (%v), want %v %q", re.Kind, re.Code, err, kind, code)
	}
	if kind != BadResponse && re.StatusCode != status {
		t.Errorf("StatusCode = %d, want %d", re.StatusCode, status)
	}
	if errors.Is(err, ErrInvalidGrant) != (kind == InvalidGrant) || IsInvalidClient(err) != (kind == InvalidClient) {
		t.Errorf("errors.Is(ErrInvalidGrant) = %v, IsInvalidClient = %v for %v", errors.Is(err, ErrInvalidGrant), IsInvalidClient(err), kind)
	}
}

func checkRotated(t *testing.T, tok *Token, wantExpiresIn time.Duration) {
	t.Helper()
	if tok.AccessToken != "at-SECRET-1" || tok.RefreshToken != rotatedRT || !tok.RefreshTokenRotated {
		t.Errorf("got %v, want the answer's access token and its new refresh token, rotated", tok)
	}
	if tok.ExpiresIn != wantExpiresIn {
		t.Errorf("ExpiresIn = %v, want %v", tok.ExpiresIn, wantExpiresIn)
	}
	wantExpiry := time.Time{}
	if wantExpiresIn > 0 {
		wantExpiry = fakeNow.Add(wantExpiresIn)
	}
	if !tok.Expiry.Equal(wantExpiry) {
		t.Errorf("Expiry = %v, want %v", tok.Expiry, wantExpiry)
	}
}
