package idp

import (
	"context"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// fakeIssuer serves an OpenID configuration document over HTTPS.
type fakeIssuer struct {
	srv      *httptest.Server
	requests atomic.Int64
	// serve answers GET /.well-known/openid-configuration; the default serves a good document.
	serve func(w http.ResponseWriter, r *http.Request)
	// elsewhere counts requests to any other path (a redirect's target).
	elsewhere atomic.Int64
}

func newFakeIssuer(t *testing.T) *fakeIssuer {
	t.Helper()
	f := &fakeIssuer{}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != wellKnownPath {
			f.elsewhere.Add(1)
			f.goodDoc(w, r)
			return
		}
		f.requests.Add(1)
		if r.Header.Get("Authorization") != "" || strings.Contains(r.URL.String(), "SECRET") {
			t.Errorf("the discovery request carries a credential")
		}
		if f.serve != nil {
			f.serve(w, r)
			return
		}
		f.goodDoc(w, r)
	}))
	f.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.srv.StartTLS()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIssuer) goodDoc(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": f.srv.URL, "token_endpoint": f.srv.URL + "/oauth2/token",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "client_secret_basic", "private_key_jwt"},
		"jwks_uri":                              f.srv.URL + "/keys", "scopes_supported": 7, // an odd unused field
	})
}

// client trusts the fake through the tenant transport's CA bundle and, left to itself,
// follows redirects: the Resolver must not.
func (f *fakeIssuer) client(t *testing.T) *http.Client {
	t.Helper()
	tr, err := httpclient.NewTransport(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.srv.Certificate().Raw}))
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

func oidcConn(strategy string, o auth0.ConnectionOptions) *auth0.Connection {
	if o.ClientID == "" {
		o.ClientID = "cid"
	}
	if o.ClientSecret == "" {
		o.ClientSecret = "cs-SECRET"
	}
	return &auth0.Connection{ID: "con_1", Name: "corp", Strategy: strategy, Options: o}
}

