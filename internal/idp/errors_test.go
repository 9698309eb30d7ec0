package idp

import "testing"

func TestAnInvalidRequestAboutTheRefreshTokenIsADeadRefreshToken(t *testing.T) {
	for _, tc := range []struct {
		code, description string
		want              bool
	}{
		{"invalid_request", "Invalid refresh_token", true}, // Bitbucket
		{"invalid_request", "The refresh token has expired", true},
		{"invalid_request", "Refresh token revoked", true},
		{"invalid_request", "Missing parameter: refresh_token", false},
		{"invalid_request", "Invalid client_id", false},
		{"invalid_scope", "Invalid refresh_token", false},
		{"invalid_request", "", false},
	} {
		if got := deadRefreshTokenRequest(tc.code, tc.description); got != tc.want {
			t.Errorf("%s %q: dead refresh token = %t, want %t", tc.code, tc.description, got, tc.want)
		}
	}
}
