package controller

import (
	"context"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/tokenvault"
)

// exchange gets the user's IdP access token from Auth0 Token Vault (Privileged Worker token
// exchange). No refresh token is ever held: Auth0 refreshes the vaulted token itself.
func (r *BindingReconciler) exchange(ctx context.Context, in *bindingInput) (*tokenvault.Token, *binding.Failure) {
	b := in.Binding
	v := r.Tenants.Vault(in.tenantKey)
	if v == nil {
		return nil, binding.Terminal(authv1alpha1.ReasonTenantNotReady, time.Minute,
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
		return nil, binding.Terminal(authv1alpha1.ReasonIdentityNotFound, binding.FallbackInterval(b),
			"Auth0 Token Vault has no token for user %q through connection %q (the user must connect the account, or the subject token was refused): %v",
			b.Spec.User.ID, b.Spec.User.Connection, err)
	case tokenvault.NotAuthorized, tokenvault.ClientAuthFailed:
		r.Tenants.SetVaultRefusal(in.tenantKey, "Auth0 refused the Token Vault client: "+err.Error())
		return nil, binding.Transient(authv1alpha1.ReasonTenantNotReady, "%s %s: Auth0 refused its Token Vault client: %v", in.tenantKey.Kind, in.tenantKey.Name, err)
	}
	f := binding.Transient(authv1alpha1.ReasonManagementAPIError, "Auth0 Token Vault's token exchange failed: %v", err)
	if d, ok := tokenvault.RetryAfter(err); ok {
		f.NotBefore = d
	}
	return nil, f
}

// tokenVaultEnabled says, for an identity without a token in identities[], whether its
// connection keeps its tokens in Token Vault, and what to set then.
func (r *BindingReconciler) tokenVaultEnabled(ctx context.Context, in *bindingInput, connection string) *binding.Failure {
	if in.api == nil {
		return nil
	}
	c, err := in.api.GetConnectionByName(ctx, connection)
	if err != nil || !c.TokenVault {
		// Not knowing is no reason to fail differently from NoAccessToken.
		return nil
	}
	return binding.Terminal(authv1alpha1.ReasonTokenVaultEnabled, binding.FallbackInterval(in.Binding),
		"Connection %q keeps its tokens in Auth0 Token Vault, so identities[] holds none: set spec.user.source: TokenVault (and give tenant %s a spec.tokenVault)",
		connection, in.tenantKey.Name)
}
