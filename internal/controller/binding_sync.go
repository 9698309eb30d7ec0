package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	metav1ac "k8s.io/client-go/applyconfigurations/meta/v1"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/internal/idp"
	"github.com/idptoken/idptoken-operator/internal/safetext"
)

// failure is why a pass could not get the token it wanted.
type failure struct {
	reason  string
	message string
	// terminal failures wait for a change (spec, tenant, Secret) instead of backing off;
	// recheck, when set, looks again after that long anyway.
	terminal   bool
	recheck    time.Duration
	retryAfter time.Duration // the server asked to wait this long (429)
}

func terminal(reason string, recheck time.Duration, format string, args ...any) *failure {
	return &failure{reason: reason, terminal: true, recheck: recheck, message: fmt.Sprintf(format, args...)}
}

func transient(reason string, format string, args ...any) *failure {
	return &failure{reason: reason, message: fmt.Sprintf(format, args...)}
}

// outcome is what a pass did.
type outcome struct {
	wait      time.Duration // nothing decided: look again after this long, reporting nothing
	decision  decision
	held      *heldToken // the token held after the pass
	wrote     bool       // the target Secret's content was written
	refreshed bool       // a refresh at the IdP succeeded
	failure   *failure
	err       error // API-server errors: returned to controller-runtime
}

// sync decides and acts. It never writes a token it does not hold as valid, and writes the
// refresh-state Secret before the target Secret.
func (r *BindingReconciler) sync(ctx context.Context, in *bindingInput) outcome {
	b := in.binding
	if f := r.precheck(in); f != nil {
		out := outcome{failure: f}
		if f.reason == authv1alpha1.ReasonNotPermitted {
			// A binding that lost its permission loses its Secret, by its deletion policy.
			out.err = r.dropOldTargets(ctx, in, true)
		} else {
			out.held = in.held
		}
		return out
	}
	if in.api == nil && tenantReady(in.tenant) {
		// Just after a restart: the tenant controller has not rebuilt the tenant's client yet.
		return outcome{held: in.held, wait: 2 * time.Second}
	}

	d := decide(in)
	if d.action == actionRefresh || d.action == actionRead {
		// One refresh per identity at a time, always from the newest state on the API server.
		unlock := r.lineage.lock(in.identity)
		defer unlock()
		changed, err := r.freshState(ctx, in)
		if err != nil {
			return outcome{held: in.held, err: err}
		}
		if changed {
			d = decide(in)
		}
	}
	out := outcome{decision: d, held: in.held}
	var next *heldToken
	if out.decision.action == actionNone || out.decision.action == actionWrite {
		next = r.reschedule(in)
	}
	switch out.decision.action {
	case actionRefresh:
		next, out.failure = r.refresh(ctx, in, in.held, true)
		out.refreshed = out.failure == nil
	case actionRead:
		next, out.failure = r.readAuth0(ctx, in, in.held)
		out.refreshed = out.failure == nil && next != nil && next.LastRefresh.Equal(in.now)
	}
	if next == nil && in.legacy != nil && in.held != nil {
		migrated := *in.held
		next = &migrated
	}

	if next != nil {
		held, err := r.applyState(ctx, in, next)
		if err != nil {
			out.err = err
			return out
		}
		out.held = held
	}
	if err := r.dropLegacyState(ctx, in); err != nil {
		out.err = err
		return out
	}
	if b.Generation != b.Status.ObservedGeneration {
		if err := r.dropOldTargets(ctx, in, false); err != nil {
			out.err = err
			return out
		}
	}
	if h := out.held; h != nil && h.validAt(in.now) &&
		(out.decision.action == actionWrite || in.target == nil || !targetUpToDate(b, h, in.target)) {
		f, err := r.applyTarget(ctx, in, h)
		if err != nil {
			out.err = err
			return out
		}
		if f != nil {
			out.failure = f
			return out
		}
		out.wrote = true
	}
	return out
}

