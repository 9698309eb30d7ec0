package httpclient

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// serverCAPEM is the PEM of the certificate an httptest TLS server presents.
func serverCAPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

// unrelatedCAPEM makes a CA certificate that signed nothing a test server uses.
func unrelatedCAPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "unrelated test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// trustingClient is New over NewTransport(CA of srv).
func trustingClient(t *testing.T, srv *httptest.Server, timeout time.Duration) *http.Client {
	t.Helper()
	tr, err := NewTransport(serverCAPEM(srv))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.CloseIdleConnections)
	return New(tr, timeout)
}

func TestNewTransport(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	keyOnly := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("not a certificate")})
	tests := map[string]struct {
		bundle     []byte
		wantErr    error // from NewTransport
		wantCustom bool  // RootCAs set, rather than the system roots alone
		wantOK     bool  // the request to srv succeeds
	}{
		"no bundle: the system roots, which do not know the test CA": {bundle: nil},
		"empty bundle is no bundle":                                  {bundle: []byte{}},
		"the server's CA":                                            {bundle: serverCAPEM(srv), wantCustom: true, wantOK: true},
		"an unrelated CA":                                            {bundle: unrelatedCAPEM(t), wantCustom: true},
		"both CAs are added":                                         {bundle: append(unrelatedCAPEM(t), serverCAPEM(srv)...), wantCustom: true, wantOK: true},
		"not PEM":                                                    {bundle: []byte("not a PEM"), wantErr: ErrInvalidCABundle},
		"PEM without a certificate":                                  {bundle: keyOnly, wantErr: ErrInvalidCABundle},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tr, err := NewTransport(tc.bundle)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || tr != nil {
					t.Fatalf("NewTransport = %v, %v; want %v", tr, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			if tr == http.DefaultTransport {
				t.Fatal("NewTransport returned http.DefaultTransport itself, not a clone")
			}
			if tr.TLSClientConfig == nil || tr.TLSClientConfig.MinVersion != tls.VersionTLS12 {
				t.Errorf("TLS config %+v does not require TLS 1.2", tr.TLSClientConfig)
			}
			if got := tr.TLSClientConfig.RootCAs != nil; got != tc.wantCustom {
				t.Errorf("custom RootCAs = %v, want %v", got, tc.wantCustom)
			}
			if tr.Proxy == nil {
				t.Error("the default transport's proxy settings were lost")
			}
			resp, err := New(tr, 5*time.Second).Get(srv.URL)
			if tc.wantOK {
				if err != nil {
					t.Fatalf("GET: %v", err)
				}
				_ = resp.Body.Close()
				return
			}
			if err == nil {
				_ = resp.Body.Close()
			}
			var verr *tls.CertificateVerificationError
			if !errors.As(err, &verr) {
				t.Fatalf("GET = %v, want a certificate verification error", err)
			}
		})
	}
}

func TestRedirectsAreRefused(t *testing.T) {
	var followed atomic.Int64
	target := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		followed.Add(1)
	}))
	defer target.Close()
	redirector := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		http.Redirect(w, r, target.URL+"/elsewhere", status)
	}))
	defer redirector.Close()

	following := trustingClient(t, redirector, 5*time.Second)
	following.CheckRedirect = nil // http.Client's default: follow up to ten redirects
	clients := map[string]*http.Client{
		"New":              trustingClient(t, redirector, 5*time.Second),
		"WithoutRedirects": WithoutRedirects(following),
	}
	for name, c := range clients {
		for _, status := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
			t.Run(name+"/"+http.StatusText(status), func(t *testing.T) {
				// A token request: 307 and 308 would re-post this body to the Location.
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"SECRET"}}
				resp, err := c.PostForm(redirector.URL+"/oauth/token?status="+strconv.Itoa(status), form)
				if err != nil {
					t.Fatalf("POST: %v", err)
				}
				_ = resp.Body.Close()
				if resp.StatusCode != status {
					t.Errorf("status = %d, want the redirect itself (%d)", resp.StatusCode, status)
				}
				if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, target.URL) {
					t.Errorf("Location = %q", loc)
				}
			})
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests", n)
	}
	if following.CheckRedirect != nil {
		t.Error("WithoutRedirects changed the client it was given")
	}
	if err := RefuseRedirects(nil, nil); !errors.Is(err, http.ErrUseLastResponse) {
		t.Errorf("RefuseRedirects = %v, want http.ErrUseLastResponse", err)
	}
}

func TestNewBoundsEachRequest(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c := trustingClient(t, srv, 200*time.Millisecond)
	if c.Timeout != 200*time.Millisecond {
		t.Errorf("Timeout = %v", c.Timeout)
	}
	resp, err := c.Get(srv.URL)
	if err == nil {
		_ = resp.Body.Close()
	}
	var netErr net.Error
	if !errors.As(err, &netErr) || !netErr.Timeout() {
		t.Fatalf("GET = %v, want a timeout", err)
	}
}

