package auth0

import (
	"context"
	"net/http"
	"time"
)

// eventsPath is the Events API stream, for the pacer's errors.
const eventsPath = "/api/v2/events"

// StreamToken returns the Management API token for a long-lived request the client does not
// send itself (the Events API stream, internal/auth0events), after taking one request of the
// tenant's budget for it: each connection of the stream counts against the tenant's rate limit
// like a read, and waits while Auth0 asked the client to hold back (429). RejectStreamToken
// drops the token when Auth0 answered the stream 401.
func (c *Client) StreamToken(ctx context.Context) (string, error) {
	tok, gen, err := c.tokens.token(ctx)
	if err != nil {
		return "", err
	}
	var waited time.Duration
	req := request{method: http.MethodGet, path: eventsPath, display: eventsPath}
	if err := c.pace.take(ctx, req, c.cfg.MaxRateLimitWait, &waited, nil); err != nil {
		return "", err
	}
	// The stream's answer is not seen here: its place is given back, its token stays spent.
	c.pace.abandon()
	c.stats.apiRequests.Add(1)
	c.streamGen.Store(gen)
	return tok.AccessToken, nil
}

// RejectStreamToken drops the token StreamToken last returned, after Auth0 refused it (401): it
// may have been revoked, and the next call gets a new one.
func (c *Client) RejectStreamToken() { c.tokens.invalidate(c.streamGen.Load()) }
