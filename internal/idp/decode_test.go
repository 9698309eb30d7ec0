package idp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/oauth2"
)

func TestNormalizeAnswer(t *testing.T) {
	huge := `{"access_token":"` + strings.Repeat("a", maxAnswerSize) + `"}`
	readFailure := errors.New("connection reset")
	tests := map[string]struct {
		contentType string
		body        io.Reader
		wantCT      string
		wantBody    string
		wantReadErr error
	}{
		"JSON labelled text/plain": {
			contentType: "text/plain; charset=utf-8", body: strings.NewReader(`{"access_token":"at","expires_in":3599}`),
			wantCT: "application/json", wantBody: `{"access_token":"at","expires_in":3599}`,
		},
		"JSON without Content-Type": {
			body:   strings.NewReader(` {"expires_in":"3600"}`),
			wantCT: "application/json", wantBody: `{"expires_in":3600}`,
		},
		"JSON with a fractional expires_in": {
			contentType: "application/json", body: strings.NewReader(`{"a":"<&>","expires_in":3599.5,"b":[1.50,{"c":null}]}`),
			wantCT: "application/json", wantBody: `{"a":"<&>","b":[1.50,{"c":null}],"expires_in":3599}`,
		},
		"JSON with a nonsensical expires_in": {
			contentType: "application/json", body: strings.NewReader(`{"access_token":"at","expires_in":-1}`),
			wantCT: "application/json", wantBody: `{"access_token":"at"}`,
		},
		"form-encoded": {
			contentType: "application/x-www-form-urlencoded", body: strings.NewReader("access_token=at&expires_in=3599.5"),
			wantCT: "application/x-www-form-urlencoded", wantBody: "access_token=at&expires_in=3599.5",
		},
		"JSON array": {
			contentType: "text/plain", body: strings.NewReader(`[{"expires_in":1.5}]`),
			wantCT: "text/plain", wantBody: `[{"expires_in":1.5}]`,
		},
		"empty": {
			contentType: "text/plain", body: strings.NewReader(""),
			wantCT: "text/plain", wantBody: "",
		},
		"garbage after {": {
			contentType: "text/plain", body: strings.NewReader(`{"expires_in":1.5,`),
			wantCT: "application/json", wantBody: `{"expires_in":1.5,`,
		},
		"two JSON objects": {
			contentType: "text/plain", body: strings.NewReader(`{"expires_in":1.5}{}`),
			wantCT: "application/json", wantBody: `{"expires_in":1.5}{}`,
		},
		"larger than x/oauth2 reads is passed on whole": {
			contentType: "text/plain", body: strings.NewReader(huge),
			wantCT: "application/json", wantBody: huge,
		},
		"a read failure is passed on after the bytes read": {
			contentType: "text/plain", body: io.MultiReader(strings.NewReader(`{"expires_in":1.5`), iotest.ErrReader(readFailure)),
			wantCT: "application/json", wantBody: `{"expires_in":1.5`, wantReadErr: readFailure,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			closed := false
			resp := &http.Response{StatusCode: 200, Header: http.Header{},
				Body: readCloser{tc.body, closerFunc(func() error { closed = true; return nil })}}
			if tc.contentType != "" {
				resp.Header.Set("Content-Type", tc.contentType)
			}
			normalizeAnswer(resp)
			got, err := io.ReadAll(resp.Body)
			if !errors.Is(err, tc.wantReadErr) {
				t.Errorf("reading the body: %v, want %v", err, tc.wantReadErr)
			}
			if string(got) != tc.wantBody {
				t.Errorf("body = %.100q, want %.100q", got, tc.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); ct != tc.wantCT {
				t.Errorf("Content-Type = %q, want %q", ct, tc.wantCT)
			}
			if err := resp.Body.Close(); err != nil || !closed {
				t.Errorf("closing the body: %v; original body closed: %v", err, closed)
			}
		})
	}
}