func TestReadLimited(t *testing.T) {
	const limit = 1024
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := strconv.Atoi(r.URL.Query().Get("size"))
		_, _ = io.WriteString(w, strings.Repeat("x", n))
	}))
	defer srv.Close()
	c := trustingClient(t, srv, 5*time.Second)
	tests := map[string]struct {
		size    int
		wantErr error
	}{
		"empty":             {size: 0},
		"under the limit":   {size: limit - 1},
		"exactly the limit": {size: limit},
		"one byte over":     {size: limit + 1, wantErr: ErrTooLarge},
		"far over":          {size: 100 * limit, wantErr: ErrTooLarge},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, err := c.Get(srv.URL + "?size=" + strconv.Itoa(tc.size))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = resp.Body.Close() }()
			body, err := ReadLimited(resp.Body, limit)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || body != nil {
					t.Fatalf("ReadLimited = %d bytes, %v; want no data and %v", len(body), err, tc.wantErr)
				}
				return
			}
			if err != nil || len(body) != tc.size {
				t.Fatalf("ReadLimited = %d bytes, %v; want %d bytes", len(body), err, tc.size)
			}
		})
	}
}

func TestReadLimitedReturnsReadErrors(t *testing.T) {
	boom := errors.New("connection reset")
	body, err := ReadLimited(io.MultiReader(strings.NewReader("partial"), errReader{boom}), 1024)
	if !errors.Is(err, boom) || body != nil {
		t.Fatalf("ReadLimited = %q, %v; want no data and the read error", body, err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const limit = 10 * time.Minute
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	tests := map[string]struct {
		header   string // "" for none
		wantWait time.Duration
		wantOK   bool
	}{
		"absent":                  {},
		"blank":                   {header: "  "},
		"seconds":                 {header: "7", wantWait: 7 * time.Second, wantOK: true},
		"seconds with spaces":     {header: " 7 ", wantWait: 7 * time.Second, wantOK: true},
		"zero":                    {header: "0", wantWait: 0, wantOK: true},
		"exactly the limit":       {header: "600", wantWait: limit, wantOK: true},
		"more than the limit":     {header: "86400", wantWait: limit, wantOK: true},
		"beyond int64":            {header: "99999999999999999999"},
		"negative":                {header: "-5"},
		"fraction":                {header: "1.5"},
		"garbage":                 {header: "soon"},
		"HTTP date ahead":         {header: date(90 * time.Second), wantWait: 90 * time.Second, wantOK: true},
		"HTTP date past":          {header: date(-time.Hour), wantWait: 0, wantOK: true},
		"HTTP date far ahead":     {header: date(48 * time.Hour), wantWait: limit, wantOK: true},
		"HTTP date in RFC 850":    {header: now.Add(time.Minute).Format(time.RFC850), wantWait: time.Minute, wantOK: true},
		"HTTP date in asctime":    {header: now.Add(time.Minute).Format(time.ANSIC), wantWait: time.Minute, wantOK: true},
		"HTTP date not in GMT/UT": {header: now.Add(time.Minute).Format(time.RFC3339)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Retry-After", tc.header)
			}
			wait, ok := RetryAfter(h, now, limit)
			if wait != tc.wantWait || ok != tc.wantOK {
				t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tc.header, wait, ok, tc.wantWait, tc.wantOK)
			}
		})
	}
}

func TestParseManagementError(t *testing.T) {
	tests := map[string]struct {
		body                  string
		wantCode, wantMessage string
	}{
		"Auth0's shape": {
			body:     `{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}`,
			wantCode: "inexistent_user", wantMessage: "The user does not exist.",
		},
		"odd values in the fields not used": {
			body:     `{"statusCode":"404","error":{"x":1},"message":"m","errorCode":"c"}`,
			wantCode: "c", wantMessage: "m",
		},
		"no errorCode":                {body: `{"message":"m"}`, wantMessage: "m"},
		"a field of the wrong type":   {body: `{"message":5,"errorCode":"c"}`},
		"OAuth shape":                 {body: `{"error":"invalid_grant","error_description":"d"}`},
		"HTML":                        {body: `<html>Bad gateway</html>`},
		"empty":                       {body: ``},
		"JSON array":                  {body: `[{"message":"m"}]`},
		"data after the object":       {body: `{"message":"m"} x`},
		"null":                        {body: `null`},
		"case-insensitive field name": {body: `{"Message":"m","ERRORCODE":"c"}`, wantCode: "c", wantMessage: "m"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, message := ParseManagementError([]byte(tc.body))
			if code != tc.wantCode || message != tc.wantMessage {
				t.Errorf("ParseManagementError = %q, %q; want %q, %q", code, message, tc.wantCode, tc.wantMessage)
			}
		})
	}
}

