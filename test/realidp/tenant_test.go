package realidp

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// TestTenantRewritesReadsOnly shows that the proxy passes the simulator's answers through (its
// M2M grant and its counters) and changes only the identities and connections it was told about.
func TestTenantRewritesReadsOnly(t *testing.T) {
	sim, err := auth0sim.New(auth0sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.AddM2MClient("m2m", "realidp_cs_m2m", auth0sim.ScopeReadUsers, auth0sim.ScopeReadUserIdPTokens,
		auth0sim.ScopeReadConnections, auth0sim.ScopeReadConnectionOptions)
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_a", Name: "a", Strategy: "oauth2"})
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_b", Name: "b", Strategy: "oidc"})
	sim.AddUser("oauth2|u1",
		auth0sim.IdentitySpec{Connection: "a", Provider: "oauth2", UserID: "u1"},
		auth0sim.IdentitySpec{Connection: "b", Provider: "oidc", UserID: "u1"})
	tenant := NewTenant(sim)
	t.Cleanup(tenant.Close)
	tenant.SetIdentityTokens("oauth2|u1", "a", IdentityTokens{AccessToken: "at-a", RefreshToken: "rt-a", ExpiresIn: 45})
	tenant.SetConnectionOptions("b", map[string]any{"token_endpoint": "https://idp.example/token", "token_endpoint_auth_method": AuthClientSecretBasic})

	cc := clientcredentials.Config{
		ClientID: "m2m", ClientSecret: "realidp_cs_m2m", TokenURL: "https://" + tenant.Domain() + "/oauth/token",
		EndpointParams: url.Values{"audience": {sim.Audience()}},
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, tenant.srv.Client())
	hc := cc.Client(ctx)
	get := func(path string, into any) {
		t.Helper()
		resp, err := hc.Get("https://" + tenant.Domain() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("x-ratelimit-limit") == "" {
			t.Fatalf("GET %s: %s, rate-limit headers %v", path, resp.Status, resp.Header.Get("x-ratelimit-limit"))
		}
		if err := json.Unmarshal(body, into); err != nil {
			t.Fatal(err)
		}
	}

	var user struct {
		Identities []map[string]any `json:"identities"`
	}
	get("/api/v2/users/"+url.PathEscape("oauth2|u1"), &user)
	if len(user.Identities) != 2 {
		t.Fatalf("identities: %d", len(user.Identities))
	}
	a, b := user.Identities[0], user.Identities[1]
	if a["access_token"] != "at-a" || a["refresh_token"] != "rt-a" || a["expires_in"] != float64(45) {
		t.Fatalf("identity a was not given its tokens: %v", a)
	}
	if _, ok := b["access_token"]; ok {
		t.Fatalf("identity b must stay without tokens: %v", b)
	}

	var conns []struct {
		Name     string         `json:"name"`
		Strategy string         `json:"strategy"`
		Options  map[string]any `json:"options"`
	}
	get("/api/v2/connections?name=b", &conns)
	if len(conns) != 1 || conns[0].Strategy != "oidc" || conns[0].Options["token_endpoint_auth_method"] != AuthClientSecretBasic {
		t.Fatalf("connection b: %+v", conns)
	}
	var one struct {
		Options map[string]any `json:"options"`
	}
	get("/api/v2/connections/con_a", &one)
	if len(one.Options) != 0 {
		t.Fatalf("connection a must be as the simulator has it: %v", one.Options)
	}

	if tenant.ConnectionReads("b") != 1 || tenant.ConnectionReads("a") != 1 {
		t.Fatalf("connection reads: a %d, b %d", tenant.ConnectionReads("a"), tenant.ConnectionReads("b"))
	}
	st := sim.Stats()
	if st.UserReads["oauth2|u1"] != 1 || st.ConnectionReads != 2 || st.M2MTokensIssued != 1 {
		t.Fatalf("the simulator must have answered every request: %+v", st)
	}
}