// precheck refuses, before any request to Auth0 or an IdP, what the binding may not do or
// cannot do until someone changes something.
func (r *BindingReconciler) precheck(in *bindingInput) *failure {
	b := in.binding
	switch {
	case in.tenant == nil && in.tenantKey.Kind == authv1alpha1.TenantKindCluster:
		return terminal(authv1alpha1.ReasonTenantNotFound, 0, "ClusterAuth0Tenant %q not found", in.tenantKey.Name)
	case in.tenant == nil:
		return terminal(authv1alpha1.ReasonTenantNotFound, 0, "Auth0Tenant %q not found in namespace %s", in.tenantKey.Name, b.Namespace)
	case in.denied != "":
		return terminal(authv1alpha1.ReasonNotPermitted, 0, "%s", in.denied)
	case r.homeNamespace(in) == "":
		return terminal(authv1alpha1.ReasonTenantNotReady, time.Minute,
			"ClusterAuth0Tenant %s cannot be used: the operator's namespace is not known; start the manager with --cluster-resource-namespace", in.tenantKey.Name)
	case in.conflict != "":
		return terminal(authv1alpha1.ReasonSecretConflict, time.Minute,
			"Secret %q exists and is not managed by this binding; delete it or choose another spec.secret.name", in.conflict)
	}
	spec := b.Spec.Refresh
	if spec.TokenURL == "" && spec.ClientCredentialsSecretRef == nil {
		return nil
	}
	if in.tenant.TenantSpec().RefreshOverride != authv1alpha1.RefreshOverrideAllowed {
		return terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0,
			"%s %s does not allow spec.refresh.tokenURL or spec.refresh.clientCredentialsSecretRef (its spec.refreshOverride is not Allowed); remove them to refresh through the connection's own token endpoint",
			in.tenantKey.Kind, in.tenantKey.Name)
	}
	if spec.TokenURL != "" && spec.ClientCredentialsSecretRef == nil {
		return terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0,
			"spec.refresh.tokenURL requires spec.refresh.clientCredentialsSecretRef: the connection's own OAuth client is only sent to the connection's own token endpoint")
	}
	return in.overrideRefused
}

// reschedule recomputes the renewal time of the held token when the binding's spec changed
// (a new renewBefore or fallbackInterval applies to the token already held), or nil.
func (r *BindingReconciler) reschedule(in *bindingInput) *heldToken {
	b, h := in.binding, in.held
	// Only after a first successful pass: a cache that lags behind that pass is not a spec change.
	if h == nil || b.Status.ObservedGeneration == 0 || b.Generation == b.Status.ObservedGeneration {
		return nil
	}
	next := *h
	// The 30 s spacing counts from the last refresh at the IdP, as everywhere else.
	next.RenewAt = r.renewAt(in, &next, h.LastRefresh)
	if next.RenewAt.Equal(h.RenewAt) {
		return nil
	}
	return &next
}

// dropOldTargets deletes the Secrets this binding wrote under a previous spec.secret.name, or
// all of them when the binding lost its permission (those it owns; a retained one is released).
func (r *BindingReconciler) dropOldTargets(ctx context.Context, in *bindingInput, all bool) error {
	b := in.binding
	list := &corev1.SecretList{}
	if err := r.Client.List(ctx, list, client.InNamespace(b.Namespace),
		client.MatchingLabels{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelBinding: b.Name}); err != nil {
		return fmt.Errorf("listing the binding's secrets: %w", err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if s.Labels[authv1alpha1.LabelRole] == authv1alpha1.RoleRefreshState || (!all && s.Name == b.Spec.Secret.Name) {
			continue
		}
		if hasControllerRef(s, b) {
			if err := r.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting secret %q, no longer the binding's target: %w", s.Name, err)
			}
		} else if err := r.release(ctx, s); err != nil {
			return err
		}
		if all {
			r.Recorder.Eventf(b, nil, corev1.EventTypeWarning, "SecretReleased", "WriteSecret",
				"Secret %s was removed: the binding may no longer use its tenant", s.Name)
		} else {
			r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "SecretReleased", "WriteSecret",
				"Secret %s is no longer the binding's target (spec.secret.name is %s)", s.Name, b.Spec.Secret.Name)
		}
	}
	return nil
}

