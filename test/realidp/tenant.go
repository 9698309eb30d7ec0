package realidp

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// IdentityTokens are the tokens Auth0 keeps in a user's identity after a login.
type IdentityTokens struct {
	AccessToken  string
	RefreshToken string
	// ExpiresIn is the access token's lifetime at issuance, in seconds, as Auth0 reports it.
	ExpiresIn int64
}

// Tenant is the Auth0 tenant the operator is given: the simulator behind a reverse proxy that
// serves as the tenant's domain. The simulator answers every request; the proxy rewrites the
// answers of user and connection reads with what was set here. Create it with NewTenant and stop
// it with Close. It is safe for concurrent use.
type Tenant struct {
	sim *auth0sim.Server
	srv *httptest.Server

	mu          sync.Mutex
	identities  map[[2]string]IdentityTokens // by user id and connection name
	connections map[string]map[string]any    // extra options by connection name
	connReads   map[string]int               // successful reads by connection name
}

// NewTenant starts a Tenant in front of sim.
func NewTenant(sim *auth0sim.Server) *Tenant {
	t := &Tenant{
		sim:         sim,
		identities:  map[[2]string]IdentityTokens{},
		connections: map[string]map[string]any{},
		connReads:   map[string]int{},
	}
	target, err := url.Parse(sim.URL())
	if err != nil {
		panic("realidp: the simulator's URL does not parse: " + err.Error())
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Header.Del("Accept-Encoding") // bodies are rewritten: keep them plain
		},
		Transport:      sim.Client().Transport,
		ModifyResponse: t.rewrite,
	}
	t.srv = httptest.NewTLSServer(proxy)
	return t
}

// Close stops the proxy (not the simulator).
func (t *Tenant) Close() { t.srv.Close() }

// Domain is the value for Auth0Tenant.spec.domain. The Management API audience stays the
// simulator's (auth0sim.Server.Audience), which spec.audience must name.
func (t *Tenant) Domain() string { return strings.TrimPrefix(t.srv.URL, "https://") }

// CAPEM is the PEM of the proxy's self-signed certificate, for a tenant's caBundle.
func (t *Tenant) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: t.srv.Certificate().Raw})
}

// SetIdentityTokens makes Auth0 hold tok in userID's identity of connection, as after a login
// through it. The simulator's user must have that identity (auth0sim.IdentitySpec without IdP).
func (t *Tenant) SetIdentityTokens(userID, connection string, tok IdentityTokens) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.identities[[2]string{userID, connection}] = tok
}

// SetConnectionOptions adds options to the named connection's (client_id, client_secret,
// tokenURL, token_endpoint, token_endpoint_auth_method, ...), replacing those set before.
func (t *Tenant) SetConnectionOptions(name string, options map[string]any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.connections[name] = maps.Clone(options)
}

// ConnectionReads is how many times the connection was read (by name or id) successfully.
func (t *Tenant) ConnectionReads(name string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.connReads[name]
}

// rewrite edits successful user and connection reads of the Management API.
func (t *Tenant) rewrite(resp *http.Response) error {
	path := resp.Request.URL.Path
	if resp.StatusCode != http.StatusOK || resp.Request.Method != http.MethodGet || !strings.HasPrefix(path, "/api/v2/") {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err == nil {
		t.mu.Lock()
		switch {
		case strings.HasPrefix(path, "/api/v2/users/"):
			t.editUserLocked(doc)
		case strings.HasPrefix(path, "/api/v2/connections"):
			t.editConnectionsLocked(doc)
		}
		t.mu.Unlock()
		if edited, err := json.Marshal(doc); err == nil {
			body = edited
		}
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	return nil
}

func (t *Tenant) editUserLocked(doc any) {
	u, ok := doc.(map[string]any)
	if !ok {
		return
	}
	userID, _ := u["user_id"].(string)
	ids, _ := u["identities"].([]any)
	for _, raw := range ids {
		id, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		conn, _ := id["connection"].(string)
		if tok, ok := t.identities[[2]string{userID, conn}]; ok {
			id["access_token"] = tok.AccessToken
			id["refresh_token"] = tok.RefreshToken
			id["expires_in"] = tok.ExpiresIn
		}
	}
}

// editConnectionsLocked edits one connection (GET /connections/{id}) or a list of them.
func (t *Tenant) editConnectionsLocked(doc any) {
	list, isList := doc.([]any)
	if !isList {
		list = []any{doc}
	}
	for _, raw := range list {
		c, ok := raw.(map[string]any)
		if !ok {
			continue
		}
		name, _ := c["name"].(string)
		t.connReads[name]++
		extra, ok := t.connections[name]
		if !ok {
			continue
		}
		opts, _ := c["options"].(map[string]any)
		if opts == nil {
			opts = map[string]any{}
		}
		maps.Copy(opts, extra)
		c["options"] = opts
	}
}
