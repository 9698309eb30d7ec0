package auth0events

import (
	"context"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func TestNewConfig(t *testing.T) {
	hc := &http.Client{Timeout: 30 * time.Second}
	tok := func(context.Context) (string, error) { return "t", nil }
	tests := map[string]struct {
		cfg     Config
		wantErr bool
		check   func(t *testing.T, c *Client)
	}{
		"no domain":               {cfg: Config{HTTPClient: hc, Token: tok}, wantErr: true},
		"a URL instead of a host": {cfg: Config{Domain: "https://t.auth0.com/", HTTPClient: hc, Token: tok}, wantErr: true},
		"no HTTP client":          {cfg: Config{Domain: "t.auth0.com", Token: tok}, wantErr: true},
		"no token source":         {cfg: Config{Domain: "t.auth0.com", HTTPClient: hc}, wantErr: true},
		"defaults": {
			cfg: Config{Domain: "t.auth0.com", HTTPClient: hc, Token: tok, Types: []string{}},
			check: func(t *testing.T, c *Client) {
				got := c.cfg
				if got.IdleTimeout != DefaultIdleTimeout || got.MaxEventBytes != DefaultMaxEventBytes ||
					got.ReorderWindow != DefaultReorderWindow || got.DedupSize != DefaultDedupSize ||
					got.DedupWindow != DefaultDedupWindow || got.MaxBackoff != DefaultMaxBackoff ||
					got.MaxHold != DefaultMaxHold || !reflect.DeepEqual(got.Types, DefaultTypes) || got.Clock == nil {
					t.Errorf("defaults not applied: %+v", got)
				}
			},
		},
		"negative values take the defaults; a negative window turns reordering off": {
			cfg: Config{Domain: "t.auth0.com", HTTPClient: hc, Token: tok, IdleTimeout: -1, MaxEventBytes: -1,
				DedupSize: -1, MaxBackoff: -1, MaxHold: -1, ReorderWindow: -1},
			check: func(t *testing.T, c *Client) {
				got := c.cfg
				if got.IdleTimeout != DefaultIdleTimeout || got.MaxEventBytes != DefaultMaxEventBytes ||
					got.DedupSize != DefaultDedupSize || got.MaxBackoff != DefaultMaxBackoff ||
					got.MaxHold != DefaultMaxHold || got.ReorderWindow != 0 {
					t.Errorf("got %+v", got)
				}
			},
		},
		"the stream's client has no timeout and refuses redirects; the tenant's is unchanged": {
			cfg: Config{Domain: "t.auth0.com", HTTPClient: hc, Token: tok},
			check: func(t *testing.T, c *Client) {
				if c.http.Timeout != 0 || c.http.CheckRedirect == nil || hc.Timeout != 30*time.Second || hc.CheckRedirect != nil {
					t.Errorf("stream client %+v, tenant client %+v", c.http, hc)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := New(tc.cfg)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}
