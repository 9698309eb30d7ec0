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

package auth0sim

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"time"
)

// Prefixes of the opaque tokens the server mints.
const (
	PrefixM2MToken          = "sim_m2m_" // Management API (client credentials) access tokens
	PrefixAccessToken       = "sim_at_"  // IdP access tokens (opaque form)
	PrefixRefreshToken      = "sim_rt_"  // IdP refresh tokens
	PrefixAccessTokenSecret = "sim_ats_" // identity access_token_secret values
)

// jwtHeader is the fixed header of JWT-shaped IdP access tokens. The tokens
// are not really signed: their third segment is random.
const jwtHeader = `{"alg":"RS256","typ":"JWT","kid":"auth0sim-unsigned"}`

// JWTHeaderSegment is the first (header) segment shared by every JWT-shaped
// token the server mints.
var JWTHeaderSegment = base64.RawURLEncoding.EncodeToString([]byte(jwtHeader))

// TokenPattern matches every token value the server can mint (opaque tokens
// by prefix, JWT-shaped ones by their fixed header segment). Use it to
// assert that logs, events or status fields never contain a token.
var TokenPattern = regexp.MustCompile(
	`sim_(?:m2m|at|rt|ats)_[A-Za-z0-9_-]{16,}|` +
		regexp.QuoteMeta(JWTHeaderSegment) + `\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)

// randomString returns n random bytes, base64url-encoded without padding.
func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		// crypto/rand.Read is documented never to fail.
		panic(fmt.Sprintf("auth0sim: crypto/rand: %v", err))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func opaqueToken(prefix string) string { return prefix + randomString(24) }

// jwtToken returns an unsigned JWT-shaped token with the usual claims and a
// random signature segment.
func jwtToken(iss, sub, aud, scope string, iat, exp time.Time) string {
	claims := struct {
		Iss   string `json:"iss"`
		Sub   string `json:"sub"`
		Aud   string `json:"aud"`
		Iat   int64  `json:"iat"`
		Exp   int64  `json:"exp"`
		Scope string `json:"scope,omitempty"`
		Jti   string `json:"jti"`
	}{iss, sub, aud, iat.Unix(), exp.Unix(), scope, randomString(12)}
	payload, err := json.Marshal(claims)
	if err != nil {
		panic(fmt.Sprintf("auth0sim: marshal JWT claims: %v", err))
	}
	return JWTHeaderSegment + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + randomString(64)
}
