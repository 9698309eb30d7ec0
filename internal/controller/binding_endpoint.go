package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

// endpoint resolves the IdP token endpoint and OAuth client. The connection's own client is
// only ever sent to the connection's own endpoint: spec.refresh.tokenURL comes with the client
// of spec.refresh.clientCredentialsSecretRef, never the connection's (Precheck enforces that the
// tenant allows overrides at all).
func (r *BindingReconciler) endpoint(ctx context.Context, in *bindingInput, held *binding.Token) (ep idp.Endpoint, unsupported string, fail *binding.Failure) {
	source, fail := binding.ChooseEndpoint(in.Binding, in.Tenant, in.override != nil)
	switch source {
	case binding.EndpointRefused:
		return idp.Endpoint{}, "", fail
	case binding.EndpointOverride:
		return idp.Endpoint{TokenURL: in.Binding.Spec.Refresh.TokenURL, ClientID: in.override.id, ClientSecret: in.override.secret, Provider: held.Identity.Provider}, "", nil
	}
	ep, unsupported, f := r.connectionEndpoint(ctx, in, held)
	if f != nil || unsupported != "" {
		return ep, unsupported, f
	}
	if source == binding.EndpointConnectionWithOverrideClient {
		ep.ClientID, ep.ClientSecret = in.override.id, in.override.secret
	}
	return ep, "", nil
}

// connectionEndpoint is the token endpoint and client of the identity's Auth0 connection: the
// copy in memory, else the connection read from Auth0, else (Auth0 unreachable after a
// restart) the endpoint kept with the identity's state and the client kept in the operator's
// namespace, so that an Auth0 outage does not stop refreshes. unsupported, when not empty, says
// why the operator cannot refresh through the connection at all (binding.Token.RefreshUnsupported).
func (r *BindingReconciler) connectionEndpoint(ctx context.Context, in *bindingInput, held *binding.Token) (ep idp.Endpoint, unsupported string, fail *binding.Failure) {
	conn := held.Identity.Connection
	if ep, ok := r.Tenants.Endpoint(in.tenantKey, conn); ok {
		return ep, "", nil
	}
	if why := r.Tenants.Unsupported(in.tenantKey, conn, in.Now); why != "" {
		return idp.Endpoint{}, why, nil
	}
	if r.Tenants.Ready(in.tenantKey) {
		var c *auth0.Connection
		var err error
		if b := in.Binding; b.Spec.Connection != nil {
			c, err = in.api.GetConnection(ctx, b.Spec.Connection.ID)
		} else {
			c, err = in.api.GetConnectionByName(ctx, conn)
		}
		if err != nil {
			fail = r.managementFailure(in, err, authv1alpha1.ReasonRefreshFailed, "reading connection %q", conn)
			if auth0.IsNotFound(err) {
				return idp.Endpoint{}, "", fail // the connection is gone: its client is no longer to be used
			}
		} else {
			ep, err := r.Tenants.ResolveEndpoint(ctx, in.tenantKey, c)
			switch unsupported, transient := endpointVerdict(err); {
			case err == nil:
				r.rememberEndpoint(ctx, in, conn, ep)
				return ep, "", nil
			case unsupported:
				r.Tenants.SetUnsupported(in.tenantKey, conn, err.Error(), in.Now)
				return idp.Endpoint{}, err.Error(), nil
			case transient:
				fail = binding.RefreshError(err.Error()) // the discovery document, for now: the kept endpoint serves
			default:
				return ep, "", binding.NoRefreshEndpoint(in.Binding, conn, err.Error())
			}
		}
	} else {
		fail = r.tenantNotReady(in)
	}
	if ep, ok := r.keptEndpoint(ctx, in, held); ok {
		return ep, "", nil
	}
	return idp.Endpoint{}, "", fail
}

// Role of the Secrets that keep a connection's IdP client for Auth0 outages.
const roleIdPClient = "idp-client"

// idpClientName names the Secret, in the operator's namespace, that keeps the IdP client of a
// tenant's connection.
func idpClientName(tenant TenantKey, connection string) string {
	sum := sha256.Sum256([]byte(tenant.String() + "\x00" + connection))
	return "idptoken-idp-client-" + hex.EncodeToString(sum[:8])
}

