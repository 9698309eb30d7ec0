package controller

import (
	"context"
	"fmt"
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
	tok := &binding.Token{Lineage: in.Lineage}
	ev := expiry.Evidence{ObtainedAt: in.Now}
	switch {
	case binding.UsesTokenVault(b):
		t, f := r.exchange(ctx, in)
		if f != nil {
			return nil, f
		}
		tok.AccessToken, tok.Scope = t.AccessToken, t.Scope
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
			return nil, binding.NoUserAccessToken(b, user.UserID, id.Connection)
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
			return nil, binding.NoAdminAccessToken(b, conn.Name)
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
	return nil, binding.IdentityNotLinked(u.UserID, connection, names)
}

// managementFailure is the failure of a Management API request (binding.ManagementFailure).
func (r *BindingReconciler) managementFailure(in *bindingInput, err error, notFound, format string, args ...any) *binding.Failure {
	return binding.ManagementFailure(in.Tenant, outsideError(err), notFound, fmt.Sprintf(format, args...))
}

// outsideError classifies an Auth0 client error for binding.ManagementFailure.
func outsideError(err error) binding.OutsideError {
	e := binding.OutsideError{Text: err.Error()}
	switch {
	case auth0.IsNotFound(err):
		e.Kind = binding.ErrorNotFound
	case auth0.IsUnauthorized(err) || auth0.IsForbidden(err):
		e.Kind = binding.ErrorRefused
	}
	if d, ok := auth0.IsRateLimited(err); ok {
		e.RetryAfter = d
	}
	return e
}

func (r *BindingReconciler) tenantNotReady(in *bindingInput) *binding.Failure {
	msg := ""
	if in.tenantObject != nil {
		if c := meta.FindStatusCondition(in.tenantObject.TenantStatus().Conditions, authv1alpha1.ConditionReady); c != nil {
			msg = c.Message
		}
	}
	return binding.TenantNotReady(in.Tenant, msg)
}
