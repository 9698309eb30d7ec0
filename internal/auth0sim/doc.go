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
//   - GET /api/v2/users/{id}: an Auth0 user with its linked identities
//     (scope read:users; identity tokens only with read:user_idp_tokens).
//   - GET /api/v2/connections/{id} and GET /api/v2/connections?name=X:
//     connections (scope read:connections; client_secret and admin_* tokens
//     in options only with read:connections_options).
//   - POST /idp/<name>/token: an IdP's RFC 6749 §6 refresh-token grant, for
//     each IdP registered with AddIdP (see RotationMode).
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