func TestResolverReadsTheDiscoveryDocument(t *testing.T) {
	type result int
	const (
		ok result = iota
		noEndpoint
		unsupportedRefresh
		discoveryFailed
	)
	tests := map[string]struct {
		strategy string
		options  func(base string) auth0.ConnectionOptions
		serve    func(base string) func(w http.ResponseWriter, r *http.Request)
		want     result
		style    oauth2.AuthStyle
		wantText string // substring of the error
		requests int64  // requests for the document
	}{
		"discovery_url naming the document": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{DiscoveryURL: b + wellKnownPath}
			},
			requests: 1,
		},
		"discovery_url naming the issuer": {
			options:  func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{DiscoveryURL: b + "/"} },
			requests: 1,
		},
		"issuer": {
			options:  func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			requests: 1,
		},
		"issuer with a trailing slash": {
			options:  func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b + "/"} },
			requests: 1,
		},
		"okta domain": {
			strategy: "okta",
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{Domain: strings.TrimPrefix(b, "https://")}
			},
			requests: 1,
		},
		"client_secret_basic configured": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{Issuer: b, TokenEndpointAuthMethod: "client_secret_basic"}
			},
			style: oauth2.AuthStyleInHeader, requests: 1,
		},
		"the IdP supports only client_secret_basic": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve: doc(func(b string) map[string]any {
				return map[string]any{"issuer": b, "token_endpoint": b + "/oauth2/token", "token_endpoint_auth_methods_supported": []string{"client_secret_basic"}}
			}),
			style: oauth2.AuthStyleInHeader, requests: 1,
		},
		"the connection's method wins over the IdP's list": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{Issuer: b, TokenEndpointAuthMethod: "client_secret_post"}
			},
			serve: doc(func(b string) map[string]any {
				return map[string]any{"token_endpoint": b + "/oauth2/token", "token_endpoint_auth_methods_supported": []string{"client_secret_basic"}}
			}),
			requests: 1,
		},
		"issuer mismatch": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve: doc(func(b string) map[string]any {
				return map[string]any{"issuer": "https://evil.example", "token_endpoint": b + "/oauth2/token"}
			}),
			want: noEndpoint, wantText: `names issuer "https://evil.example"`, requests: 1,
		},
		"redirect refused": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve: func(b string) func(w http.ResponseWriter, r *http.Request) {
				return func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, b+"/elsewhere", http.StatusFound) }
			},
			want: noEndpoint, wantText: "302 Found, and redirects are not followed", requests: 1,
		},
		"http token_endpoint": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve: doc(func(b string) map[string]any {
				return map[string]any{"issuer": b, "token_endpoint": "http://" + strings.TrimPrefix(b, "https://") + "/token"}
			}),
			want: noEndpoint, wantText: "token_endpoint must use https", requests: 1,
		},
		"no token_endpoint": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve:   doc(func(b string) map[string]any { return map[string]any{"issuer": b} }),
			want:    noEndpoint, wantText: "has no token_endpoint", requests: 1,
		},
		"not JSON": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve:   body(http.StatusOK, "<html>SECRET</html>"),
			want:    noEndpoint, wantText: "is not a JSON object", requests: 1,
		},
		"oversize": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve:   body(http.StatusOK, `{"token_endpoint":"https://x/t","pad":"`+strings.Repeat("a", maxDiscoveryBytes)+`"}`),
			want:    noEndpoint, wantText: "larger than 256 KiB", requests: 1,
		},
		"404": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve:   body(http.StatusNotFound, "SECRET"),
			want:    noEndpoint, wantText: "404 Not Found", requests: 1,
		},
		"500": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve:   body(http.StatusInternalServerError, "SECRET"),
			want:    discoveryFailed, wantText: "500 Internal Server Error", requests: 1,
		},
		"429": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Issuer: b} },
			serve:   body(http.StatusTooManyRequests, ""),
			want:    discoveryFailed, wantText: "429 Too Many Requests", requests: 1,
		},
		"http discovery_url": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{DiscoveryURL: "http://" + strings.TrimPrefix(b, "https://")}
			},
			want: noEndpoint, wantText: "options.discovery_url must use https",
		},
		"discovery_url with a query": {
			options: func(b string) auth0.ConnectionOptions { return auth0.ConnectionOptions{DiscoveryURL: b + "?tenant=x"} },
			want:    noEndpoint, wantText: "must not have a query",
		},
		"okta domain with a path": {
			strategy: "okta",
			options:  func(string) auth0.ConnectionOptions { return auth0.ConnectionOptions{Domain: "acme.okta.com/x"} },
			want:     noEndpoint, wantText: "options.domain",
		},
		"nothing to find the document by": {
			options: func(string) auth0.ConnectionOptions { return auth0.ConnectionOptions{} },
			want:    noEndpoint, wantText: "options.issuer",
		},
		"private_key_jwt is not read": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{Issuer: b, TokenEndpointAuthMethod: "private_key_jwt"}
			},
			want: unsupportedRefresh, wantText: `"private_key_jwt"`,
		},
		"no client secret, no request": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{Issuer: b, ClientSecret: "-"}
			},
			want: noEndpoint, wantText: "options.client_secret",
		},
		"token_endpoint set: no request": {
			options: func(b string) auth0.ConnectionOptions {
				return auth0.ConnectionOptions{Issuer: b, TokenEndpoint: b + "/oauth2/token"}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := newFakeIssuer(t)
			if tc.serve != nil {
				f.serve = tc.serve(f.srv.URL)
			}
			strategy := tc.strategy
			if strategy == "" {
				strategy = "oidc"
			}
			conn := oidcConn(strategy, tc.options(f.srv.URL))
			if conn.Options.ClientSecret == "-" {
				conn.Options.ClientSecret = ""
			}
			r := &Resolver{HTTPClient: f.client(t)}
			ep, err := r.Resolve(testContext(t), conn)
			if got := f.requests.Load(); got != tc.requests {
				t.Errorf("%d requests for the document, want %d", got, tc.requests)
			}
			if n := f.elsewhere.Load(); n != 0 {
				t.Errorf("%d requests elsewhere: a redirect was followed", n)
			}
			if tc.want == ok {
				if err != nil {
					t.Fatal(err)
				}
				style := tc.style
				if style == oauth2.AuthStyleAutoDetect { // unset in the table
					style = oauth2.AuthStyleInParams
				}
				want := Endpoint{TokenURL: f.srv.URL + "/oauth2/token", ClientID: "cid", ClientSecret: "cs-SECRET", AuthStyle: style, Provider: strategy}
				if ep != want {
					t.Errorf("got %v, want %v", ep, want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %v, want an error", ep)
			}
			assertNoSecrets(t, err.Error())
			if !strings.Contains(err.Error(), tc.wantText) || !strings.Contains(err.Error(), `connection "corp"`) {
				t.Errorf("error %q does not name the connection and %q", err, tc.wantText)
			}
			isNo, isUnsup, isDisc := errors.Is(err, ErrNoEndpoint), errors.Is(err, ErrRefreshUnsupported), errors.Is(err, ErrDiscovery)
			if isNo != (tc.want != discoveryFailed) || isUnsup != (tc.want == unsupportedRefresh) || isDisc != (tc.want == discoveryFailed) {
				t.Errorf("error %q: ErrNoEndpoint %v, ErrRefreshUnsupported %v, ErrDiscovery %v; want kind %d", err, isNo, isUnsup, isDisc, tc.want)
			}
		})
	}
}

