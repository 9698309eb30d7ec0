package tokenvault

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// fixedAnswer is a token endpoint that answers every exchange with status and body.
func fixedAnswer(t *testing.T, status int, body string) *Client {
	t.Helper()
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c, err := New(Config{Domain: strings.TrimPrefix(srv.URL, "https://"), ClientID: clientID, PrivateKey: pkcs1PEM(testKey()), Transport: srv.Client().Transport})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefusalsNameWhoseProblemItIs: Auth0's 401 says three different things (Token Vault get-token
// reference: "the subject token is invalid or expired, the client credentials are incorrect, or Auth0
// can't find a user identity matching the connection"); only the last two are about the user. A bad
// worker client is a tenant problem, never IdentityNotFound on every binding; a 403 says which setting
// refused it.
func TestRefusalsNameWhoseProblemItIs(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		body        string
		want        Kind
		wantRefusal Refusal
		wantText    string // in Error(); "" = no check
	}{
		{name: "401 invalid_client", status: 401, body: `{"error":"invalid_client","error_description":"Invalid client credentials"}`,
			want: ClientAuthFailed, wantRefusal: RefusalClientAuth, wantText: "worker client"},
		{name: "401 access_denied Unauthorized (Auth0's answer to a bad client)", status: 401, body: `{"error":"access_denied","error_description":"Unauthorized"}`,
			want: ClientAuthFailed, wantRefusal: RefusalClientAuth, wantText: "worker client"},
		{name: "401 access_denied unauthorized. in another case", status: 401, body: `{"error":"access_denied","error_description":" unauthorized. "}`,
			want: ClientAuthFailed, wantRefusal: RefusalClientAuth},
		{name: "401 access_denied without a description", status: 401, body: `{"error":"access_denied"}`, want: IdentityNotFound},
		{name: "401 no linked account", status: 401, body: `{"error":"access_denied","error_description":"No federated connection access token found for the user on connection google-oauth2"}`,
			want: IdentityNotFound},
		{name: "401 refresh token not found in the vault", status: 401, body: `{"error":"federated_connection_refresh_token_not_found","error_description":"Federated connection Refresh Token not found."}`,
			want: IdentityNotFound},
		{name: "401 invalid_request about the federated connection", status: 401, body: `{"error":"invalid_request","error_description":"The user has no identity on this federated connection"}`,
			want: IdentityNotFound},
		{name: "401 bad subject token", status: 401, body: `{"error":"invalid_grant","error_description":"Invalid subject_token: has expired"}`, want: IdentityNotFound},
		{name: "403 outside the IP allowlist", status: 403, body: `{"error":"access_denied","error_description":"The request IP address is not in the client's IP allow-list"}`,
			want: NotAuthorized, wantRefusal: RefusalIPAllowlist, wantText: "IP allowlist"},
		{name: "403 IP not allowed", status: 403, body: `{"error":"access_denied","error_description":"IP 203.0.113.9 not allowed"}`,
			want: NotAuthorized, wantRefusal: RefusalIPAllowlist, wantText: "IP allowlist"},
		{name: "403 grant type not allowed", status: 403, body: `{"error":"unauthorized_client","error_description":"Grant type 'urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token' not allowed for the client."}`,
			want: NotAuthorized, wantRefusal: RefusalGrantType, wantText: "grant type"},
		{name: "403 unauthorized_client without a description", status: 403, body: `{"error":"unauthorized_client"}`,
			want: NotAuthorized, wantRefusal: RefusalGrantType, wantText: "grant type"},
		{name: "403 connection not in the worker's grants", status: 403, body: `{"error":"access_denied","error_description":"The connection is not in the client's Token Vault privileged access grants"}`,
			want: NotAuthorized, wantRefusal: RefusalConnectionGrant, wantText: "Privileged Worker permissions"},
		{name: "403 says nothing", status: 403, body: `{"error":"access_denied"}`, want: NotAuthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := fixedAnswer(t, tc.status, tc.body).Exchange(context.Background(), simUser, simConn, "a")
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("Exchange: %v, want an *Error", err)
			}
			if e.Kind != tc.want || e.Refusal != tc.wantRefusal {
				t.Fatalf("kind %v refusal %q (%v); want %v %q", e.Kind, e.Refusal, err, tc.want, tc.wantRefusal)
			}
			if tc.wantText != "" && !strings.Contains(err.Error(), tc.wantText) {
				t.Errorf("Error() = %q; want it to mention %q", err, tc.wantText)
			}
		})
	}
}
