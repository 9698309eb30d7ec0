package conformance

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

// The M2M application the suite authenticates as, and the answer its token requests get.
const (
	m2mClientID     = "conformance-m2m-client"
	m2mClientSecret = "conformance-m2m-client-SECRET"
	m2mFixture      = "auth0-oauth-token-m2m-success"
)

// t0 is the fake clock's time unless a row needs another.
var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

type auth0Call int

const (
	getUser auth0Call = iota + 1
	getConnection
	getConnectionByName
	// authenticate asks for the M2M token twice in a row: the fixture answers the first.
	authenticate
)

// auth0Row drives internal/auth0's Client (and, for connections, idp.Resolver) against one
// fixture.
type auth0Row struct {
	fixture string
	call    auth0Call
	arg     string
	// at serves the answer at another path than the source's, for a source that answered the
	// same error on another endpoint.
	at string
	// now sets the fake clock from the fixture (e.g. before its X-RateLimit-Reset); nil: t0.
	now   func(t testing.TB, f *fixture) time.Time
	check func(t *testing.T, f *fixture, o auth0Outcome)
}

// auth0Outcome is what the client made of the answer.
type auth0Outcome struct {
	user      *auth0.User
	conn      *auth0.Connection
	endpoint  idp.Endpoint // Resolve of conn
	epErr     error
	err       error
	secondErr error // the second Authenticate
	// tokenRequests and apiRequests count what reached the replay server.
	tokenRequests, apiRequests int
}

func TestAuth0Client(t *testing.T) {
	rows := append(append(append([]auth0Row{}, auth0UserRows...), auth0ConnectionRows...), auth0TokenRows...)
	for _, row := range rows {
		t.Run(row.fixture, func(t *testing.T) {
			f := loadFixture(t, row.fixture)
			row.check(t, f, runAuth0(t, row, f))
		})
	}
}

func runAuth0(t *testing.T, row auth0Row, f *fixture) auth0Outcome {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tokenRoute, apiRoute := at(f), route{}
	if row.call != authenticate {
		tokenRoute = at(loadFixture(t, m2mFixture))
		apiRoute = at(f)
		if row.at != "" {
			apiRoute.path = row.at
		}
	}
	routes := []route{tokenRoute}
	if apiRoute.f != nil {
		routes = append(routes, apiRoute)
	}
	r := newReplay(t, routes...)
	now := t0
	if row.now != nil {
		now = row.now(t, f)
	}
	c, err := auth0.NewClient(auth0.Config{
		Domain: r.domain(), ClientID: m2mClientID, ClientSecret: m2mClientSecret, CABundle: r.caPEM(),
		RequestsPerSecond: math.Inf(1), Burst: 1, Timeout: 5 * time.Second,
		// A server-requested wait is reported, not slept through.
		MaxRateLimitWait: time.Millisecond,
		Clock:            clocktesting.NewFakeClock(now),
	})
	if err != nil {
		t.Fatal(err)
	}
	var o auth0Outcome
	switch row.call {
	case getUser:
		o.user, o.err = c.GetUser(ctx, row.arg)
	case getConnection:
		o.conn, o.err = c.GetConnection(ctx, row.arg)
	case getConnectionByName:
		o.conn, o.err = c.GetConnectionByName(ctx, row.arg)
	case authenticate:
		_, o.err = c.Authenticate(ctx)
		_, o.secondErr = c.Authenticate(ctx)
	}
	if o.conn != nil {
		o.endpoint, o.epErr = (&idp.Resolver{HTTPClient: r.client()}).Resolve(ctx, o.conn)
	}
	o.tokenRequests = len(r.requests(tokenRoute))
	if apiRoute.f != nil {
		o.apiRequests = len(r.requests(apiRoute))
	}
	for _, e := range []error{o.err, o.secondErr, o.epErr} {
		assertNoSecret(t, e, m2mClientSecret, "test-access-token")
	}
	return o
}

// assertNoSecret fails when an error's text holds a secret the request sent or received.
func assertNoSecret(t testing.TB, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error text holds a secret: %v", err)
		}
	}
}

// apiError returns err as an *auth0.APIError, failing the test when it is not one.
func apiError(t testing.TB, err error) *auth0.APIError {
	t.Helper()
	var e *auth0.APIError
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *auth0.APIError", err)
	}
	return e
}

// wantAPIError checks an error's kind, Auth0 error code and whether it is worth retrying.
func wantAPIError(t testing.TB, err error, kind auth0.ErrorKind, code string, transient bool) {
	t.Helper()
	e := apiError(t, err)
	if e.Kind != kind || e.Code != code {
		t.Errorf("got %s (%s), want %s (%s): %v", e.Kind, e.Code, kind, code, err)
	}
	if auth0.IsTransient(err) != transient {
		t.Errorf("IsTransient = %t, want %t: %v", !transient, transient, err)
	}
}
