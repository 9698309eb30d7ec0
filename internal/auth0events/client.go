package auth0events

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// Defaults of Config.
const (
	DefaultIdleTimeout   = 90 * time.Second
	DefaultMaxEventBytes = 1 << 20 // go-auth0's default SSE buffer
	DefaultReorderWindow = 2 * time.Second
	DefaultDedupSize     = 10_000
	DefaultDedupWindow   = 10 * time.Minute
	DefaultMaxBackoff    = time.Minute
	DefaultMaxHold       = 10 * time.Minute
)

const (
	// minBackoff is the first wait after a failure.
	minBackoff = time.Second
	// defaultReconnect is the wait before reconnecting to a stream that ended normally when
	// the server sent no retry: field.
	defaultReconnect = 500 * time.Millisecond
	// maxServerRetry caps the server's retry: directive, as go-auth0 does.
	maxServerRetry = 30 * time.Second
	// resumeMargin is how far before the first connection a reconnect that has no offset yet
	// asks to start (from_timestamp), so that nothing published meanwhile is missed.
	resumeMargin = time.Minute
	// maxReorderHeld bounds the events held for reordering.
	maxReorderHeld = 1000
)

// Config configures a Client.
type Config struct {
	// Domain is the tenant's host[:port]; the stream is https://<Domain>/api/v2/events.
	Domain string
	// HTTPClient is the tenant's client (TLS settings, CA bundle). Its Timeout would cut every
	// stream, so the stream uses a copy without it (IdleTimeout bounds silence instead) and
	// without redirects. Required.
	HTTPClient *http.Client
	// Token returns a Management API access token with read:events. It is called for every
	// connection; its errors are returned by Subscribe as they are. Required.
	Token func(ctx context.Context) (string, error)
	// Types is the event_type filter. Default (nil or empty) DefaultTypes.
	Types []string
	// Clock drives waits, timeouts and the reorder window. Default the real clock.
	Clock clock.WithDelayedExecution
	// IdleTimeout is how long a connection may stay silent (no line, heartbeats included)
	// before it is dropped and reopened; it also bounds waiting for the response headers.
	IdleTimeout time.Duration
	// MaxEventBytes bounds a line and an event's data. Default DefaultMaxEventBytes.
	MaxEventBytes int
	// ReorderWindow is how long an event is held to be put in time order. Default
	// DefaultReorderWindow; negative means no holding.
	ReorderWindow time.Duration
	// DedupSize and DedupWindow bound the ids remembered for dropping duplicates. Defaults
	// DefaultDedupSize and DefaultDedupWindow. Sizes and durations that are not positive take
	// their defaults, except ReorderWindow.
	DedupSize   int
	DedupWindow time.Duration
	// MaxBackoff caps the wait between failed connections; MaxHold caps a wait a 429 asks for.
	MaxBackoff, MaxHold time.Duration
	// OnConnect, if set, is called each time a stream is open (HTTP 200).
	OnConnect func()
	// OnRetry, if set, is called with each failure that Subscribe waits out, and the wait.
	OnRetry func(err error, wait time.Duration)
}

// From is where a subscription starts: after Offset when set, else at Time when set, else at
// the latest events.
type From struct {
	Offset string
	Time   time.Time
}

// Client reads one tenant's events stream. It is safe for concurrent use, but a tenant should
// have one subscription: Auth0 limits concurrent connections per tenant.
type Client struct {
	cfg  Config
	http *http.Client
	url  string
}