func tenantReady(t tenantObject) bool {
	if t == nil {
		return false
	}
	c := meta.FindStatusCondition(t.TenantStatus().Conditions, authv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == t.GetGeneration()
}

// refresh renews the held token at the IdP. On invalid_grant the refresh token is marked dead
// and, when fallback is set, Auth0 is re-read for a newer one.
func (r *BindingReconciler) refresh(ctx context.Context, in *bindingInput, held *heldToken, fallback bool) (*heldToken, *failure) {
	if in.api == nil {
		return nil, r.tenantNotReady(in)
	}
	ep, f := r.endpoint(ctx, in, held)
	if f != nil {
		return nil, f
	}
	refresher := &idp.Refresher{HTTPClient: in.api.HTTPClient(), Clock: r.Clock}
	// Once sent, a refresh is seen through even when the manager is shutting down: the IdP may
	// rotate the refresh token, and the new one must reach the state Secret. The manager waits
	// for running passes on shutdown (bounded by its graceful shutdown timeout and the pod's
	// termination grace period).
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	tok, err := refresher.Refresh(rctx, ep, held.RefreshToken)
	switch {
	case errors.Is(err, idp.ErrInvalidGrant):
		dead := *held
		dead.RefreshTokenDead = true
		if !fallback {
			return &dead, transient(authv1alpha1.ReasonRefreshFailed, "The identity provider rejected the refresh token: %v", err)
		}
		// Auth0 may hold a newer refresh token (the user logged in again): it is tried at once.
		next, f := r.readAuth0(ctx, in, &dead)
		if next == nil {
			next = &dead
		}
		return next, f
	case err != nil:
		if idp.IsInvalidClient(err) {
			r.Tenants.ForgetEndpoint(in.tenantKey, held.Identity.Connection)
		}
		return nil, transient(authv1alpha1.ReasonRefreshFailed, "Refreshing the token at the identity provider failed: %v", err)
	}

	next := *held
	next.AccessToken = tok.AccessToken
	next.AccessTokenSecret = ""
	if tok.RefreshToken != "" {
		next.RefreshToken = tok.RefreshToken
	}
	jwtExp, jwtIat, _ := idp.JWTExpiry(tok.AccessToken)
	next.Expiry = expiry.Determine(expiry.Evidence{IdPExpiresIn: tok.ExpiresIn, ObtainedAt: in.now, JWTExpiry: jwtExp, JWTIssuedAt: jwtIat})
	next.ObtainedAt, next.LastRefresh = in.now, in.now
	next.RenewAt = r.renewAt(in, &next, in.now)
	return &next, nil
}

// readAuth0 reads the token from Auth0 and adopts it: Auth0's refresh token wins when it is a
// new one, an expired access token is refreshed at once, and a token no newer than the one
// held is re-read later rather than in a loop.
func (r *BindingReconciler) readAuth0(ctx context.Context, in *bindingInput, held *heldToken) (*heldToken, *failure) {
	vault := usesTokenVault(in.binding)
	if !vault && (in.api == nil || !r.Tenants.Ready(in.tenantKey)) {
		return nil, r.tenantNotReady(in)
	}
	// Only a read made after the held token was obtained can have something newer.
	var notBefore time.Time
	switch {
	case held != nil && held.RefreshTokenDead:
		notBefore = in.now
	case held != nil && held.Source == sourceOf(in.binding):
		notBefore = held.ObtainedAt
	}
	read, f := r.fetch(ctx, in, notBefore)
	if f != nil {
		return nil, f
	}
	next, verdict := adopt(in.now, held, read)
	switch verdict {
	case adoptRefresh:
		// fallback=false: a second invalid_grant ends there rather than in a loop.
		return r.refresh(ctx, in, next, false)
	case adoptNothingNewer:
		if vault {
			return r.vaultNothingNewer(in, next)
		}
		if !next.validAt(in.now) {
			return next, terminal(authv1alpha1.ReasonTokenExpired, fallbackInterval(in.binding),
				"The token expired and neither the identity provider nor Auth0 has a fresh one; the user must log in again through connection %s", next.Identity.Connection)
		}
		// Nothing newer in Auth0 yet: look again halfway to expiry.
		next.RenewAt = halfwayToExpiry(in.now, next, fallbackInterval(in.binding))
		if next.RefreshTokenDead {
			// The Secret keeps a token that will not be renewed: say so now, not at expiry.
			return next, terminal(authv1alpha1.ReasonRefreshFailed, next.RenewAt.Sub(in.now),
				"The identity provider rejected the refresh token (invalid_grant) and Auth0 has no newer one; the token in Secret %s is not renewed past %s unless the user logs in again through connection %s",
				in.binding.Spec.Secret.Name, describeExpiry(next), next.Identity.Connection)
		}
	default:
		if vault && held != nil && !held.validAt(in.now) {
			r.observeVaultGap(held.Expiry.ExpiresAt, in.now)
		}
		next.ObtainedAt = in.now
		// Reading Auth0 renews nothing: the 30 s spacing counts from the last refresh at the IdP,
		// so a token that was already old when read is renewed on time.
		next.RenewAt = r.renewAt(in, next, next.LastRefresh)
	}
	return next, nil
}

// adoptVerdict says what adopt found.
type adoptVerdict int

const (
	adoptNew          adoptVerdict = iota // Auth0 has a token newer than the one held
	adoptRefresh                          // Auth0's access token has expired but a refresh token can renew it
	adoptNothingNewer                     // Auth0 has nothing newer than the token held
)

// adopt merges the token read from Auth0 with the token held. Pure, for table tests.
func adopt(now time.Time, held, fresh *heldToken) (*heldToken, adoptVerdict) {
	next := *fresh
	sameSource := held != nil && held.Source == fresh.Source
	// An equal hash proves the same lineage even across a spec edit that names the same identity
	// differently: a rotated refresh token must survive it.
	if held != nil && held.Auth0RefreshHash != "" && held.Auth0RefreshHash == fresh.Auth0RefreshHash {
		// Auth0's refresh token is the one this lineage started from: the held one is newer.
		next.RefreshToken, next.RefreshTokenDead, next.LastRefresh = held.RefreshToken, held.RefreshTokenDead, held.LastRefresh
	}
	if sameSource && held.validAt(now) && (held.AccessToken == fresh.AccessToken || laterExpiry(held, fresh)) {
		keep := *held
		keep.RefreshToken, keep.RefreshTokenDead, keep.Auth0RefreshHash = next.RefreshToken, next.RefreshTokenDead, next.Auth0RefreshHash
		return &keep, adoptNothingNewer
	}
	if !next.validAt(now) {
		if next.canRefresh() {
			return &next, adoptRefresh
		}
		if sameSource {
			keep := *held
			keep.RefreshToken, keep.RefreshTokenDead, keep.Auth0RefreshHash = next.RefreshToken, next.RefreshTokenDead, next.Auth0RefreshHash
			return &keep, adoptNothingNewer
		}
		return &next, adoptNothingNewer
	}
	return &next, adoptNew
}

func laterExpiry(a, b *heldToken) bool {
	return !a.Expiry.ExpiresAt.IsZero() && !b.Expiry.ExpiresAt.IsZero() && a.Expiry.ExpiresAt.After(b.Expiry.ExpiresAt)
}

// minRecheck spaces re-reads of Auth0 that found nothing newer.
const minRecheck = 5 * time.Second

// halfwayToExpiry is when to look again for a token Auth0 does not have yet: halfway to the
// expiry of the one held, so that reads thin out rather than loop, and still come before it expires.
func halfwayToExpiry(now time.Time, h *heldToken, fallback time.Duration) time.Time {
	wait := fallback
	if exp := h.Expiry.ExpiresAt; !exp.IsZero() {
		wait = exp.Sub(now) / 2
	}
	return now.Add(max(wait, minRecheck)).Truncate(time.Second)
}

// fetch reads the token of the binding's source from Auth0.
func (r *BindingReconciler) fetch(ctx context.Context, in *bindingInput, notBefore time.Time) (*heldToken, *failure) {
	b := in.binding
	tok := &heldToken{Source: sourceOf(b)}
	ev := expiry.Evidence{ObtainedAt: in.now}
	switch {
	case usesTokenVault(b):
		t, f := r.exchange(ctx, in)
		if f != nil {
			return nil, f
		}
		tok.AccessToken = t.AccessToken
		tok.Identity = authv1alpha1.IdentityStatus{Connection: b.Spec.User.Connection}
		ev.Auth0Expiry = t.ExpiresAt
	case b.Spec.User != nil:
		user, err := r.Tenants.GetUser(ctx, in.tenantKey, b.Spec.User.ID, in.now, notBefore)
		if err != nil {
			return nil, r.managementFailure(in, err, authv1alpha1.ReasonUserNotFound, "reading user %q", b.Spec.User.ID)
		}
		id, f := selectIdentity(user, b.Spec.User.Connection)
		if f != nil {
			return nil, f
		}
		if id.AccessToken == "" {
			if f := r.tokenVaultEnabled(ctx, in, id.Connection); f != nil {
				return nil, f
			}
			return nil, terminal(authv1alpha1.ReasonNoAccessToken, fallbackInterval(b),
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
			return nil, terminal(authv1alpha1.ReasonNoAccessToken, fallbackInterval(b),
				"Connection %q holds no admin access token; complete its admin consent flow (and the M2M app needs read:connections_options)", conn.Name)
		}
		tok.AccessToken, tok.RefreshToken = conn.Options.AdminAccessToken, conn.Options.AdminRefreshToken
		tok.Identity = authv1alpha1.IdentityStatus{Provider: conn.Strategy, Connection: conn.Name}
		if exp := conn.Options.AdminAccessTokenExpiresAt; exp != nil {
			ev.Auth0Expiry = *exp
		}
		if ep, err := idp.EndpointForConnection(conn); err == nil {
			r.Tenants.SetEndpoint(in.tenantKey, conn.Name, ep)
		}
	}
	tok.Auth0RefreshHash = hashToken(tok.RefreshToken)
	ev.JWTExpiry, ev.JWTIssuedAt, _ = idp.JWTExpiry(tok.AccessToken)
	tok.Expiry = expiry.Determine(ev)
	tok.ObtainedAt = in.now
	return tok, nil
}

// selectIdentity picks the identity linked through connection, or the user's primary identity.
func selectIdentity(u *auth0.User, connection string) (*auth0.Identity, *failure) {
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
	return nil, terminal(authv1alpha1.ReasonIdentityNotFound, 0,
		"User %q has no identity linked through connection %q (linked: %s)", u.UserID, connection, strings.Join(names, ", "))
}

// endpoint resolves the IdP token endpoint and OAuth client. The connection's own client is
// only ever sent to the connection's own endpoint: spec.refresh.tokenURL comes with the client
// of spec.refresh.clientCredentialsSecretRef, never the connection's (precheck enforces that the
// tenant allows overrides at all). The last good copy of a connection's endpoint is kept so
// that an Auth0 outage does not stop refreshes.
func (r *BindingReconciler) endpoint(ctx context.Context, in *bindingInput, held *heldToken) (idp.Endpoint, *failure) {
	spec := in.binding.Spec.Refresh
	if spec.TokenURL != "" {
		if spec.ClientCredentialsSecretRef == nil {
			return idp.Endpoint{}, terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0, "spec.refresh.tokenURL requires spec.refresh.clientCredentialsSecretRef")
		}
		if in.override == nil {
			return idp.Endpoint{}, terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0, "spec.refresh.clientCredentialsSecretRef could not be used")
		}
		return idp.Endpoint{TokenURL: spec.TokenURL, ClientID: in.override.id, ClientSecret: in.override.secret, Provider: held.Identity.Provider}, nil
	}
	ep, f := r.connectionEndpoint(ctx, in, held.Identity.Connection)
	if f != nil {
		return ep, f
	}
	if spec.ClientCredentialsSecretRef != nil {
		// Another client of the same IdP, at the connection's own endpoint.
		if in.override == nil {
			return idp.Endpoint{}, terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0, "spec.refresh.clientCredentialsSecretRef could not be used")
		}
		ep.ClientID, ep.ClientSecret = in.override.id, in.override.secret
	}
	return ep, nil
}

