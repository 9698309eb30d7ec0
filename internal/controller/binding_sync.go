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
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/internal/idp"
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
	switch {
	case b.Spec.TenantRef.Kind == authv1alpha1.TenantKindCluster:
		return outcome{held: in.held, failure: terminal(authv1alpha1.ReasonTenantNotFound, 0,
			"ClusterAuth0Tenant %q: cluster-scoped tenants are not served by this version; use an Auth0Tenant in namespace %s", b.Spec.TenantRef.Name, b.Namespace)}
	case in.tenant == nil:
		return outcome{held: in.held, failure: terminal(authv1alpha1.ReasonTenantNotFound, 0,
			"Auth0Tenant %q not found in namespace %s", b.Spec.TenantRef.Name, b.Namespace)}
	case in.conflict != "":
		return outcome{held: in.held, failure: terminal(authv1alpha1.ReasonSecretConflict, time.Minute,
			"Secret %q exists and is not managed by this binding; delete it or choose another spec.secret.name", in.conflict)}
	case in.api == nil && tenantReady(in.tenant):
		// Just after a restart: the tenant controller has not rebuilt the tenant's client yet.
		return outcome{held: in.held, wait: 2 * time.Second}
	}

	d := decide(in)
	if d.action == actionRefresh || (d.action == actionRead && in.held != nil) {
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

	if next != nil {
		if err := r.applyState(ctx, in, next); err != nil {
			out.err = err
			return out
		}
		out.held = next
	}
	if b.Generation != b.Status.ObservedGeneration {
		if err := r.dropOldTargets(ctx, in); err != nil {
			out.err = err
			return out
		}
	}
	if h := out.held; h != nil && h.validAt(in.now) &&
		(out.decision.action == actionWrite || in.target == nil || !targetUpToDate(b, h, in.target)) {
		if err := r.applyTarget(ctx, in, h); err != nil {
			out.err = err
			return out
		}
		out.wrote = true
	}
	return out
}

// reschedule recomputes the renewal time of the held token when the binding's spec changed
// (a new renewBefore or fallbackInterval applies to the token already held), or nil.
func (r *BindingReconciler) reschedule(in *bindingInput) *heldToken {
	b, h := in.binding, in.held
	if h == nil || b.Generation == b.Status.ObservedGeneration {
		return nil
	}
	next := *h
	next.RenewAt = r.renewAt(b, &next, h.ObtainedAt)
	if next.RenewAt.Equal(h.RenewAt) {
		return nil
	}
	return &next
}

// dropOldTargets deletes the Secrets this binding wrote under a previous spec.secret.name
// (those it owns; a retained one is released instead).
func (r *BindingReconciler) dropOldTargets(ctx context.Context, in *bindingInput) error {
	b := in.binding
	list := &corev1.SecretList{}
	if err := r.Client.List(ctx, list, client.InNamespace(b.Namespace),
		client.MatchingLabels{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelBinding: b.Name}); err != nil {
		return fmt.Errorf("listing the binding's secrets: %w", err)
	}
	for i := range list.Items {
		s := &list.Items[i]
		if s.Name == b.Spec.Secret.Name || s.Name == stateSecretName(b) {
			continue
		}
		if hasControllerRef(s, b) {
			if err := r.Client.Delete(ctx, s); client.IgnoreNotFound(err) != nil {
				return fmt.Errorf("deleting secret %q, no longer the binding's target: %w", s.Name, err)
			}
		} else if err := r.release(ctx, s); err != nil {
			return err
		}
		r.Recorder.Eventf(b, nil, corev1.EventTypeNormal, "SecretReleased", "WriteSecret",
			"Secret %s is no longer the binding's target (spec.secret.name is %s)", s.Name, b.Spec.Secret.Name)
	}
	return nil
}

func tenantReady(t *authv1alpha1.Auth0Tenant) bool {
	if t == nil {
		return false
	}
	c := meta.FindStatusCondition(t.Status.Conditions, authv1alpha1.ConditionReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == t.Generation
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
	tok, err := refresher.Refresh(ctx, ep, held.RefreshToken)
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
	next.RenewAt = r.renewAt(in.binding, &next, in.now)
	return &next, nil
}

// readAuth0 reads the token from Auth0 and adopts it: Auth0's refresh token wins when it is a
// new one, an expired access token is refreshed at once, and a token no newer than the one
// held is re-read later rather than in a loop.
func (r *BindingReconciler) readAuth0(ctx context.Context, in *bindingInput, held *heldToken) (*heldToken, *failure) {
	if in.api == nil || !r.Tenants.Ready(in.tenantKey) {
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
		next.ObtainedAt = in.now
		// Reading Auth0 renews nothing: the 30 s spacing counts from the last refresh at the IdP,
		// so a token that was already old when read is renewed on time.
		next.RenewAt = r.renewAt(in.binding, next, next.LastRefresh)
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

// endpoint resolves the IdP token endpoint and OAuth client: the binding's overrides, else the
// identity's Auth0 connection. The last good copy is kept so that an Auth0 outage does not stop refreshes.
func (r *BindingReconciler) endpoint(ctx context.Context, in *bindingInput, held *heldToken) (idp.Endpoint, *failure) {
	b := in.binding
	spec := b.Spec.Refresh
	conn := held.Identity.Connection
	ep, cached := r.Tenants.Endpoint(in.tenantKey, conn)
	if !cached && (spec.TokenURL == "" || spec.ClientCredentialsSecretRef == nil) {
		if !r.Tenants.Ready(in.tenantKey) {
			return ep, r.tenantNotReady(in)
		}
		var c *auth0.Connection
		var err error
		if b.Spec.Connection != nil {
			c, err = in.api.GetConnection(ctx, b.Spec.Connection.ID)
		} else {
			c, err = in.api.GetConnectionByName(ctx, conn)
		}
		if err != nil {
			return ep, r.managementFailure(in, err, authv1alpha1.ReasonRefreshFailed, "reading connection %q", conn)
		}
		ep, err = idp.EndpointForConnection(c)
		switch {
		case err == nil:
			r.Tenants.SetEndpoint(in.tenantKey, conn, ep)
		case spec.TokenURL == "":
			return ep, terminal(authv1alpha1.ReasonRefreshFailed, fallbackInterval(b),
				"Cannot refresh through connection %q: %v; set spec.refresh.tokenURL", conn, err)
		default:
			ep = idp.Endpoint{ClientID: c.Options.ClientID, ClientSecret: c.Options.ClientSecret}
		}
	}
	if spec.TokenURL != "" {
		ep.TokenURL = spec.TokenURL
	}
	if ref := spec.ClientCredentialsSecretRef; ref != nil {
		id, secret, err := readClientCredentials(ctx, r.APIReader, b.Namespace, ref)
		if err != nil {
			return ep, terminal(authv1alpha1.ReasonRefreshFailed, time.Minute, "Reading spec.refresh.clientCredentialsSecretRef: %v", err)
		}
		ep.ClientID, ep.ClientSecret = id, secret
	}
	return ep, nil
}

// managementFailure turns a Management API error into a failure: 404 is terminal with the
// given reason, 401/403 are a tenant problem, 429 and 5xx back off.
func (r *BindingReconciler) managementFailure(in *bindingInput, err error, notFound, format string, args ...any) *failure {
	what := fmt.Sprintf(format, args...)
	switch {
	case auth0.IsNotFound(err):
		return terminal(notFound, 0, "Auth0 says %s failed: %v", what, err)
	case auth0.IsUnauthorized(err) || auth0.IsForbidden(err):
		return transient(authv1alpha1.ReasonTenantNotReady, "Auth0Tenant %s was refused %s: %v", in.tenantKey.Name, what, err)
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
		if c := meta.FindStatusCondition(in.tenant.Status.Conditions, authv1alpha1.ConditionReady); c != nil && c.Message != "" {
			msg = c.Message
		}
	}
	return transient(authv1alpha1.ReasonTenantNotReady, "Auth0Tenant %s is not ready: %s", in.tenantKey.Name, msg)
}

func (r *BindingReconciler) renewAt(b *authv1alpha1.IdPTokenBinding, h *heldToken, lastRenewal time.Time) time.Time {
	var before time.Duration
	if rb := b.Spec.Refresh.RenewBefore; rb != nil {
		before = rb.Duration
	}
	return expiry.RenewAt(expiry.Schedule{
		Token: h.Expiry, RenewBefore: before, FallbackInterval: fallbackInterval(b),
		LastRenewal: lastRenewal, Jitter: r.jitter,
	})
}

func fallbackInterval(b *authv1alpha1.IdPTokenBinding) time.Duration {
	if fi := b.Spec.Refresh.FallbackInterval; fi != nil && fi.Duration > 0 {
		return fi.Duration
	}
	return time.Hour
}

// stateWriteTimeout bounds the write of the refresh-state Secret.
const stateWriteTimeout = 15 * time.Second

// applyState persists the held token in the binding's refresh-state Secret when it changed.
func (r *BindingReconciler) applyState(ctx context.Context, in *bindingInput, h *heldToken) error {
	data := h.stateData()
	if in.state != nil && maps.EqualFunc(in.state.Data, data, func(a, b []byte) bool { return string(a) == string(b) }) {
		return nil
	}
	b := in.binding
	ac := corev1ac.Secret(stateSecretName(b), b.Namespace)
	if in.state != nil {
		// Optimistic lock: never overwrite a newer refresh token written by another pass.
		ac.WithResourceVersion(in.state.ResourceVersion)
	}
	ac.
		WithType(corev1.SecretTypeOpaque).
		WithLabels(map[string]string{
			authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue,
			authv1alpha1.LabelBinding:   b.Name,
			authv1alpha1.LabelRole:      authv1alpha1.RoleRefreshState,
		}).
		WithOwnerReferences(ownerRef(b)).
		WithData(data)
	// A rotated refresh token must not be lost to the end of the reconcile's deadline or to a
	// blip of the API server: this write has its own deadline and a few retries.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateWriteTimeout)
	defer cancel()
	var err error
	for attempt := 1; ; attempt++ {
		if err = r.Client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err == nil {
			r.recordWrite(b.Namespace, stateSecretName(b), ac.ResourceVersion)
			return nil
		}
		retriable := apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err)
		if !retriable || attempt == 3 {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
	return fmt.Errorf("writing refresh-state secret %q: %w", stateSecretName(b), err)
}

// applyTarget writes the target Secret with server-side apply.
func (r *BindingReconciler) applyTarget(ctx context.Context, in *bindingInput, h *heldToken) error {
	b := in.binding
	want := desiredTargetFor(b, h)
	if in.target != nil && in.target.Type != want.secretType {
		// A Secret's type is immutable: replace it.
		if err := r.Client.Delete(ctx, in.target); client.IgnoreNotFound(err) != nil {
			return fmt.Errorf("replacing secret %q to change its type: %w", in.target.Name, err)
		}
	}
	ac := corev1ac.Secret(b.Spec.Secret.Name, b.Namespace).
		WithType(want.secretType).
		WithLabels(want.labels).
		WithAnnotations(want.annotations).
		WithData(want.data)
	if want.owned {
		ac.WithOwnerReferences(ownerRef(b))
	}
	if err := r.Client.Apply(ctx, ac, client.FieldOwner(FieldManager), client.ForceOwnership); err != nil {
		return fmt.Errorf("writing secret %q: %w", b.Spec.Secret.Name, err)
	}
	r.recordWrite(b.Namespace, b.Spec.Secret.Name, ac.ResourceVersion)
	return nil
}

func (r *BindingReconciler) recordWrite(namespace, name string, rv *string) {
	if r.writes != nil {
		r.writes.wrote(types.NamespacedName{Namespace: namespace, Name: name}, rv)
	}
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
