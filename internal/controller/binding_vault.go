package controller

import (
	"context"

	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/tokenvault"
)

// exchange gets the user's IdP access token from Auth0 Token Vault (Privileged Worker token
// exchange). No refresh token is ever held: Auth0 refreshes the vaulted token itself.
func (r *BindingReconciler) exchange(ctx context.Context, in *bindingInput) (*tokenvault.Token, *binding.Failure) {
	b := in.Binding
	v := r.Tenants.Vault(in.tenantKey)
	if v == nil {
		return nil, binding.NoTokenVault(in.Tenant)
	}
	t, err := v.Exchange(ctx, b.Spec.User.ID, b.Spec.User.Connection, "idptoken-operator "+b.Namespace+"/"+b.Name)
	if err == nil {
		r.Tenants.SetVaultRefusal(in.tenantKey, "")
		return t, nil
	}
	e := binding.OutsideError{Text: err.Error()}
	e.RetryAfter, _ = tokenvault.RetryAfter(err)
	kind := binding.VaultOther
	switch tokenvault.KindOf(err) {
	case tokenvault.IdentityNotFound:
		kind = binding.VaultNoToken
	case tokenvault.NotAuthorized, tokenvault.ClientAuthFailed:
		kind = binding.VaultClientRefused
		r.Tenants.SetVaultRefusal(in.tenantKey, "Auth0 refused the Token Vault client: "+err.Error())
	}
	return nil, binding.VaultExchangeFailure(b, in.Tenant, kind, e)
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
	return binding.TokenVaultEnabled(in.Binding, in.Tenant, connection)
}