// connectionEndpoint is the token endpoint and client of the identity's Auth0 connection.
func (r *BindingReconciler) connectionEndpoint(ctx context.Context, in *bindingInput, conn string) (idp.Endpoint, *failure) {
	if ep, ok := r.Tenants.Endpoint(in.tenantKey, conn); ok {
		return ep, nil
	}
	if !r.Tenants.Ready(in.tenantKey) {
		return idp.Endpoint{}, r.tenantNotReady(in)
	}
	var c *auth0.Connection
	var err error
	if b := in.binding; b.Spec.Connection != nil {
		c, err = in.api.GetConnection(ctx, b.Spec.Connection.ID)
	} else {
		c, err = in.api.GetConnectionByName(ctx, conn)
	}
	if err != nil {
		return idp.Endpoint{}, r.managementFailure(in, err, authv1alpha1.ReasonRefreshFailed, "reading connection %q", conn)
	}
	ep, err := idp.EndpointForConnection(c)
	if err != nil {
		return ep, terminal(authv1alpha1.ReasonRefreshFailed, fallbackInterval(in.binding),
			"Cannot refresh through connection %q: %v", conn, err)
	}
	r.Tenants.SetEndpoint(in.tenantKey, conn, ep)
	return ep, nil
}

// overrideClient reads spec.refresh.clientCredentialsSecretRef, which may only name a Secret
// labelled auth.idptoken.dev/oauth-client: "true": its labels are checked on the Secret's
// metadata before its data is read, so no other Secret's values are ever read or sent.
func (r *BindingReconciler) overrideClient(ctx context.Context, in *bindingInput) (*oauthClient, *failure) {
	b := in.binding
	ref := b.Spec.Refresh.ClientCredentialsSecretRef
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	switch err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: b.Namespace, Name: ref.Name}, m); {
	case apierrors.IsNotFound(err):
		return nil, terminal(authv1alpha1.ReasonInvalidRefreshConfig, time.Minute,
			"spec.refresh.clientCredentialsSecretRef: Secret %q not found in namespace %s", ref.Name, b.Namespace)
	case err != nil:
		return nil, transient(authv1alpha1.ReasonRefreshFailed, "Reading spec.refresh.clientCredentialsSecretRef: %v", err)
	case m.Labels[authv1alpha1.LabelOAuthClient] != "true":
		return nil, terminal(authv1alpha1.ReasonInvalidRefreshConfig, time.Minute,
			"spec.refresh.clientCredentialsSecretRef: Secret %q is not labelled %s: \"true\"; only Secrets made to hold an OAuth client may be used", ref.Name, authv1alpha1.LabelOAuthClient)
	}
	id, secret, err := readClientCredentials(ctx, r.APIReader, b.Namespace, ref)
	if err != nil {
		return nil, terminal(authv1alpha1.ReasonInvalidRefreshConfig, time.Minute, "Reading spec.refresh.clientCredentialsSecretRef: %v", err)
	}
	return &oauthClient{id: id, secret: secret}, nil
}

