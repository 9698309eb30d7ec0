package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

// fetch reads the token of the binding's source from Auth0.
func (r *BindingReconciler) fetch(ctx context.Context, in *bindingInput, notBefore time.Time) (*binding.Token, *binding.Failure) {
	b := in.Binding
	tok := &binding.Token{Source: in.Source}
	ev := expiry.Evidence{ObtainedAt: in.Now}
	switch {
	case binding.UsesTokenVault(b):
		t, f := r.exchange(ctx, in)
		if f != nil {
			return nil, f
		}
		tok.AccessToken = t.AccessToken
		tok.Identity = authv1alpha1.IdentityStatus{Connection: b.Spec.User.Connection}
		ev.Auth0Expiry = t.ExpiresAt
	case b.Spec.User != nil:
		user, err := r.Tenants.GetUser(ctx, in.tenantKey, b.Spec.User.ID, in.Now, notBefore)
		if err != nil {
			return nil, r.managementFailure(in, err, authv1alpha1.ReasonUserNotFound, "reading user %q", b.Spec.User.ID)
		}
		// The lineage's connection: spec.user.connection, or the primary identity's once resolved.
		id, f := selectIdentity(user, in.identity.Connection)
		if f != nil {
			return nil, f
		}
		if id.AccessToken == "" {
			if f := r.tokenVaultEnabled(ctx, in, id.Connection); f != nil {
				return nil, f
			}
			return nil, binding.Terminal(authv1alpha1.ReasonNoAccessToken, binding.FallbackInterval(b),
				"Auth0 holds no access token for user %q's %s identity; the user must log in through that connection (and the M2M app needs read:user_idp_tokens)", user.UserID, id.Connection)
		}
		tok.AccessToken, tok.AccessTokenSecret, tok.RefreshToken = id.AccessToken, id.AccessTokenSecret, id.RefreshToken
		tok.Identity = authv1alpha1.IdentityStatus{Provider: id.Provider, Connection: id.Connection, UserID: id.UserID}
		if user.LastLogin != nil {
			ev.LastLogin = *user.LastLogin
		}
		ev.IdentityExpiresIn = time.Duration(id.ExpiresIn) * time.Second
	case b.Spec.Connection != nil:
		conn, err := in.api.GetConnection(ctx, b.Spec.Connection.ID)
		if err != nil {
			return nil, r.managementFailure(in, err, authv1alpha1.ReasonConnectionNotFound, "reading connection %q", b.Spec.Connection.ID)
		}
		if conn.Options.AdminAccessToken == "" {
			return nil, binding.Terminal(authv1alpha1.ReasonNoAccessToken, binding.FallbackInterval(b),
				"Connection %q holds no admin access token; complete its admin consent flow (and the M2M app needs read:connections_options)", conn.Name)
		}
		tok.AccessToken, tok.RefreshToken = conn.Options.AdminAccessToken, conn.Options.AdminRefreshToken
		tok.Identity = authv1alpha1.IdentityStatus{Provider: conn.Strategy, Connection: conn.Name}
		if exp := conn.Options.AdminAccessTokenExpiresAt; exp != nil {
			ev.Auth0Expiry = *exp
		}
		if ep, err := idp.EndpointForConnection(conn); err == nil {
			r.rememberEndpoint(ctx, in, conn.Name, ep)
		}
	}
	tok.Auth0RefreshHash = binding.HashToken(tok.RefreshToken)
	ev.JWTExpiry, ev.JWTIssuedAt, _ = expiry.JWTExpiry(tok.AccessToken)
	tok.Expiry = expiry.Determine(ev)
	tok.ObtainedAt = in.Now
	return tok, nil
}

// selectIdentity picks the identity linked through connection, or the user's primary identity.
func selectIdentity(u *auth0.User, connection string) (*auth0.Identity, *binding.Failure) {
	var names []string
	for i := range u.Identities {
		id := &u.Identities[i]
		if connection == "" && id.Provider+"|"+id.UserID == u.UserID {
			return id, nil
		}
		if connection != "" && id.Connection == connection {
			return id, nil
		}
		names = append(names, id.Connection)
	}
	if connection == "" && len(u.Identities) > 0 {
		return &u.Identities[0], nil
	}
	return nil, binding.Terminal(authv1alpha1.ReasonIdentityNotFound, 0,
		"User %q has no identity linked through connection %q (linked: %s)", u.UserID, connection, strings.Join(names, ", "))
}

// managementFailure turns a Management API error into a failure: 404 is terminal with the
// given reason, 401/403 are a tenant problem, 429 and 5xx back off.
func (r *BindingReconciler) managementFailure(in *bindingInput, err error, notFound, format string, args ...any) *binding.Failure {
	what := fmt.Sprintf(format, args...)
	switch {
	case auth0.IsNotFound(err):
		return binding.Terminal(notFound, 0, "Auth0 says %s failed: %v", what, err)
	case auth0.IsUnauthorized(err) || auth0.IsForbidden(err):
		return binding.Transient(authv1alpha1.ReasonTenantNotReady, "%s %s was refused %s: %v", in.tenantKey.Kind, in.tenantKey.Name, what, err)
	}
	f := binding.Transient(authv1alpha1.ReasonManagementAPIError, "The Auth0 Management API failed %s: %v", what, err)
	if d, ok := auth0.IsRateLimited(err); ok {
		f.NotBefore = d
	}
	return f
}

func (r *BindingReconciler) tenantNotReady(in *bindingInput) *binding.Failure {
	msg := "it has not authenticated yet"
	if in.tenant != nil {
		if c := meta.FindStatusCondition(in.tenant.TenantStatus().Conditions, authv1alpha1.ConditionReady); c != nil && c.Message != "" {
			msg = c.Message
		}
	}
	return binding.Transient(authv1alpha1.ReasonTenantNotReady, "%s %s is not ready: %s", in.tenantKey.Kind, in.tenantKey.Name, msg)
}
