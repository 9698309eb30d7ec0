package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// heldToken is the token a binding holds, persisted in its refresh-state Secret. The state
// Secret is written before the target Secret, so that a rotated refresh token is never lost
// and a deleted or edited target Secret can be restored without calling anyone.
type heldToken struct {
	AccessToken       string
	AccessTokenSecret string
	RefreshToken      string
	// RefreshTokenDead: the IdP answered invalid_grant for RefreshToken; it is never sent again.
	RefreshTokenDead bool
	// Auth0RefreshHash is the SHA-256 of Auth0's copy of the refresh token this lineage came
	// from. A different copy in Auth0 means the user logged in again, and Auth0's copy wins.
	Auth0RefreshHash string

	Expiry      expiry.Result
	RenewAt     time.Time // when to renew, whole seconds
	ObtainedAt  time.Time // when the access token was obtained (last renewal)
	LastRefresh time.Time // last successful refresh at the IdP

	// Source identifies the spec (tenant, user or connection) the token was read for.
	Source   string
	Identity authv1alpha1.IdentityStatus
}

// Keys of the refresh-state Secret. Internal to the operator; not a contract for pods.
const (
	stateAccessToken       = "access_token"
	stateAccessTokenSecret = "access_token_secret"
	stateRefreshToken      = "refresh_token"
	stateRefreshTokenDead  = "refresh_token_dead"
	stateAuth0RefreshHash  = "auth0_refresh_token_sha256"
	stateExpiresAt         = "expires_at"
	stateIssuedAt          = "issued_at"
	stateExpirySource      = "expiry_source"
	stateRenewAt           = "renew_at"
	stateObtainedAt        = "obtained_at"
	stateLastRefresh       = "last_refresh_at"
	stateSource            = "source"
	stateProvider          = "provider"
	stateConnection        = "connection"
	stateIdentityUserID    = "identity_user_id"
)

func hashToken(t string) string {
	if t == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

func formatTime(t time.Time) []byte {
	if t.IsZero() {
		return nil
	}
	return []byte(t.UTC().Format(time.RFC3339))
}

func parseTime(b []byte) time.Time {
	t, err := time.Parse(time.RFC3339, string(b))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// stateData serialises a held token into the refresh-state Secret's data.
func (h *heldToken) stateData() map[string][]byte {
	d := map[string][]byte{
		stateAccessToken:      []byte(h.AccessToken),
		stateExpirySource:     []byte(h.Expiry.Source),
		stateSource:           []byte(h.Source),
		stateProvider:         []byte(h.Identity.Provider),
		stateConnection:       []byte(h.Identity.Connection),
		stateIdentityUserID:   []byte(h.Identity.UserID),
		stateRefreshTokenDead: []byte(strconv.FormatBool(h.RefreshTokenDead)),
	}
	put := func(k string, v []byte) {
		if len(v) > 0 {
			d[k] = v
		}
	}
	put(stateAccessTokenSecret, []byte(h.AccessTokenSecret))
	put(stateRefreshToken, []byte(h.RefreshToken))
	put(stateAuth0RefreshHash, []byte(h.Auth0RefreshHash))
	put(stateExpiresAt, formatTime(h.Expiry.ExpiresAt))
	put(stateIssuedAt, formatTime(h.Expiry.IssuedAt))
	put(stateRenewAt, formatTime(h.RenewAt))
	put(stateObtainedAt, formatTime(h.ObtainedAt))
	put(stateLastRefresh, formatTime(h.LastRefresh))
	return d
}

// parseState reads a held token from a refresh-state Secret; nil when there is none.
func parseState(s *corev1.Secret) *heldToken {
	if s == nil || len(s.Data[stateAccessToken]) == 0 {
		return nil
	}
	d := s.Data
	dead, _ := strconv.ParseBool(string(d[stateRefreshTokenDead]))
	return &heldToken{
		AccessToken:       string(d[stateAccessToken]),
		AccessTokenSecret: string(d[stateAccessTokenSecret]),
		RefreshToken:      string(d[stateRefreshToken]),
		RefreshTokenDead:  dead,
		Auth0RefreshHash:  string(d[stateAuth0RefreshHash]),
		Expiry: expiry.Result{
			ExpiresAt: parseTime(d[stateExpiresAt]),
			IssuedAt:  parseTime(d[stateIssuedAt]),
			Source:    authv1alpha1.ExpirySource(d[stateExpirySource]),
		},
		RenewAt:     parseTime(d[stateRenewAt]),
		ObtainedAt:  parseTime(d[stateObtainedAt]),
		LastRefresh: parseTime(d[stateLastRefresh]),
		Source:      string(d[stateSource]),
		Identity: authv1alpha1.IdentityStatus{
			Provider:   string(d[stateProvider]),
			Connection: string(d[stateConnection]),
			UserID:     string(d[stateIdentityUserID]),
		},
	}
}

// canRefresh tells whether the held refresh token may be sent to the IdP.
func (h *heldToken) canRefresh() bool {
	return h != nil && h.RefreshToken != "" && !h.RefreshTokenDead
}

// validAt tells whether the access token is usable at now; an unknown expiry counts as valid.
func (h *heldToken) validAt(now time.Time) bool {
	return h != nil && (h.Expiry.ExpiresAt.IsZero() || now.Before(h.Expiry.ExpiresAt))
}