// managementFailure turns a Management API error into a failure: 404 is terminal with the
// given reason, 401/403 are a tenant problem, 429 and 5xx back off.
func (r *BindingReconciler) managementFailure(in *bindingInput, err error, notFound, format string, args ...any) *failure {
	what := fmt.Sprintf(format, args...)
	switch {
	case auth0.IsNotFound(err):
		return terminal(notFound, 0, "Auth0 says %s failed: %v", what, err)
	case auth0.IsUnauthorized(err) || auth0.IsForbidden(err):
		return transient(authv1alpha1.ReasonTenantNotReady, "%s %s was refused %s: %v", in.tenantKey.Kind, in.tenantKey.Name, what, err)
	}
	f := transient(authv1alpha1.ReasonManagementAPIError, "The Auth0 Management API failed %s: %v", what, err)
	if d, ok := auth0.IsRateLimited(err); ok {
		f.retryAfter = d
	}
	return f
}

func (r *BindingReconciler) tenantNotReady(in *bindingInput) *failure {
	msg := "it has not authenticated yet"
	if in.tenant != nil {
		if c := meta.FindStatusCondition(in.tenant.TenantStatus().Conditions, authv1alpha1.ConditionReady); c != nil && c.Message != "" {
			msg = c.Message
		}
	}
	return transient(authv1alpha1.ReasonTenantNotReady, "%s %s is not ready: %s", in.tenantKey.Kind, in.tenantKey.Name, msg)
}

// renewAt schedules the lineage's next renewal with the policy of all its bindings.
func (r *BindingReconciler) renewAt(in *bindingInput, h *heldToken, lastRenewal time.Time) time.Time {
	return expiry.RenewAt(expiry.Schedule{
		Token: h.Expiry, RenewBefore: in.policy.renewBefore, FallbackInterval: in.policy.fallback,
		LastRenewal: lastRenewal, Jitter: r.jitter, Now: in.now,
	})
}

// lineagePolicy is the renewal policy of an identity's lineage: the earliest renewal and the
// most frequent re-read any of its bindings asks for.
type lineagePolicy struct {
	renewBefore time.Duration // 0: one third of the lifetime
	fallback    time.Duration
}

// policyOf combines the refresh policies of the bindings of one identity.
func policyOf(bindings []authv1alpha1.IdPTokenBinding) lineagePolicy {
	var p lineagePolicy
	for i := range bindings {
		b := &bindings[i]
		if rb := b.Spec.Refresh.RenewBefore; rb != nil && rb.Duration > p.renewBefore {
			p.renewBefore = rb.Duration
		}
		if fi := fallbackInterval(b); p.fallback == 0 || fi < p.fallback {
			p.fallback = fi
		}
	}
	return p
}

func fallbackInterval(b *authv1alpha1.IdPTokenBinding) time.Duration {
	if fi := b.Spec.Refresh.FallbackInterval; fi != nil && fi.Duration > 0 {
		return max(fi.Duration, expiry.MinFallbackInterval)
	}
	return time.Hour
}

// refreshTimeout bounds a refresh at an IdP, which a shutdown does not interrupt.
const refreshTimeout = 30 * time.Second

// stateWriteTimeout bounds the write of the refresh-state Secret.
const stateWriteTimeout = 15 * time.Second

// applyState persists the held token in the identity's refresh-state Secret when it changed, and
// returns the token the lineage holds afterwards. The write is optimistic: a conflict is re-read
// and resolved (a newer token written by someone else wins over ours only when it is newer),
// never dropped.
func (r *BindingReconciler) applyState(ctx context.Context, in *bindingInput, h *heldToken) (*heldToken, error) {
	// A rotated refresh token must not be lost to the end of the reconcile's deadline or to a
	// blip of the API server: this write has its own deadline and retries.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateWriteTimeout)
	defer cancel()
	current := in.state
	write := func() error {
		data := h.stateData()
		if current != nil && maps.EqualFunc(current.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
			return nil
		}
		s := r.stateSecret(in, current, data)
		var err error
		if current == nil {
			err = r.Client.Create(ctx, s, client.FieldOwner(FieldManager))
		} else {
			err = r.Client.Update(ctx, s, client.FieldOwner(FieldManager))
		}
		if err == nil {
			// Not recorded as an own write: its watch event fans the token out to the
			// identity's other bindings.
			current = s
		}
		return err
	}
	err := retry.OnError(retry.DefaultBackoff, func(err error) bool {
		if apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err) {
			fresh := &corev1.Secret{}
			if gerr := r.APIReader.Get(ctx, types.NamespacedName{Namespace: r.homeNamespace(in), Name: in.identity.stateName()}, fresh); gerr != nil {
				return apierrors.IsNotFound(gerr)
			}
			current = fresh
			if theirs := parseState(fresh); theirs != nil && theirs.ObtainedAt.After(h.ObtainedAt) {
				h = theirs // someone renewed the lineage after us: theirs is newer
			}
			return true
		}
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err)
	}, write)
	if err != nil {
		return nil, fmt.Errorf("writing refresh-state secret %q: %w", in.identity.stateName(), err)
	}
	in.state = current
	return h, nil
}

// stateSecret is the identity's refresh-state Secret with data, at current's resourceVersion.
func (r *BindingReconciler) stateSecret(in *bindingInput, current *corev1.Secret, data map[string][]byte) *corev1.Secret {
	id := in.identity
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      id.stateName(),
			Namespace: r.homeNamespace(in),
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
				authv1alpha1.LabelRole:      authv1alpha1.RoleRefreshState,
				authv1alpha1.LabelIdentity:  id.hash(),
			},
			Annotations: map[string]string{
				authv1alpha1.AnnotationTenant:     in.tenantKey.String(),
				authv1alpha1.AnnotationUserID:     id.userID,
				authv1alpha1.AnnotationConnection: id.connection,
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	if current != nil {
		s.ResourceVersion = current.ResourceVersion
		s.OwnerReferences = current.OwnerReferences
	}
	if t := in.tenant; t != nil && len(s.OwnerReferences) == 0 {
		gvk := authv1alpha1.GroupVersion.WithKind(string(in.tenantKey.Kind))
		s.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Name: t.GetName(), UID: t.GetUID(), Controller: ptr.To(true),
		}}
	}
	return s
}