func TestRawSeconds(t *testing.T) {
	tests := map[string]struct {
		raw    string
		want   int64
		wantOK bool
	}{
		"integer":              {raw: `3599`, want: 3599, wantOK: true},
		"fraction":             {raw: `3599.99`, want: 3599, wantOK: true},
		"exponent":             {raw: `36e2`, want: 3600, wantOK: true},
		"numeric string":       {raw: `"3600"`, want: 3600, wantOK: true},
		"padded string":        {raw: `" 3599.5\t"`, want: 3599, wantOK: true},
		"ten years":            {raw: `316224000`, want: maxExpiresIn, wantOK: true},
		"one second":           {raw: `1`, want: 1, wantOK: true},
		"more than ten years":  {raw: `316224001`},
		"under a second":       {raw: `0.9`},
		"zero":                 {raw: `0`},
		"negative":             {raw: `-3600`},
		"beyond float64":       {raw: `1e400`},
		"NaN string":           {raw: `"NaN"`},
		"Inf string":           {raw: `"+Inf"`},
		"hex string":           {raw: `"0x10"`},
		"underscore string":    {raw: `"3_600"`},
		"empty string":         {raw: `""`},
		"null string":          {raw: `"null"`},
		"string with units":    {raw: `"3600s"`},
		"null":                 {raw: `null`},
		"boolean":              {raw: `true`},
		"object":               {raw: `{"seconds":3600}`},
		"array":                {raw: `[3600]`},
		"doubly quoted string": {raw: `"\"3600\""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, ok := rawSeconds(json.RawMessage(tc.raw))
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("rawSeconds(%s) = %d, %v; want %d, %v", tc.raw, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestJSONAnswersAsksForJSONOnce checks the request side: one request, with
// Accept: application/json, and the caller's request left as it was.
func TestJSONAnswersAsksForJSONOnce(t *testing.T) {
	var calls int
	var accept string
	rt := jsonAnswers{base: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		accept = r.Header.Get("Accept")
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("{}"))}, nil
	})}
	req, err := http.NewRequest(http.MethodPost, "https://idp.test/token", strings.NewReader("grant_type=refresh_token"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if calls != 1 || accept != "application/json" {
		t.Errorf("%d requests with Accept %q, want 1 with application/json", calls, accept)
	}
	if req.Header.Get("Accept") != "" {
		t.Error("the caller's request was changed")
	}
}

// TestRefreshDoesNotFollowRedirects keeps the refresh token and client secret
// from being re-posted to a Location, through the wrapped transport.
func TestRefreshDoesNotFollowRedirects(t *testing.T) {
	f := newFakeIDP(t, nonRotating, oauth2.AuthStyleInParams)
	f.hook = func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		}
		return true
	}
	_, err := (&Refresher{HTTPClient: f.httpClient(t)}).Refresh(testContext(t), f.endpoint(), initialRT)
	checkKind(t, err, http.StatusTemporaryRedirect, Rejected, "")
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d HTTP requests, want 1: the redirect was followed", n)
	}
}

// FuzzNormalizeJSON checks that normalizing never loses or changes a field
// other than expires_in, and leaves expires_in usable or absent.
func FuzzNormalizeJSON(f *testing.F) {
	for _, s := range []string{
		`{"access_token":"at","expires_in":3599.5}`, `{"expires_in":"3600"}`, `{"expires_in":1e400}`,
		`{"expires_in":-1,"expires_in":5}`, `{"a":"\u003c"}`, `{"expires_in":3600}`, `{`, `[]`, `{} {}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		out := normalizeJSON(body)
		if bytes.Equal(out, body) {
			return
		}
		before, err := decodeObject(body)
		if err != nil {
			t.Fatalf("rewrote a body that is no JSON object: %v", err)
		}
		after, err := decodeObject(out)
		if err != nil {
			t.Fatalf("rewrote into invalid JSON: %v", err)
		}
		if v, ok := after["expires_in"]; ok {
			n, isNum := v.(json.Number)
			secs, err := n.Int64()
			if !isNum || err != nil || secs < 1 || secs > maxExpiresIn {
				t.Fatalf("expires_in = %v after normalizing", v)
			}
		}
		delete(before, "expires_in")
		delete(after, "expires_in")
		b, _ := json.Marshal(before)
		a, _ := json.Marshal(after)
		if !bytes.Equal(a, b) {
			t.Fatalf("fields other than expires_in changed:\n%s\n%s", b, a)
		}
	})
}

// decodeObject decodes a JSON object keeping numbers as written.
func decodeObject(b []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("more than one JSON value")
	}
	return m, nil
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }
