package auth0events

import (
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/idptoken/idptoken-operator/internal/httpclient"
)

// maxErrorBody bounds the error body read from a refused connection.
const maxErrorBody = 8 << 10

var (
	// errIdle is the cause of a connection dropped for silence.
	errIdle = errors.New("no data within the idle timeout")
	// errStopped is the cause of a connection Subscribe closed itself.
	errStopped = errors.New("closed by the client")
)

// subscription is the state of one Subscribe call, kept across its connections.
type subscription struct {
	c          *Client
	handle     func(Event)
	checkpoint func(string)

	from     From      // where the next connection starts
	started  time.Time // when Subscribe began, for a reconnect without an offset
	token    string    // of the current connection, to scrub from errors
	reported string    // the last checkpoint reported

	serverRetry time.Duration
	seq         uint64
	dedup       *Dedup
	reorder     *Reorder
	marks       checkpoints
}

// connectOnce opens one connection and reads it until it ends. healthy reports whether it
// delivered at least one frame; the error says why it ended (nil: the server closed it).
func (s *subscription) connectOnce(ctx context.Context) (healthy bool, err error) {
	tok, err := s.c.cfg.Token(ctx)
	if err != nil {
		return false, err
	}
	s.token = tok
	connCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// One watchdog bounds both the wait for headers and each silence between lines.
	watchdog := s.c.cfg.Clock.AfterFunc(s.c.cfg.IdleTimeout, func() { cancel(errIdle) })
	defer watchdog.Stop()

	req, err := http.NewRequestWithContext(connCtx, http.MethodGet, s.requestURL(), nil)
	if err != nil {
		return false, &Error{Err: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if s.from.Offset != "" {
		req.Header.Set("Last-Event-ID", s.from.Offset)
	}
	resp, err := s.c.http.Do(req)
	if err != nil {
		return false, &Error{Err: causeOf(connCtx, httpclient.TransportCause(err))}
	}
	defer func() { _ = resp.Body.Close() }()
	if err := s.checkResponse(resp); err != nil {
		return false, err
	}
	if s.c.cfg.OnConnect != nil {
		s.c.cfg.OnConnect()
	}
	return s.read(ctx, connCtx, cancel, resp.Body, watchdog)
}

// requestURL is the stream's URL with the event types and the starting point. The offset goes
// both here and in Last-Event-ID; Auth0 takes either (the header wins).
func (s *subscription) requestURL() string {
	q := url.Values{"event_type": s.c.cfg.Types}
	switch {
	case s.from.Offset != "":
		q.Set("from", s.from.Offset)
	case !s.from.Time.IsZero():
		q.Set("from_timestamp", s.from.Time.UTC().Format(time.RFC3339Nano))
	}
	return s.c.url + "?" + q.Encode()
}

// checkResponse turns anything but a 200 event stream into an Error.
func (s *subscription) checkResponse(resp *http.Response) error {
	if resp.StatusCode != http.StatusOK {
		body, _ := httpclient.ReadLimited(resp.Body, maxErrorBody)
		return statusError(resp.StatusCode, body, s.holdFor(resp), s.token)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt != "text/event-stream" {
		// A proxy's page, say: worth another try later, never worth parsing.
		return &Error{StatusCode: resp.StatusCode, Err: errors.New("the answer is not an event stream")}
	}
	return nil
}

// holdFor reads how long a 429 asks to wait: Retry-After, else Auth0's x-ratelimit-reset.
func (s *subscription) holdFor(resp *http.Response) time.Duration {
	if resp.StatusCode != http.StatusTooManyRequests {
		return 0
	}
	now, limit := s.c.cfg.Clock.Now(), s.c.cfg.MaxHold
	if d, ok := httpclient.RetryAfter(resp.Header, now, limit); ok {
		return d
	}
	secs, err := strconv.ParseInt(strings.TrimSpace(resp.Header.Get("X-Ratelimit-Reset")), 10, 64)
	if err != nil || secs <= 0 || secs > 1<<40 {
		return 0
	}
	return max(0, min(time.Unix(secs, 0).Sub(now), limit))
}

// causeOf prefers the reason the connection's context was cancelled (the idle watchdog) to
// the transport's "context canceled".
func causeOf(ctx context.Context, err error) error {
	if c := context.Cause(ctx); c != nil && !errors.Is(c, context.Canceled) {
		return c
	}
	return err
}

// read consumes the stream. A reader goroutine parses frames so that held events can be
// released on time while the body is quiet; it has ended when read returns.
func (s *subscription) read(ctx, connCtx context.Context, cancel context.CancelCauseFunc, body io.Reader, watchdog clock.Timer) (bool, error) {
	frames := make(chan frame)
	var readErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(frames)
		readErr = s.parse(connCtx, body, frames, watchdog)
	})
	// Cancelling the request closes the connection, which ends a blocked read.
	defer func() { cancel(errStopped); wg.Wait() }()

	healthy := false
	due := s.c.cfg.Clock.NewTimer(0)
	defer due.Stop()
	for {
		dueC := s.armRelease(due)
		select {
		case <-ctx.Done():
			return healthy, ctx.Err()
		case <-dueC:
			s.release(s.reorder.Ready(s.c.cfg.Clock.Now()))
		case f, ok := <-frames:
			if !ok {
				if errors.Is(readErr, io.EOF) {
					return healthy, nil
				}
				return healthy, &Error{Err: causeOf(connCtx, readErr)}
			}
			healthy = true
			if err := s.take(f); err != nil {
				return healthy, err
			}
		}
	}
}

// armRelease sets t for the next held event and returns its channel, or nil when none is held.
func (s *subscription) armRelease(t clock.Timer) <-chan time.Time {
	t.Stop()
	select {
	case <-t.C():
	default:
	}
	at, ok := s.reorder.Next()
	if !ok {
		return nil
	}
	t.Reset(max(0, at.Sub(s.c.cfg.Clock.Now())))
	return t.C()
}

// parse reads lines into frames and hands them over until the body ends or the connection is
// cancelled. The watchdog runs only while a read waits, so a slow handler is not "silence".
func (s *subscription) parse(connCtx context.Context, body io.Reader, frames chan<- frame, watchdog clock.Timer) error {
	lr := newLineReader(body, s.c.cfg.MaxEventBytes)
	p := frameParser{maxData: s.c.cfg.MaxEventBytes}
	for {
		watchdog.Reset(s.c.cfg.IdleTimeout)
		line, tooLong, err := lr.next()
		watchdog.Stop()
		if err != nil {
			return err
		}
		f, ok := p.line(line, tooLong)
		if !ok {
			continue
		}
		select {
		case frames <- f:
		case <-connCtx.Done():
			return context.Cause(connCtx)
		}
	}
}