// New validates cfg and applies its defaults. Nothing is sent until Subscribe.
func New(cfg Config) (*Client, error) {
	if err := httpclient.CheckHost(cfg.Domain); err != nil {
		return nil, fmt.Errorf("auth0events: config: Domain %w", err)
	}
	if cfg.HTTPClient == nil || cfg.Token == nil {
		return nil, errors.New("auth0events: config: HTTPClient and Token are required")
	}
	if len(cfg.Types) == 0 {
		cfg.Types = DefaultTypes
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.RealClock{}
	}
	cfg.IdleTimeout = orDefault(cfg.IdleTimeout, DefaultIdleTimeout)
	cfg.MaxEventBytes = int(orDefault(int64(cfg.MaxEventBytes), DefaultMaxEventBytes))
	switch {
	case cfg.ReorderWindow == 0:
		cfg.ReorderWindow = DefaultReorderWindow
	case cfg.ReorderWindow < 0:
		cfg.ReorderWindow = 0
	}
	cfg.DedupSize = int(orDefault(int64(cfg.DedupSize), DefaultDedupSize))
	cfg.DedupWindow = orDefault(cfg.DedupWindow, DefaultDedupWindow)
	cfg.MaxBackoff = orDefault(cfg.MaxBackoff, DefaultMaxBackoff)
	cfg.MaxHold = orDefault(cfg.MaxHold, DefaultMaxHold)
	hc := httpclient.WithoutRedirects(cfg.HTTPClient)
	hc.Timeout = 0
	return &Client{cfg: cfg, http: hc, url: "https://" + cfg.Domain + eventsPath}, nil
}

// orDefault is v, or def when v is not positive.
func orDefault[T time.Duration | int64](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// Subscribe streams events starting at from until ctx ends (it then returns ctx's error) or a
// failure that waiting cannot help (ErrOffsetExpired, IsNotAuthorized, another 4xx, a Token
// error). handle gets each new event once per subscription (duplicates dropped by ID), in time
// order within the reorder window. checkpoint, if set, gets the offset to persist and resume
// from after a restart: every message before it, offset-only markers included, has been dealt
// with. It is called often; coalesce writes. Both run on Subscribe's goroutine; a slow handle
// slows the reading, nothing is dropped. When Subscribe returns, no goroutine or connection of
// it is left.
func (c *Client) Subscribe(ctx context.Context, from From, handle func(Event), checkpoint func(offset string)) error {
	s := &subscription{
		c:          c,
		handle:     handle,
		checkpoint: checkpoint,
		from:       from,
		started:    c.cfg.Clock.Now(),
		dedup:      NewDedup(c.cfg.DedupSize, c.cfg.DedupWindow),
		reorder:    NewReorder(c.cfg.ReorderWindow, maxReorderHeld),
		reported:   from.Offset,

		serverRetry: defaultReconnect,
	}
	failures := 0
	for {
		healthy, err := s.connectOnce(ctx)
		if ctx.Err() != nil {
			// Held events are not handed on: the checkpoint has not passed them, so the
			// next subscription delivers them again.
			return ctx.Err()
		}
		// Held events are handed on now rather than kept through the wait for a reconnect.
		s.release(s.reorder.Flush())
		if s.from.Offset == "" && s.from.Time.IsZero() {
			// Started at "latest" and no offset yet: the next connection must not skip
			// what was published in between.
			s.from.Time = s.started.Add(-resumeMargin)
		}
		var wait time.Duration
		var e *Error
		switch {
		case err == nil || healthy && errors.As(err, &e) && e.StatusCode == 0 && e.Code == "":
			// The stream ended, or broke or fell silent after working: Auth0 ends streams
			// every few minutes. An error frame is not this: it is backed off from.
			failures = 0
			wait = s.serverRetry
		case errors.As(err, &e) && retryable(e):
			failures++
			wait = c.failureWait(e, failures)
			if c.cfg.OnRetry != nil {
				c.cfg.OnRetry(err, wait)
			}
		default:
			return err
		}
		if err := c.sleep(ctx, wait); err != nil {
			return err
		}
	}
}

// failureWait is how long to wait after the n-th failure in a row: what a 429 asks for, else
// exponential backoff with jitter.
func (c *Client) failureWait(e *Error, n int) time.Duration {
	if e.StatusCode == http.StatusTooManyRequests && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	d := min(c.cfg.MaxBackoff, minBackoff<<min(n-1, 16))
	// Up to a quarter more, so that many operators do not come back in step.
	return d + rand.N(d/4+1)
}

func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := c.cfg.Clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C():
		return nil
	}
}
