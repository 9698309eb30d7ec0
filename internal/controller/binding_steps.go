package controller

import (
	"context"
	"errors"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

// refreshTimeout bounds a refresh at an IdP, which a shutdown does not interrupt.
const refreshTimeout = 30 * time.Second

// refresh renews the lineage's token at the IdP (StepRefresh).
func (r *BindingReconciler) refresh(ctx context.Context, in *bindingInput, p *binding.Pass) {
	p.Refreshes++
	p.NeedRefresh = false
	held := p.Held
	kept := p.Kept
	p.Kept = nil
	if in.api == nil {
		p.Failure = r.tenantNotReady(in)
		return
	}
	ep, f := r.endpoint(ctx, in, held)
	if f != nil {
		p.Failure = f
		return
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
		p.Held, p.InvalidGrant = binding.Refused(held), true
		p.Failure = binding.Transient(authv1alpha1.ReasonRefreshFailed, "The identity provider rejected the refresh token: %v", err)
	case err != nil:
		if idp.IsInvalidClient(err) {
			r.Tenants.ForgetEndpoint(in.tenantKey, held.Identity.Connection)
		}
		if kept != nil {
			p.Held = kept // Auth0's expired copy is no better than the token held before the read
		}
		p.Failure = binding.Transient(authv1alpha1.ReasonRefreshFailed, "Refreshing the token at the identity provider failed: %v", err)
	default:
		next := binding.Renewed(&in.Facts, held, binding.Renewal{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresIn: tok.ExpiresIn})
		if !hasOverride(in.Binding) {
			next.Endpoint = keptEndpointOf(ep)
		}
		p.Held, p.Refreshed, p.InvalidGrant, p.Failure = next, true, false, nil
	}
}

// readAuth0 reads the token from Auth0 and adopts it (StepReadAuth0).
func (r *BindingReconciler) readAuth0(ctx context.Context, in *bindingInput, p *binding.Pass) {
	p.ReadAuth0 = true
	held := p.Held
	vault := binding.UsesTokenVault(in.Binding)
	if !vault && (in.api == nil || !r.Tenants.Ready(in.tenantKey)) {
		p.Failure = r.tenantNotReady(in)
		return
	}
	read, f := r.fetch(ctx, in, binding.ReadNotBefore(&in.Facts, held))
	if f != nil {
		p.Failure = f
		return
	}
	next, verdict, f := binding.AfterRead(&in.Facts, held, read)
	if vault && verdict == binding.VerdictNew && held != nil && !held.ValidAt(in.Now) {
		r.observeVaultGap(held.Expiry.ExpiresAt, in.Now)
	}
	if verdict == binding.VerdictRefresh {
		p.Kept = held
	}
	if next.CanRefresh() && next.Endpoint.TokenURL == "" && !hasOverride(in.Binding) && !in.Unresolved {
		// Kept with the state from the first read on, so that a manager restarted during an
		// Auth0 outage can make the lineage's first refresh too.
		if ep, f := r.connectionEndpoint(ctx, in, next); f == nil {
			next.Endpoint = keptEndpointOf(ep)
		}
	}
	p.Held, p.NeedRefresh, p.Failure = next, verdict == binding.VerdictRefresh, f
}

// persist writes the lineage's token to the identity's refresh-state Secret (StepPersist).
func (r *BindingReconciler) persist(ctx context.Context, in *bindingInput, p *binding.Pass) error {
	held, err := r.applyState(ctx, in, p.Held)
	var foreign *foreignStateError
	if errors.As(err, &foreign) {
		p.Persisted, p.Failure = true, foreign.failure() // nothing more of the lineage is written
		p.Held = nil
		return nil
	}
	if err != nil {
		return err
	}
	p.Held, p.Persisted = held, true
	return nil
}

// writeTarget writes the lineage's token to the binding's Secret (StepWriteTarget).
func (r *BindingReconciler) writeTarget(ctx context.Context, in *bindingInput, p *binding.Pass) error {
	p.TargetAttempted = true
	f, err := r.applyTarget(ctx, in, p.Held)
	if err != nil {
		return err
	}
	if f != nil {
		p.Failure = f
		return nil
	}
	p.TargetWritten = true
	return nil
}

// hasOverride tells whether the binding refreshes with an endpoint or client of its own.
func hasOverride(b *authv1alpha1.IdPTokenBinding) bool {
	return b.Spec.Refresh.TokenURL != "" || b.Spec.Refresh.ClientCredentialsSecretRef != nil
}

// observeVaultGap records how long a Secret held an expired Token Vault token: from its expiry
// to now, when its successor is written.
func (r *BindingReconciler) observeVaultGap(expired, now time.Time) {
	if r.OnVaultGap != nil && now.After(expired) {
		r.OnVaultGap(expired, now)
	}
}

// keptEndpointOf is the part of an endpoint kept with the identity's state: no client secret.
func keptEndpointOf(ep idp.Endpoint) binding.Endpoint {
	return binding.Endpoint{TokenURL: ep.TokenURL, ClientID: ep.ClientID, AuthStyle: ep.AuthStyle, Provider: ep.Provider}
}