func TestParseOAuthError(t *testing.T) {
	tests := map[string]struct {
		body                      string
		wantCode, wantDescription string
	}{
		"RFC 6749 shape": {
			body:     `{"error":"invalid_grant","error_description":"Token has been expired or revoked."}`,
			wantCode: "invalid_grant", wantDescription: "Token has been expired or revoked.",
		},
		"odd values in the fields not used": {
			body:     `{"error":"access_denied","error_description":"d","error_uri":5,"statusCode":"x"}`,
			wantCode: "access_denied", wantDescription: "d",
		},
		"no description":            {body: `{"error":"invalid_client"}`, wantCode: "invalid_client"},
		"a field of the wrong type": {body: `{"error":"invalid_client","error_description":["d"]}`},
		"Management API shape":      {body: `{"statusCode":429,"message":"m","errorCode":"too_many_requests"}`},
		"form-encoded":              {body: `error=invalid_grant&error_description=d`},
		"empty":                     {body: ``},
		"truncated":                 {body: `{"error":"invalid_gr`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, description := ParseOAuthError([]byte(tc.body))
			if code != tc.wantCode || description != tc.wantDescription {
				t.Errorf("ParseOAuthError = %q, %q; want %q, %q", code, description, tc.wantCode, tc.wantDescription)
			}
		})
	}
}

func TestCheckHost(t *testing.T) {
	tests := map[string]struct {
		host    string
		wantErr string // the error's text; "" for none
	}{
		"host":          {host: "tenant.eu.auth0.com"},
		"host:port":     {host: "127.0.0.1:8443"},
		"IPv6 and port": {host: "[::1]:8443"},
		"empty":         {host: "", wantErr: "is empty"},
		"scheme":        {host: "https://tenant.auth0.com", wantErr: `"https://tenant.auth0.com" must be a host or host:port without scheme or path`},
		"path":          {host: "tenant.auth0.com/api", wantErr: `"tenant.auth0.com/api" must be a host or host:port without scheme or path`},
		"user info":     {host: "me@tenant.auth0.com", wantErr: `"me@tenant.auth0.com" must be a host or host:port without scheme or path`},
		"space":         {host: "tenant .auth0.com", wantErr: `"tenant .auth0.com" must be a host or host:port without scheme or path`},
		"bad port":      {host: "tenant.auth0.com:abc", wantErr: `"tenant.auth0.com:abc" is not a valid host or host:port`},
		"port alone":    {host: ":443", wantErr: `":443" is not a valid host or host:port`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckHost(tc.host)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.wantErr {
				t.Errorf("CheckHost(%q) = %q, want %q", tc.host, got, tc.wantErr)
			}
		})
	}
}

func TestTransportCause(t *testing.T) {
	inner := errors.New("connection refused")
	tests := map[string]struct {
		err, want error
	}{
		"url.Error":         {err: &url.Error{Op: "Post", URL: "https://tenant/oauth/token", Err: inner}, want: inner},
		"wrapped url.Error": {err: errors.Join(errors.New("x"), &url.Error{Op: "Get", URL: "u", Err: inner}), want: inner},
		"anything else":     {err: inner, want: inner},
		"nil":               {},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := TransportCause(tc.err); got != tc.want {
				t.Errorf("TransportCause = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestErrorText(t *testing.T) {
	cause := errors.New("dial tcp: connection refused")
	tests := map[string]struct {
		status     int
		instead    string
		message    string
		cause      error
		retryAfter time.Duration
		want       string
	}{
		"status only":         {status: 404, instead: "NotFound", want: "404 Not Found"},
		"no response":         {instead: "Network", cause: cause, want: "network: dial tcp: connection refused"},
		"message":             {status: 400, message: "Bad input.", want: "400 Bad Request: Bad input."},
		"retry after":         {status: 429, message: "slow down", retryAfter: 3 * time.Second, want: "429 Too Many Requests: slow down (retry after 3s)"},
		"everything":          {status: 503, message: "m", cause: cause, retryAfter: time.Minute, want: "503 Service Unavailable: m: dial tcp: connection refused (retry after 1m0s)"},
		"negative retry":      {status: 429, retryAfter: -time.Second, want: "429 Too Many Requests"},
		"kind in lower case":  {instead: "RateLimited", retryAfter: time.Second, want: "ratelimited (retry after 1s)"},
		"instead is not used": {status: 200, instead: "BadResponse", cause: cause, want: "200 OK: dial tcp: connection refused"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			WriteStatus(&b, tc.status, tc.instead)
			WriteDetail(&b, tc.message, tc.cause, tc.retryAfter)
			if got := b.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
