package auth0

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestStreamTokenSpendsTheTenantsBudgetAndCanBeRejected: each stream connection takes one request
// of the tenant's budget (a second one right away waits for the pacer), reuses the cached M2M
// token, and a rejected token is fetched again.
func TestStreamTokenSpendsTheTenantsBudgetAndCanBeRejected(t *testing.T) {
	f := newFakeAuth0(t)
	c := f.client(t, func(cfg *Config) { cfg.RequestsPerSecond, cfg.Burst = 0.05, 1 })
	ctx := testContext(t)

	first, err := c.StreamToken(ctx)
	if err != nil {
		t.Fatalf("StreamToken: %v", err)
	}
	if !strings.HasPrefix(first, m2mTokenPrefix) {
		t.Fatalf("StreamToken returned something that is not the M2M token")
	}
	if got := c.Stats().APIRequests; got != 1 {
		t.Errorf("a stream connection counts %d requests, want 1", got)
	}
	// The budget is one request per 20 s: the next connection waits for it.
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := c.StreamToken(short); err == nil {
		t.Fatal("a second connection at once did not wait for the tenant's budget")
	}

	c = f.client(t) // no rate limit
	if _, err := c.StreamToken(ctx); err != nil {
		t.Fatalf("StreamToken: %v", err)
	}
	kept, err := c.StreamToken(ctx)
	if err != nil {
		t.Fatalf("StreamToken: %v", err)
	}
	if got := f.tokens.Load(); got != 2 {
		t.Errorf("%d M2M token requests for two clients, want 2 (the cached token serves each client's stream)", got)
	}
	c.RejectStreamToken()
	second, err := c.StreamToken(ctx)
	if err != nil {
		t.Fatalf("StreamToken after a rejection: %v", err)
	}
	if second == kept || f.tokens.Load() != 3 {
		t.Errorf("after RejectStreamToken the token was not fetched again (%d token requests)", f.tokens.Load())
	}
}
