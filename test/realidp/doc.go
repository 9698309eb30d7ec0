// Package realidp puts a real OAuth2 authorization server, Ory fosite, in the place of the
// identity provider whose tokens Auth0 holds, and drives the operator against it end to end in
// envtest (issue #18): sync, refresh with rotation, a replayed refresh token refused,
// invalid_grant and invalid_client mapped, and both client authentication methods.
//
// IdP is fosite served over HTTPS by httptest: the authorization-code grant (with PKCE) gives a
// user's first tokens, the refresh grant rotates the refresh token on every use and revokes the
// whole family when a spent one comes back (RFC 6819 §5.2.2.3), and every client must
// authenticate the way it is registered for (client_secret_post or client_secret_basic).
// Access tokens are RS256 JWTs; refresh tokens are opaque.
//
// Tenant is the Auth0 tenant the operator talks to: test/auth0sim behind a reverse proxy. The
// simulator answers everything (M2M tokens, scopes, rate limits, request counters); the proxy
// only writes the IdP's tokens into users' identities and the IdP's token endpoint and client
// into connections' options, because the simulator's identities and connections can only hold
// tokens and endpoints of the simulator's own IdPs.
//
// Nothing here goes into the manager binary. Token values never leave these types except to
// the test that asked for them; what they record for assertions are fingerprints (Fingerprint).
package realidp
