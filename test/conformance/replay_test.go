package conformance

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// route is a fixture served at a method and an unescaped path.
type route struct {
	f            *fixture
	method, path string
}

// at serves f where its source received it.
func at(f *fixture) route { return route{f: f, method: f.Request.Method, path: f.Request.Path} }

// recorded is a request the replay server received.
type recorded struct {
	Method, Path string
	Header       http.Header
	Form         url.Values
}

// replay is an HTTPS server that answers each route with its fixture, byte for byte, and
// anything else with a 404 that fails the test.
type replay struct {
	t   testing.TB
	srv *httptest.Server

	mu       sync.Mutex
	routes   map[string]route
	received map[string][]recorded
}

func newReplay(t testing.TB, routes ...route) *replay {
	t.Helper()
	r := &replay{t: t, routes: map[string]route{}, received: map[string][]recorded{}}
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		if _, dup := r.routes[key]; dup {
			t.Fatalf("two fixtures at %s", key)
		}
		r.routes[key] = rt
	}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // expected handshake failures of guarded clients
	r.srv.StartTLS()
	t.Cleanup(r.srv.Close)
	return r
}

// domain is host:port, the form of an Auth0 tenant's domain.
func (r *replay) domain() string { return strings.TrimPrefix(r.srv.URL, "https://") }

// caPEM is the server's certificate, which is its own root.
func (r *replay) caPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw})
}

// url is the server's URL of a path.
func (r *replay) url(path string) string { return r.srv.URL + path }

// client trusts the server and reaches nothing else: a client that tried an IdP's real
// address would fail the test instead of leaving the machine.
func (r *replay) client() *http.Client {
	c := r.srv.Client()
	inner := c.Transport
	c.Transport = roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if req.URL.Host != r.domain() {
			r.t.Errorf("a request left for %s, outside the replay server", req.URL.Host)
			return nil, fmt.Errorf("conformance: %s is not the replay server", req.URL.Host)
		}
		return inner.RoundTrip(req)
	})
	return c
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// requests returns what was received at a route.
func (r *replay) requests(rt route) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]recorded(nil), r.received[rt.method+" "+rt.path]...)
}

func (r *replay) serve(w http.ResponseWriter, req *http.Request) {
	_ = req.ParseForm()
	key := req.Method + " " + req.URL.Path
	r.mu.Lock()
	rt, ok := r.routes[key]
	if ok {
		r.received[key] = append(r.received[key], recorded{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Form: req.PostForm})
	}
	r.mu.Unlock()
	if !ok {
		r.t.Errorf("unexpected request %s %s", req.Method, req.URL.Path)
		http.Error(w, "no fixture here", http.StatusNotFound)
		return
	}
	body := rt.f.body()
	if rt.f.Response.Fragment != "" {
		body = r.serveFragment(rt.f, req)
	}
	for k, vs := range rt.f.Response.Headers {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header()["Content-Type"] = nil // no sniffing: the answer had none, or the source showed none
	}
	w.WriteHeader(rt.f.status())
	_, _ = w.Write(body)
}

// serveFragment serves a source that quoted only an identity as the one identity of the
// smallest user the client accepts, whose user_id is the one asked for. This wrapper is the
// suite's; only the identity is the source's.
func (r *replay) serveFragment(f *fixture, req *http.Request) []byte {
	if f.Response.Fragment != "identity" {
		r.t.Errorf("fixture %s: unknown fragment %q", f.Name, f.Response.Fragment)
		return nil
	}
	user := map[string]any{
		"user_id":    strings.TrimPrefix(req.URL.Path, "/api/v2/users/"),
		"identities": []json.RawMessage{f.body()},
	}
	b, err := json.Marshal(user)
	if err != nil {
		r.t.Errorf("fixture %s: %v", f.Name, err)
	}
	return b
}
