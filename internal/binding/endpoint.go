package binding

import authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"

// EndpointSource says where a refresh sends the refresh token, and with which OAuth client.
type EndpointSource int

const (
	// EndpointRefused: the refresh is not sent at all.
	EndpointRefused EndpointSource = iota
	// EndpointConnection: the connection's own token endpoint with the connection's own client.
	EndpointConnection
	// EndpointConnectionWithOverrideClient: the connection's own token endpoint with the client
	// of spec.refresh.clientCredentialsSecretRef (another client of the same IdP).
	EndpointConnectionWithOverrideClient
	// EndpointOverride: spec.refresh.tokenURL with the client of clientCredentialsSecretRef.
	EndpointOverride
)

// ChooseEndpoint is DESIGN's "who may send a token where" as one rule: the connection's OAuth
// client goes only to the connection's own endpoint; spec.refresh.tokenURL and
// clientCredentialsSecretRef need the tenant's refreshOverride: Allowed, tokenURL needs the
// override client, and that client must have been read (its Secret labelled for it). A refusal
// says why; nothing is sent then.
func ChooseEndpoint(b *authv1alpha1.IdPTokenBinding, t Tenant, overrideClientRead bool) (EndpointSource, *Failure) {
	spec := b.Spec.Refresh
	switch {
	case spec.TokenURL == "" && spec.ClientCredentialsSecretRef == nil:
		return EndpointConnection, nil
	case !t.OverrideAllowed:
		return EndpointRefused, Terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0,
			"%s %s does not allow spec.refresh.tokenURL or spec.refresh.clientCredentialsSecretRef (its spec.refreshOverride is not Allowed); remove them to refresh through the connection's own token endpoint",
			t.Kind, t.Name)
	case spec.ClientCredentialsSecretRef == nil:
		return EndpointRefused, Terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0,
			"spec.refresh.tokenURL requires spec.refresh.clientCredentialsSecretRef: the connection's own OAuth client is only sent to the connection's own token endpoint")
	case t.OverrideRefused != nil:
		return EndpointRefused, t.OverrideRefused
	case !overrideClientRead:
		return EndpointRefused, OverrideClientUnusable()
	case spec.TokenURL != "":
		return EndpointOverride, nil
	}
	return EndpointConnectionWithOverrideClient, nil
}

// KeptClientUsable tells whether the IdP client kept in the operator's namespace (recorded with
// the token URL and client ID it was read with) may refresh the token held: only at that very
// URL and client ID, and never for a binding that refreshes elsewhere. The state Secret that
// names the endpoint may live in a team's namespace; it cannot redirect the kept secret.
func KeptClientUsable(b *authv1alpha1.IdPTokenBinding, kept Endpoint, recordedURL, recordedClientID string) bool {
	spec := b.Spec.Refresh
	return kept.TokenURL != "" && spec.TokenURL == "" && spec.ClientCredentialsSecretRef == nil &&
		kept.TokenURL == recordedURL && kept.ClientID == recordedClientID
}

// MergeOnConflict is the token to persist when the identity's state changed under a write:
// theirs when another writer renewed the lineage after ours (a newer token, and the refresh
// token that goes with it), else ours. Nothing is dropped: the loser is re-read, never lost.
func MergeOnConflict(ours, theirs *Token) *Token {
	if theirs != nil && theirs.ObtainedAt.After(ours.ObtainedAt) {
		return theirs
	}
	return ours
}
