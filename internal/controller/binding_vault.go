package controller

import (
	"context"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/tokenvault"
)

// vaultRetry spaces the exchanges that ask Token Vault for a token it has not renewed yet:
// Auth0 renews a vaulted token only once it has expired.
const vaultRetry = 2 * time.Second

func usesTokenVault(b *authv1alpha1.IdPTokenBinding) bool {
	return b.Spec.User != nil && b.Spec.User.Source == authv1alpha1.TokenSourceTokenVault
}

// exchange gets the user's IdP access token from Auth0 Token Vault (Privileged Worker token
// exchange). No refresh token is ever held: Auth0 refreshes the vaulted token itself.
func (r *BindingReconciler) exchange(ctx context.Context, in *bindingInput) (*tokenvault.Token, *failure) {
	b := in.binding
	v := r.Tenants.Vault(in.tenantKey)
	if v == nil {
		return nil, terminal(authv1alpha1.ReasonTenantNotReady, time.Minute,
			"%s %s has no usable spec.tokenVault (see its %s condition); spec.user.source TokenVault needs one",
			in.tenantKey.Kind, in.tenantKey.Name, authv1alpha1.ConditionTokenVaultReady)
	}
	t, err := v.Exchange(ctx, b.Spec.User.ID, b.Spec.User.Connection, "idptoken-operator "+b.Namespace+"/"+b.Name)
	if err == nil {
		r.Tenants.SetVaultRefusal(in.tenantKey, "")
		return t, nil
	}
	switch tokenvault.KindOf(err) {
	case tokenvault.IdentityNotFound:
		return nil, terminal(authv1alpha1.ReasonIdentityNotFound, fallbackInterval(b),
			"Auth0 Token Vault has no token for user %q through connection %q (the user must connect the account, or the subject token was refused): %v",
			b.Spec.User.ID, b.Spec.User.Connection, err)
	case tokenvault.NotAuthorized, tokenvault.ClientAuthFailed:
		r.Tenants.SetVaultRefusal(in.tenantKey, "Auth0 refused the Token Vault client: "+err.Error())
		return nil, transient(authv1alpha1.ReasonTenantNotReady, "%s %s: Auth0 refused its Token Vault client: %v", in.tenantKey.Kind, in.tenantKey.Name, err)
	}
	f := transient(authv1alpha1.ReasonManagementAPIError, "Auth0 Token Vault's token exchange failed: %v", err)
	if d, ok := tokenvault.RetryAfter(err); ok {
		f.retryAfter = d
	}
	return nil, f
}

// vaultNothingNewer schedules the next exchange when Token Vault returned the token already
// held: just after it expires, when Auth0 renews it; once expired, every vaultRetry.
func (r *BindingReconciler) vaultNothingNewer(in *bindingInput, held *heldToken) (*heldToken, *failure) {
	next := *held
	exp := held.Expiry.ExpiresAt
	if held.validAt(in.now) {
		at := in.now.Add(vaultRetry)
		if !exp.IsZero() && exp.Add(time.Second).After(at) {
			at = exp.Add(time.Second)
		}
		next.RenewAt = at.Truncate(time.Second)
		return &next, nil
	}
	next.RenewAt = in.now.Add(vaultRetry).Truncate(time.Second)
	return &next, terminal(authv1alpha1.ReasonTokenExpired, vaultRetry,
		"The token expired at %s and Auth0 Token Vault has not renewed it yet (it renews a token only once it has expired); asking again every %s",
		exp.Format(time.RFC3339), vaultRetry)
}

// tokenVaultEnabled says, for an identity without a token in identities[], whether its
// connection keeps its tokens in Token Vault, and what to set then.
func (r *BindingReconciler) tokenVaultEnabled(ctx context.Context, in *bindingInput, connection string) *failure {
	if in.api == nil {
		return nil
	}
	c, err := in.api.GetConnectionByName(ctx, connection)
	if err != nil || !c.TokenVault {
		// Not knowing is no reason to fail differently from NoAccessToken.
		return nil
	}
	return terminal(authv1alpha1.ReasonTokenVaultEnabled, fallbackInterval(in.binding),
		"Connection %q keeps its tokens in Auth0 Token Vault, so identities[] holds none: set spec.user.source: TokenVault (and give tenant %s a spec.tokenVault)",
		connection, in.tenantKey.Name)
}

// observeVaultGap records how long a Secret held an expired Token Vault token: from its expiry
// to now, when its successor is written.
func (r *BindingReconciler) observeVaultGap(expired, now time.Time) {
	if r.OnVaultGap != nil && now.After(expired) {
		r.OnVaultGap(expired, now)
	}
}