// Keys of an IdP client Secret.
const (
	idpClientTokenURL = "token_url"
	idpClientID       = "client_id"
	idpClientSecret   = "client_secret"
)

// rememberEndpoint keeps a connection's endpoint in memory and, when the operator's namespace
// is known, its client in a Secret there (never in a team's namespace), written only when it
// changed. Failing to keep it is logged, not fatal: it only matters in a later Auth0 outage.
func (r *BindingReconciler) rememberEndpoint(ctx context.Context, in *bindingInput, conn string, ep idp.Endpoint) {
	r.Tenants.SetEndpoint(in.tenantKey, conn, ep)
	ns := r.ClusterResourceNamespace
	if ns == "" {
		return
	}
	data := map[string][]byte{idpClientTokenURL: []byte(ep.TokenURL), idpClientID: []byte(ep.ClientID), idpClientSecret: []byte(ep.ClientSecret)}
	s := &corev1.Secret{}
	key := types.NamespacedName{Namespace: ns, Name: idpClientName(in.tenantKey, conn)}
	err := r.Client.Get(ctx, key, s)
	if err == nil && binding.SameData(s.Data, data) {
		return
	}
	want := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: ns,
			Labels: map[string]string{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelRole: roleIdPClient},
			Annotations: map[string]string{
				authv1alpha1.AnnotationTenant: in.tenantKey.String(), authv1alpha1.AnnotationConnection: conn,
			}},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if client.IgnoreNotFound(err) == nil && err != nil {
		err = r.Client.Create(ctx, want, client.FieldOwner(FieldManager))
	} else if err == nil {
		want.ResourceVersion = s.ResourceVersion
		err = r.Client.Update(ctx, want, client.FieldOwner(FieldManager))
	}
	if err != nil {
		logf.FromContext(ctx).Info("Could not keep the connection's IdP client for Auth0 outages", "secret", key.String(), "error", err.Error())
	}
}

// keptEndpoint is the endpoint kept with the identity's state, with the client secret kept in the
// operator's namespace. The secret is only used for the token URL and client ID it was kept
// with: the state Secret lives in the tenant's namespace and is not trusted to redirect it.
func (r *BindingReconciler) keptEndpoint(ctx context.Context, in *bindingInput, held *binding.Token) (idp.Endpoint, bool) {
	kept := held.Endpoint
	ns := r.ClusterResourceNamespace
	if kept.TokenURL == "" || ns == "" || hasOverride(in.Binding) {
		return idp.Endpoint{}, false
	}
	s := &corev1.Secret{}
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: idpClientName(in.tenantKey, held.Identity.Connection)}, s); err != nil ||
		s.Labels[authv1alpha1.LabelRole] != roleIdPClient ||
		!binding.KeptClientUsable(in.Binding, kept, string(s.Data[idpClientTokenURL]), string(s.Data[idpClientID])) {
		return idp.Endpoint{}, false
	}
	return idp.Endpoint{TokenURL: kept.TokenURL, ClientID: kept.ClientID, ClientSecret: string(s.Data[idpClientSecret]),
		AuthStyle: kept.AuthStyle, Provider: kept.Provider}, true
}

// overrideClient reads spec.refresh.clientCredentialsSecretRef, which may only name a Secret
// labelled auth.idptoken.dev/oauth-client: "true": its labels are checked on the Secret's
// metadata before its data is read, so no other Secret's values are ever read or sent.
func (r *BindingReconciler) overrideClient(ctx context.Context, in *bindingInput) (*oauthClient, *binding.Failure) {
	b := in.Binding
	ref := b.Spec.Refresh.ClientCredentialsSecretRef
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: ref.Name}, m); {
	case apierrors.IsNotFound(err):
		return nil, binding.OverrideClientNotFound(b)
	case err != nil:
		return nil, binding.OverrideClientUnreadable(err.Error())
	case m.Labels[authv1alpha1.LabelOAuthClient] != "true":
		return nil, binding.OverrideClientNotLabelled(b)
	}
	id, secret, err := readClientCredentials(ctx, r.APIReader, b.Namespace, ref)
	if err != nil {
		return nil, binding.OverrideClientInvalid(err.Error())
	}
	return &oauthClient{id: id, secret: secret}, nil
}
