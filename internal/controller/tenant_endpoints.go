package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/idp"
)

// UnsupportedTTL is how long a connection found unrefreshable stays so without being read again:
// an admin who gives it a token endpoint is noticed within this time, and the Auth0 reads of its
// users (at each token's expiry) do not each read the connection too.
const UnsupportedTTL = 10 * time.Minute

type unsupportedVerdict struct {
	why string
	at  time.Time
}

// Endpoint returns the last good IdP endpoint of an Auth0 connection of the tenant.
func (t *TenantClients) Endpoint(key TenantKey, connection string) (idp.Endpoint, bool) {
	c := t.get(key)
	if c == nil {
		return idp.Endpoint{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ep, ok := c.endpoints[connection]
	return ep, ok
}

// SetEndpoint remembers an IdP endpoint; ForgetEndpoint drops it after the IdP rejected its client.
func (t *TenantClients) SetEndpoint(key TenantKey, connection string, ep idp.Endpoint) {
	if c := t.get(key); c != nil {
		c.mu.Lock()
		c.endpoints[connection] = ep
		delete(c.unsupported, connection)
		c.mu.Unlock()
	}
}

// ForgetEndpoint drops a remembered IdP endpoint.
func (t *TenantClients) ForgetEndpoint(key TenantKey, connection string) {
	if c := t.get(key); c != nil {
		c.mu.Lock()
		delete(c.endpoints, connection)
		c.mu.Unlock()
	}
}

// ForgetConnection drops what the tenant's client keeps of a connection (its endpoint, and a
// verdict that it cannot be refreshed), after Auth0 reported it changed: the next refresh through
// it reads the connection again.
func (t *TenantClients) ForgetConnection(key TenantKey, connection string) {
	if c := t.get(key); c != nil {
		c.mu.Lock()
		delete(c.endpoints, connection)
		delete(c.unsupported, connection)
		c.mu.Unlock()
	}
}

// Unsupported says why the operator cannot refresh through a connection, as found less than
// UnsupportedTTL before now; "" when it was not found so, or too long ago.
func (t *TenantClients) Unsupported(key TenantKey, connection string, now time.Time) string {
	c := t.get(key)
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.unsupported[connection]
	if !ok || now.Sub(v.at) >= UnsupportedTTL {
		return ""
	}
	return v.why
}

// SetUnsupported remembers that the operator cannot refresh through a connection, and why.
func (t *TenantClients) SetUnsupported(key TenantKey, connection, why string, now time.Time) {
	if c := t.get(key); c != nil {
		c.mu.Lock()
		c.unsupported[connection] = unsupportedVerdict{why: why, at: now}
		delete(c.endpoints, connection)
		c.mu.Unlock()
	}
}

// ResolveEndpoint derives the IdP token endpoint of a connection, reading its OIDC discovery
// document through the tenant's HTTP client when the connection names none.
func (t *TenantClients) ResolveEndpoint(ctx context.Context, key TenantKey, conn *auth0.Connection) (idp.Endpoint, error) {
	c := t.get(key)
	if c == nil {
		return idp.Endpoint{}, fmt.Errorf("no client for tenant %s", key)
	}
	return c.resolver.Resolve(ctx, conn)
}

// endpointVerdict sorts an error of ResolveEndpoint: unsupported (the operator cannot refresh
// through the connection, whatever happens), transient (the discovery document could not be
// read for now), or else a connection to fix.
func endpointVerdict(err error) (unsupported, transient bool) {
	return errors.Is(err, idp.ErrRefreshUnsupported), errors.Is(err, idp.ErrDiscovery) || errors.Is(err, context.DeadlineExceeded)
}
