/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package auth0sim simulates an Auth0 tenant, and the third-party identity
// providers (IdPs) whose tokens Auth0 stores, over real HTTPS.
//
// It is meant for integration tests (as a fake Auth0 that behaves like the
// real one) and for local demos. A Server creates its own throw-away CA
// (ECDSA P-256) and a server certificate for 127.0.0.1, ::1 and localhost;
// clients trust it through CAPEM (or use Client).
//
// # Endpoints
//
//   - POST /oauth/token: client-credentials grant for M2M clients registered
//     with AddM2MClient. The audience must be https://<Domain()>/api/v2/.
//   - POST /oauth/token, grant TokenVaultGrantType: Token Vault's Privileged
//     Worker exchange for clients registered with AddTokenVaultClient (see
//     "Token Vault" below).
//   - GET /api/v2/users/{id}: an Auth0 user with its linked identities
//     (scope read:users; identity tokens only with read:user_idp_tokens).
//   - GET /api/v2/connections/{id} and GET /api/v2/connections?name=X:
//     connections (scope read:connections; client_secret and admin_* tokens
//     in options only with read:connections_options).
//   - GET /api/v2/events: the Events API's Server-Sent Events stream (scope
//     read:events; see events.go and EventsOptions).
//   - POST /idp/<name>/token: an IdP's RFC 6749 §6 refresh-token grant, for
//     each IdP registered with AddIdP (see RotationMode).
//   - GET /oidc/<connection>/.well-known/openid-configuration and
//     POST /oidc/<connection>/token: the issuer of an oidc or okta connection
//     with ConnectionSpec.OIDC (see "Real-world shapes").
//
// Every /api/v2 response carries x-ratelimit-limit, x-ratelimit-remaining and
// x-ratelimit-reset headers from a token bucket of Options.RateLimitBurst
// tokens that refills at Options.RateLimitPerSecond, as Auth0 meters its
// Management API; when it is empty the server answers 429 with Auth0's error
// body and Retry-After. Options.RateLimitReset selects the reading of
// x-ratelimit-reset: the bucket full again (Auth0's) or its next token.
//
// # Token lifecycle
//
// AddUser and Login store "Auth0's copy" of each identity's tokens, as
// Auth0 does after a login. Refreshing at an IdP does not update that copy
// (Auth0 never learns about it), so with a strict IdP the refresh token
// Auth0 returns is spent after the first refresh. An identity's expires_in
// is the lifetime at issuance (relative to last_login), not the remaining
// time. DeleteUser revokes every refresh token issued for the user.
//
// # Refresh commit
//
// An IdP with IdPOptions.ReplyDelay holds the reply to a valid refresh grant
// for that long and commits the grant only when it delivers the reply: if
// the client's connection is gone when the delay ends, nothing happens (a
// strict IdP's refresh token stays unspent, no new tokens exist), and the
// grant counts in Stats.IdPRefreshesAbandoned. A refresh token spent by
// someone else during the hold gets invalid_grant. This is the most
// forgiving model an IdP can have: a client killed while it waits loses
// nothing. What no IdP can offer is the moment between its commit and the
// client persisting the reply: a client killed then has spent its refresh
// token without learning the successor. IdPOptions.Observe reports when a
// grant arrived, was committed (its reply is being written) or abandoned,
// so that tests can act at, and measure from, those moments.
//
// # Token Vault
//
// A connection with ConnectionSpec.TokenVault renders
// options.federated_connections_access_tokens.active = true (and the newer
// top-level connected_accounts.active = true), and its
// identities carry no tokens in identities[]: Auth0 keeps them in Token
// Vault. A Privileged Worker client (AddTokenVaultClient) gets them with the
// token exchange: it authenticates with a private_key_jwt client assertion
// (RFC 7523; aud https://<Domain()>/, lifetime at most 5 minutes, jti used
// once) or its client secret, and sends a subject token signed with the same
// key (header typ token-vault-req+jwt; iss the client ID, sub the user ID,
// aud https://<Domain()>/, iat, exp at most 60 s after iat, jti used once,
// 10 s of skew for iat and nbf). Both JWTs are verified for real against the
// registered public key. Failures answer like Auth0: 401 invalid_client
// (client authentication), 401 invalid_grant (subject token), 401
// access_denied (no vaulted token for the user on the connection), 403
// unauthorized_client (an application without the grant), 403 access_denied
// (an address outside SetTokenVaultIPAllowlist), 400
// invalid_request, and 429 with Retry-After past
// Options.TokenVaultRateLimitPerSecond.
//
// The exchange returns the vaulted IdP access token with expires_in = its
// remaining lifetime (rounded up). As Auth0 documents, the vaulted token is
// refreshed at the IdP with the vaulted refresh token only once it has
// expired; Options.TokenVaultRefreshWindow makes that happen that long before
// expiry instead. Without a working refresh token an expired vaulted token
// gets 401 access_denied until Login. Stats count exchanges, valid and
// invalid subject tokens, jti replays and vault refreshes;
// TokenVaultSubjects lists every accepted subject token.
//
// # Real-world shapes
//
// Each is opt-in, so that a test that does not ask for it sees the answers
// described above.
//
//   - IdPOptions.ContentType labels an IdP's JSON answers with another
//     Content-Type (e.g. "text/plain; charset=utf-8"); IdPOptions.GitHubErrors
//     answers refresh-grant errors with HTTP 200 and GitHub's codes
//     (bad_refresh_token for a dead refresh token,
//     incorrect_client_credentials for a bad client).
//   - ConnectionSpec.OIDC gives a connection of strategy oidc or okta its own
//     issuer (IssuerURL), discovery document (DiscoveryURL) and token
//     endpoint (ConnectionTokenURL, refresh grants of the connection's IdP),
//     and renders one of options.token_endpoint, options.discovery_url or
//     options.issuer (OIDCByTokenEndpoint, OIDCByDiscoveryURL, OIDCByIssuer).
//     ConnectionSpec.TokenEndpointAuthMethod renders
//     options.token_endpoint_auth_method and makes that token endpoint accept
//     only ClientSecretBasic or only ClientSecretPost (401 invalid_client
//     for the other).
//   - Options.M2MQuota (or SetM2MQuota) is a fine-grained M2M token quota per
//     client, per UTC hour and day: every client-credentials token answer
//     carries Auth0-Client-Quota-Limit ("b=per_hour;q=10;r=7;t=3540,..."),
//     and a spent quota answers 429 {"error":"too_many_requests",
//     "error_description":"Client quota exceeded"} with Retry-After and
//     x-ratelimit-limit/remaining 0/reset of the spent bucket.
//   - Fault.GlobalLimit answers with the global rate-limit shape: Status
//     (default 500) with x-ratelimit-limit, x-ratelimit-remaining 0 and
//     x-ratelimit-reset, and no Retry-After; e.g.
//     SetFault("/oauth/token", Fault{GlobalLimit: true, RetryAfter: 30 * time.Second}).
//   - Options.TokenVaultBadClientAccessDenied (or
//     SetTokenVaultBadClientAccessDenied) answers a Token Vault client that
//     fails authentication with 401 {"error":"access_denied",
//     "error_description":"Unauthorized"} instead of invalid_client.
//
// # Time
//
// All expiry decisions (M2M tokens, IdP access tokens, admin token expiry
// times, expires_in values, last_login) and the rate-limit bucket use
// Options.Clock, so tests can drive them with a fake clock. Wall-clock time
// is used only for the validity window of the TLS certificates (clients
// verify those against their own clock) and for request durations in logs.
//
// # Secrets
//
// Every token the server mints matches TokenPattern: opaque tokens carry the
// prefixes sim_m2m_, sim_at_, sim_rt_ and sim_ats_; JWT-shaped access tokens
// start with a fixed, recognisable header segment. Tests can grep logs,
// events and object dumps for leaks with it. The server itself never logs
// or echoes token values.
//
// # Concurrency
//
// All methods are safe for concurrent use, including while requests are
// being served. Configuration methods (AddIdP, AddUser, AddConnection, ...)
// panic on invalid input such as a reference to an unknown IdP, because
// that is a mistake in the calling test, not a runtime condition.
package auth0sim
