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

// The steps below perform the I/O the planner names and hand what they observed to the pass's
// recorders (binding.Pass.Record*): they never decide what it means.

// refresh renews the lineage's token at the IdP (StepRefresh).
func (r *BindingReconciler) refresh(ctx context.Context, in *bindingInput, p *binding.Pass) {
	p.RecordRefresh(&in.Facts, r.sendRefresh(ctx, in, p.Held))
}

func (r *BindingReconciler) sendRefresh(ctx context.Context, in *bindingInput, held *binding.Token) binding.RefreshResult {
	if in.api == nil {
		return binding.RefreshResult{Failure: r.tenantNotReady(in)}
	}
	ep, unsupported, f := r.endpoint(ctx, in, held)
	switch {
	case f != nil:
		return binding.RefreshResult{Failure: f}
	case unsupported != "":
		return binding.RefreshResult{Unsupported: unsupported}
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
		return binding.RefreshResult{InvalidGrant: true, Err: err.Error()}
	case err != nil:
		if idp.IsInvalidClient(err) {
			r.Tenants.ForgetEndpoint(in.tenantKey, held.Identity.Connection)
		}
		return binding.RefreshResult{Err: err.Error()}
	}
	scope, _ := tok.Extra("scope").(string)
	res := binding.RefreshResult{Renewal: binding.Renewal{AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresIn: tok.ExpiresIn,
		TokenType: tok.TokenType, Scope: scope}}
	if !hasOverride(in.Binding) {
		res.Endpoint = keptEndpointOf(ep)
	}
	return res
}

// readAuth0 reads the token from Auth0 and adopts it (StepReadAuth0). Besides the read (a user,
// a connection, or a Token Vault exchange), it may look up the connection's endpoint, to keep
// it with the state (docs/engine.md lists each step's requests).
func (r *BindingReconciler) readAuth0(ctx context.Context, in *bindingInput, p *binding.Pass) {
	held := p.Held
	vault := binding.UsesTokenVault(in.Binding)
	if !vault && (in.api == nil || !r.Tenants.Ready(in.tenantKey)) {
		p.RecordRead(&in.Facts, nil, r.tenantNotReady(in))
		return
	}
	read, f := r.fetch(ctx, in, binding.ReadNotBefore(&in.Facts, held))
	if f == nil && read.CanRefresh() && !hasOverride(in.Binding) && !in.Unresolved {
		// Whether and where the token can be refreshed is known before it is adopted: a token the
		// operator cannot refresh is re-read at its expiry instead, and is not Ready.
		switch ep, unsupported, ef := r.connectionEndpoint(ctx, in, read); {
		case unsupported != "":
			read.RefreshUnsupported = unsupported
		case ef == nil:
			read.Endpoint = keptEndpointOf(ep)
		}
	}
	verdict := p.RecordRead(&in.Facts, read, f)
	if f == nil && vault && verdict == binding.VerdictNew && held != nil && !held.ValidAt(in.Now) {
		r.observeVaultGap(held.Expiry.ExpiresAt, in.Now)
	}
}

// persist writes the lineage's token to the identity's refresh-state Secret (StepPersist).
func (r *BindingReconciler) persist(ctx context.Context, in *bindingInput, p *binding.Pass) error {
	held, err := r.applyState(ctx, in, p.Held)
	var foreign *foreignStateError
	if errors.As(err, &foreign) {
		p.RecordPersist(nil, foreign.failure()) // nothing more of the lineage is written
		return nil
	}
	if err != nil {
		return err
	}
	p.RecordPersist(held, nil)
	return nil
}

// writeTarget writes the lineage's token to the binding's Secret (StepWriteTarget).
func (r *BindingReconciler) writeTarget(ctx context.Context, in *bindingInput, p *binding.Pass) error {
	f, err := r.applyTarget(ctx, in, p.Held)
	if err != nil {
		return err
	}
	p.RecordTargetWrite(f)
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
