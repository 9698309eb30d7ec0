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

import "net/http"

// Client authentication methods of a token endpoint (options.token_endpoint_auth_method).
const (
	// ClientSecretBasic: client_id and client_secret in an HTTP Basic Authorization header.
	ClientSecretBasic = "client_secret_basic"
	// ClientSecretPost: client_id and client_secret in the form body.
	ClientSecretPost = "client_secret_post"
)

// refuseAuthMethod says why a request that authenticated with HTTP Basic (basic) or not breaks
// the endpoint's only accepted method, or "" when it does not (or any method is accepted).
func refuseAuthMethod(method string, basic bool) string {
	switch {
	case method == ClientSecretBasic && !basic:
		return "client authentication must use client_secret_basic (HTTP Basic)"
	case method == ClientSecretPost && basic:
		return "client authentication must use client_secret_post (credentials in the body)"
	}
	return ""
}

// githubError turns a refresh-grant error into GitHub's answer: status 200, GitHub's codes.
// Successes are returned unchanged.
func githubError(status int, body any) (int, any) {
	e, ok := body.(oauthError)
	if !ok || status < 400 {
		return status, body
	}
	switch e.Error {
	case "invalid_grant":
		e = oauthError{Error: "bad_refresh_token", ErrorDescription: "The refresh token passed is incorrect or expired.",
			ErrorURI: "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"}
	case "invalid_client":
		e = oauthError{Error: "incorrect_client_credentials", ErrorDescription: "The client_id and/or client_secret passed are incorrect.",
			ErrorURI: "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#incorrect-client-credentials"}
	}
	return http.StatusOK, e
}