func doc(build func(base string) map[string]any) func(string) func(http.ResponseWriter, *http.Request) {
	return func(base string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, build(base)) }
	}
}

func body(status int, text string) func(string) func(http.ResponseWriter, *http.Request) {
	return func(string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(status)
			_, _ = io.WriteString(w, text)
		}
	}
}

func TestResolverTransportFailures(t *testing.T) {
	f := newFakeIssuer(t)
	conn := oidcConn("oidc", auth0.ConnectionOptions{Issuer: f.srv.URL})

	t.Run("untrusted certificate", func(t *testing.T) {
		_, err := (&Resolver{}).Resolve(testContext(t), conn) // system roots only
		if !errors.Is(err, ErrDiscovery) || errors.Is(err, ErrNoEndpoint) {
			t.Errorf("got %v, want ErrDiscovery", err)
		}
	})
	t.Run("server gone", func(t *testing.T) {
		gone := newFakeIssuer(t)
		c := oidcConn("oidc", auth0.ConnectionOptions{Issuer: gone.srv.URL})
		client := gone.client(t)
		gone.srv.Close()
		_, err := (&Resolver{HTTPClient: client}).Resolve(testContext(t), c)
		if !errors.Is(err, ErrDiscovery) || errors.Is(err, ErrNoEndpoint) {
			t.Errorf("got %v, want ErrDiscovery", err)
		}
	})
	t.Run("context ended", func(t *testing.T) {
		f.serve = func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }
		ctx, cancel := context.WithCancel(testContext(t))
		cancel()
		_, err := (&Resolver{HTTPClient: f.client(t)}).Resolve(ctx, conn)
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrDiscovery) || errors.Is(err, ErrNoEndpoint) {
			t.Errorf("got %v, want context.Canceled only", err)
		}
	})
}

// TestResolverReadsADocumentOnceForConcurrentCallers: bindings of one connection that resolve
// it at the same moment share one request.
func TestResolverReadsADocumentOnceForConcurrentCallers(t *testing.T) {
	f := newFakeIssuer(t)
	release := make(chan struct{})
	f.serve = func(w http.ResponseWriter, r *http.Request) {
		<-release
		f.goodDoc(w, r)
	}
	r := &Resolver{HTTPClient: f.client(t)}
	conn := oidcConn("oidc", auth0.ConnectionOptions{Issuer: f.srv.URL})
	const callers = 8
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Go(func() {
			ep, err := r.Resolve(testContext(t), conn)
			if err == nil && ep.TokenURL != f.srv.URL+"/oauth2/token" {
				err = errors.New("wrong endpoint " + url.QueryEscape(ep.TokenURL))
			}
			errs <- err
		})
	}
	for f.requests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the other callers join the read under way
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := f.requests.Load(); n != 1 {
		t.Errorf("%d requests for %d concurrent callers, want 1", n, callers)
	}
}

func TestResolverWithoutDiscoveryIsEndpointForConnection(t *testing.T) {
	for _, conn := range []*auth0.Connection{
		nil,
		oidcConn("github", auth0.ConnectionOptions{}),
		oidcConn("samlp", auth0.ConnectionOptions{}),
		oidcConn("okta", auth0.ConnectionOptions{TokenEndpoint: "https://acme.okta.com/oauth2/v1/token", TokenEndpointAuthMethod: "client_secret_basic"}),
	} {
		got, gotErr := (&Resolver{}).Resolve(context.Background(), conn)
		want, wantErr := EndpointForConnection(conn)
		if got != want || (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Errorf("%v: Resolve = %v, %v; EndpointForConnection = %v, %v", conn, got, gotErr, want, wantErr)
		}
	}
}
