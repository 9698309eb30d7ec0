package tokenvault

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// shortClientSecret is shorter than safetext.MinTokenRun: echoed on its own, only its name
// can catch it, so the test fails if the secret is not passed to the scrubbing.
const shortClientSecret = "tv-SECRET-short"

// echoServer is a token endpoint that answers every exchange with status and an error
// whose error_description (and, when codeIsSecret, error) puts back what it received: the
// subject token, the client assertion and the client secret each on its own, the whole form
// body, and a token of its own. It records the values it received, for the assertions.
type echoServer struct {
	srv    *httptest.Server
	minted string

	mu       sync.Mutex
	received map[string]string
}

func newEchoServer(t *testing.T, status int, code string, codeIsSecret bool) *echoServer {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	e := &echoServer{minted: base64.RawURLEncoding.EncodeToString(b)}
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := r.PostForm
		e.mu.Lock()
		e.received = map[string]string{
			"subject token":    f.Get("subject_token"),
			"client assertion": f.Get("client_assertion"),
			"client secret":    f.Get("client_secret"),
		}
		e.mu.Unlock()
		c := code
		if codeIsSecret {
			c = f.Get("client_secret")
		}
		body, _ := json.Marshal(map[string]string{
			"error": c,
			"error_description": fmt.Sprintf("mine: %s; subject '%s' assertion '%s' secret '%s' for '%s'; request %s",
				e.minted, f.Get("subject_token"), f.Get("client_assertion"), f.Get("client_secret"), f.Get("client_id"), f.Encode()),
		})
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// secrets are the values an error must not contain: what the server received, each JWT's
// segments on their own, and the token the server minted.
func (e *echoServer) secrets() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{"minted token": e.minted}
	for name, v := range e.received {
		out[name] = v
		if parts := strings.Split(v, "."); len(parts) == 3 {
			for i, p := range parts {
				out[fmt.Sprintf("%s segment %d", name, i)] = p
			}
		}
	}
	return out
}

// TestExchangeErrorScrubsEchoedSecrets: a Token Vault endpoint echoes everything the exchange
// sent into its error; none of it reaches the *Error, whose text ends up in a binding's
// condition and Event, and the kind stays what the status and code say.
func TestExchangeErrorScrubsEchoedSecrets(t *testing.T) {
	tests := map[string]struct {
		clientSecret string // "" authenticates with a private_key_jwt client assertion
		status       int
		code         string
		codeIsSecret bool
		want         Kind
		wantCode     string
	}{
		"client assertion, 401 invalid_grant":  {status: 401, code: "invalid_grant", want: IdentityNotFound, wantCode: "invalid_grant"},
		"client assertion, 401 invalid_client": {status: 401, code: "invalid_client", want: ClientAuthFailed, wantCode: "invalid_client"},
		"client secret, 403 unauthorized_client": {
			clientSecret: shortClientSecret, status: 403, code: "unauthorized_client", want: NotAuthorized, wantCode: "unauthorized_client",
		},
		"client secret as the error code": {
			clientSecret: shortClientSecret, status: 400, codeIsSecret: true, want: BadRequest, wantCode: "[redacted]",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			es := newEchoServer(t, tc.status, tc.code, tc.codeIsSecret)
			c, err := New(Config{
				Domain: strings.TrimPrefix(es.srv.URL, "https://"), ClientID: clientID, ClientSecret: tc.clientSecret,
				PrivateKey: pkcs1PEM(testKey()), Transport: es.srv.Client().Transport,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Exchange(context.Background(), simUser, simConn, "")
			if err == nil {
				t.Fatal("Exchange succeeded against an endpoint that always fails")
			}
			msg := err.Error()
			secrets := es.secrets()
			if tc.clientSecret == "" && secrets["client assertion"] == "" {
				t.Fatal("no client assertion was sent")
			}
			for name, v := range secrets {
				if v != "" && strings.Contains(msg, v) {
					t.Fatalf("the error (%d bytes) contains the %s", len(msg), name)
				}
			}
			if !strings.Contains(msg, "[redacted]") || !strings.Contains(msg, "'"+clientID+"'") {
				t.Errorf("Error() = %q, want [redacted] where the secrets were and the client ID kept", msg)
			}
			var e *Error
			if KindOf(err) != tc.want || !errors.As(err, &e) || e.Code != tc.wantCode {
				t.Fatalf("got %v, want a %v *Error with code %q", err, tc.want, tc.wantCode)
			}
		})
	}
}
