package idp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

// roundTripFunc serves fuzzed responses in memory: fuzzing needs thousands
// of executions per second, which real HTTPS cannot give.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// FuzzRefreshResponse runs arbitrary token-endpoint responses through
// x/oauth2's parsing and our conversion and classification.
func FuzzRefreshResponse(f *testing.F) {
	seeds := []struct {
		status      int
		contentType string
		body        string
	}{
		{200, "application/json", `{"access_token":"at","token_type":"Bearer","expires_in":3599}`},
		{200, "application/json", `{"access_token":"at","refresh_token":"rt-new","expires_in":"3600"}`},
		{200, "application/json", `{"access_token":"at","expires_in":-5}`},
		{200, "application/json", `{"access_token":"at","expires_in":99999999999}`},
		{200, "application/json", `{"access_token":"at","refresh_token":"rt-new","expires_in":3599.5}`},
		{200, "text/plain", `{"access_token":"at","refresh_token":"rt-new","expires_in":"1e3"}`},
		{200, "", ` {"error":"bad_refresh_token"}`},
		{401, "text/plain", `{"error":"deleted_client"}`},
		{200, "application/x-www-form-urlencoded", "access_token=at&expires_in=28800&refresh_token=rt2&token_type=bearer"},
		{200, "text/plain", "access_token=at&expires_in=1.5e3"},
		{200, "application/x-www-form-urlencoded", "error=bad_refresh_token&error_description=expired"},
		{200, "application/json", `{"error":"invalid_grant"}`},
		{400, "application/json", `{"error":"invalid_grant","error_description":"expired"}`},
		{401, "application/json", `{"error":"invalid_client"}`},
		{429, "application/json", `{}`},
		{500, "text/html", "<html>SECRETBODY</html>"},
		{200, "application/json", `{"access_token":""}`},
		{200, "application/json", `{`},
		{302, "", ""},
	}
	for _, s := range seeds {
		f.Add(s.status, s.contentType, []byte(s.body))
	}
	const sent = "rt-fuzz-sent"
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 599 {
			status = 200 + (status%400+400)%400
		}
		var calls atomic.Int64
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			calls.Add(1)
			if err := r.ParseForm(); err != nil || r.PostForm.Get("refresh_token") != sent || r.PostForm.Get("grant_type") != "refresh_token" {
				t.Errorf("malformed refresh request (err=%v)", err)
			}
			h := http.Header{}
			h.Set("Content-Type", contentType)
			return &http.Response{StatusCode: status, Header: h, Body: io.NopCloser(bytes.NewReader(body)), Request: r}, nil
		})}
		fc := clocktesting.NewFakeClock(fakeNow)
		ep := Endpoint{TokenURL: "https://idp.test/token", ClientID: "cid", ClientSecret: testClientSecret}
		tok, err := (&Refresher{HTTPClient: hc, Clock: fc}).Refresh(context.Background(), ep, sent)

		if n := calls.Load(); n != 1 {
			t.Fatalf("%d requests, want exactly 1", n)
		}
		if err != nil {
			checkFuzzError(t, err, body)
			return
		}
		if tok.AccessToken == "" || tok.RefreshToken == "" {
			t.Fatal("success without access or refresh token")
		}
		if tok.RefreshTokenRotated != (tok.RefreshToken != sent) {
			t.Fatal("RefreshTokenRotated disagrees with the returned refresh token")
		}
		if tok.ExpiresIn < 0 || tok.ExpiresIn > maxExpiresIn*time.Second || tok.ExpiresIn%time.Second != 0 {
			t.Fatalf("ExpiresIn %v out of range", tok.ExpiresIn)
		}
		if (tok.ExpiresIn == 0) != tok.Expiry.IsZero() || (tok.ExpiresIn > 0 && !tok.Expiry.Equal(fakeNow.Add(tok.ExpiresIn))) {
			t.Fatalf("Expiry %v inconsistent with ExpiresIn %v", tok.Expiry, tok.ExpiresIn)
		}
		masked := *tok
		masked.AccessToken, masked.RefreshToken = "X", "X"
		if tok.String() != masked.String() {
			t.Fatalf("String() depends on token values: %s", tok)
		}
	})
}

func checkFuzzError(t *testing.T, err error, body []byte) {
	t.Helper()
	var re *RefreshError
	if !errors.As(err, &re) {
		t.Fatalf("error %v is not a *RefreshError", err)
	}
	msg := err.Error()
	if len(msg) > 600 {
		t.Fatalf("error is %d bytes long", len(msg))
	}
	for _, secret := range []string{testClientSecret, "rt-fuzz-sent", "SECRETBODY"} {
		if strings.Contains(msg, secret) && !bytes.Contains(body, []byte(secret)) {
			t.Fatalf("error leaks %q: %s", secret, msg)
		}
	}
	if strings.Contains(msg, "SECRETBODY") && !strings.Contains(re.Code+re.Description, "SECRETBODY") {
		t.Fatalf("error quotes the body outside error/error_description: %s", msg)
	}
	if errors.Is(err, ErrInvalidGrant) && IsTransient(err) {
		t.Fatal("invalid_grant classified as transient")
	}
	if (re.Kind == InvalidGrant) != errors.Is(err, ErrInvalidGrant) {
		t.Fatal("Kind and errors.Is disagree")
	}
}