// dropLegacyState deletes the per-binding refresh-state Secret of an earlier version once the
// identity's state holds the lineage.
func (r *BindingReconciler) dropLegacyState(ctx context.Context, in *bindingInput) error {
	if in.legacy == nil || in.state == nil {
		return nil
	}
	if err := r.Client.Delete(ctx, in.legacy, client.Preconditions{UID: &in.legacy.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the migrated refresh-state secret %q: %w", in.legacy.Name, err)
	}
	in.legacy = nil
	return nil
}

// applyTarget writes the target Secret: created with its final content in one write when the
// cache has none (a Secret of that name the binding does not manage makes the create fail:
// SecretConflict), else server-side applied. A write the API server refuses (4xx) is a failure
// of the binding's spec, reported as SecretWriteFailed rather than retried in a hot loop.
func (r *BindingReconciler) applyTarget(ctx context.Context, in *bindingInput, h *heldToken) (*failure, error) {
	b := in.binding
	want := desiredTargetFor(b, h)
	if in.target != nil && in.target.Type != want.secretType {
		// A Secret's type is immutable: replace it.
		if err := r.Client.Delete(ctx, in.target); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("replacing secret %q to change its type: %w", in.target.Name, err)
		}
		in.target = nil
	}
	var err error
	var rv *string
	if in.target == nil {
		s := want.secret(b)
		if err = r.Client.Create(ctx, s, client.FieldOwner(FieldManager)); err == nil {
			rv = &s.ResourceVersion
		} else if apierrors.IsAlreadyExists(err) {
			existing := &corev1.Secret{}
			if gerr := r.APIReader.Get(ctx, client.ObjectKeyFromObject(s), existing); gerr != nil {
				return nil, fmt.Errorf("reading secret %q: %w", s.Name, gerr)
			}
			if !managedBy(existing, b) {
				return terminal(authv1alpha1.ReasonSecretConflict, time.Minute,
					"Secret %q exists and is not managed by this binding; delete it or choose another spec.secret.name", s.Name), nil
			}
			err = nil // the cache lags behind our own write: apply below
			in.target = existing
		}
	}
	if err == nil && in.target != nil {
		ac := want.applyConfiguration(b)
		if err = r.Client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err == nil {
			rv = ac.ResourceVersion
		}
	}
	switch {
	case err == nil:
		r.recordWrite(b.Namespace, b.Spec.Secret.Name, rv)
		return nil, nil
	case apierrors.IsInvalid(err) || apierrors.IsBadRequest(err) || apierrors.IsForbidden(err) || apierrors.IsRequestEntityTooLargeError(err):
		return terminal(authv1alpha1.ReasonSecretWriteFailed, 5*time.Minute,
			"The API server refused to write Secret %s: %v", b.Spec.Secret.Name, safetext.Clip(err.Error(), 300)), nil
	default:
		return nil, fmt.Errorf("writing secret %q: %w", b.Spec.Secret.Name, err)
	}
}

func (r *BindingReconciler) recordWrite(namespace, name string, rv *string) {
	if r.writes != nil {
		r.writes.wrote(types.NamespacedName{Namespace: namespace, Name: name}, rv)
	}
}

// secret is the target Secret to create.
func (d desiredTarget) secret(b *authv1alpha1.IdPTokenBinding) *corev1.Secret {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: b.Spec.Secret.Name, Namespace: b.Namespace, Labels: d.labels, Annotations: d.annotations},
		Type:       d.secretType,
		Data:       d.data,
	}
	if d.owned {
		s.OwnerReferences = []metav1.OwnerReference{{
			APIVersion: authv1alpha1.GroupVersion.String(), Kind: "IdPTokenBinding", Name: b.Name, UID: b.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
	}
	return s
}

// applyConfiguration is the target Secret to apply.
func (d desiredTarget) applyConfiguration(b *authv1alpha1.IdPTokenBinding) *corev1ac.SecretApplyConfiguration {
	ac := corev1ac.Secret(b.Spec.Secret.Name, b.Namespace).
		WithType(d.secretType).
		WithLabels(d.labels).
		WithAnnotations(d.annotations).
		WithData(d.data)
	if d.owned {
		ac.WithOwnerReferences(ownerRef(b))
	}
	return ac
}

func ownerRef(b *authv1alpha1.IdPTokenBinding) *metav1ac.OwnerReferenceApplyConfiguration {
	return metav1ac.OwnerReference().
		WithAPIVersion(authv1alpha1.GroupVersion.String()).
		WithKind("IdPTokenBinding").
		WithName(b.Name).
		WithUID(b.UID).
		WithController(true).
		WithBlockOwnerDeletion(true)
}
