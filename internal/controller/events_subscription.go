package controller

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"k8s.io/utils/clock"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0events"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

// eventsReorderWindow is how long an event is held to be put in time order (the client's
// default is 2 s).
const eventsReorderWindow = 500 * time.Millisecond

// subscription is one tenant's events stream, run by Events until its context ends.
type subscription struct {
	e     *Events
	key   TenantKey
	want  eventsWanted
	board *noticeBoard
}

// run subscribes, resumes from the kept offset, and keeps going through whatever Subscribe
// returns from, until ctx ends. Its helper goroutine (pending notices, offset writes) ends
// with it.
func (s *subscription) run(ctx context.Context) {
	log := logf.FromContext(ctx).WithValues("tenant", s.key.String())
	ctx = logf.IntoContext(ctx, log)
	tokens, ok := s.want.api.(streamTokens)
	if !ok {
		s.e.setStatus(s.key, describeEventsError(errNoStreamClient, eventsMaxWait))
		return
	}
	offsets := s.e.offsetStoreFor(s.key, s.want.home)
	dc, ok := s.e.Clock.(clock.WithDelayedExecution)
	if !ok {
		dc = clock.RealClock{}
	}
	cfg := auth0events.Config{
		Domain: s.want.domain, HTTPClient: s.want.api.HTTPClient(), Token: tokens.StreamToken, Types: s.want.types, Clock: dc,
		// What an event sets off reads the current state from Auth0, so order matters little:
		// events are held only briefly to be put in order, and a login reaches its Secrets sooner.
		ReorderWindow: eventsReorderWindow,
		OnConnect: func() {
			s.e.setStatus(s.key, EventsStatus{Open: true, Reason: authv1alpha1.ReasonSubscribed,
				Message: "Subscribed to the tenant's Auth0 Events API stream (" + strings.Join(s.want.types, ", ") + ")"})
		},
		OnRetry: func(err error, wait time.Duration) { s.e.setStatus(s.key, describeEventsError(err, wait)) },
	}
	newClient := s.e.NewClient
	if newClient == nil {
		newClient = auth0events.New
	}
	ec, err := newClient(cfg)
	if err != nil {
		s.e.setStatus(s.key, describeEventsError(err, eventsMaxWait))
		return
	}

	tickDone := make(chan struct{})
	tickCtx, stopTick := context.WithCancel(ctx)
	go func() {
		defer close(tickDone)
		s.tick(tickCtx, offsets)
	}()
	defer func() {
		stopTick()
		<-tickDone
		// The last offset is kept even though the manager is stopping.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := offsets.flush(fctx); err != nil {
			log.Error(err, "Failed to keep the events offset")
		}
	}()

	from := auth0events.From{}
	if off, err := offsets.load(ctx); err != nil {
		log.Error(err, "Not resuming the events stream from a kept offset")
	} else {
		from.Offset = off
	}
	failures := 0
	for {
		err := ec.Subscribe(ctx, from, func(ev auth0events.Event) { s.handle(ctx, ev) }, offsets.set)
		if ctx.Err() != nil {
			return
		}
		var wait time.Duration
		switch {
		case errors.Is(err, auth0events.ErrOffsetExpired):
			// Events between the kept offset and now are lost: every identity of the tenant is
			// read once (paced by the notice board, the tenant's rate limit and the shared user
			// reads), and the stream resumes from when that began.
			start := s.e.Clock.Now()
			log.Info("The kept events offset has expired; reading every identity of the tenant once")
			s.rereadAll(ctx, start)
			from = auth0events.From{Time: start}
			offsets.set("")
			failures = 0
			continue
		case auth0events.IsNotAuthorized(err):
			if e := (*auth0events.Error)(nil); errors.As(err, &e) && e.StatusCode == http.StatusUnauthorized {
				// The token itself was refused (revoked, a rotated key): get a new one. A 403 (a
				// missing scope) keeps it: a new token per minute would spend the M2M quota.
				tokens.RejectStreamToken()
			}
			wait = eventsRefusedWait
		default:
			failures++
			wait = min(eventsMaxWait, 10*time.Second<<min(failures-1, 5))
		}
		s.e.setStatus(s.key, describeEventsError(err, wait)) // also sets the subscribed gauge
		select {
		case <-ctx.Done():
			return
		case <-s.e.Clock.After(wait):
		}
		// Resume where the stream got to, or else from when it was last known to be open.
		if off := offsets.current(); off != "" {
			from = auth0events.From{Offset: off}
		} else if from.Time.IsZero() {
			from.Time = s.e.Clock.Now().Add(-wait)
		}
	}
}

// tick notices pending events whose spacing ended and writes the offset, until ctx ends.
func (s *subscription) tick(ctx context.Context, offsets *offsetStore) {
	t := s.e.Clock.NewTimer(eventsTick)
	defer t.Stop()
	lastFlush := s.e.Clock.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		now := s.e.Clock.Now()
		for _, subject := range s.board.due(now) {
			s.e.enqueue(s.e.bindingsOf(ctx, s.key, subject), false) // a deletion is never held back
		}
		if now.Sub(lastFlush) >= offsetFlushEvery {
			lastFlush = now
			if err := offsets.flush(ctx); err != nil && ctx.Err() == nil {
				logf.FromContext(ctx).Error(err, "Failed to keep the events offset")
			}
		}
		t.Reset(eventsTick)
	}
}

// handle acts on one event: a user's or a connection's bindings are noticed (paced by the
// board) and enqueued; a changed connection's kept endpoint is dropped first.
func (s *subscription) handle(ctx context.Context, ev auth0events.Event) {
	now := s.e.Clock.Now()
	var lag time.Duration
	if !ev.Time.IsZero() {
		lag = now.Sub(ev.Time)
	}
	metrics.ObserveAuth0Event(s.key.String(), ev.Type, lag)
	if ev.Incomplete {
		logf.FromContext(ctx).Info("Ignored an Auth0 event that could not be read whole", "type", ev.Type)
		return
	}
	var subject string
	deleted := false
	switch ev.Type {
	case auth0events.TypeUserUpdated, auth0events.TypeUserDeleted:
		if ev.UserID == "" {
			return
		}
		subject, deleted = eventSubject(ev.UserID, ""), ev.Type == auth0events.TypeUserDeleted
		// A read from before the event must serve no binding, whatever its notice says (a
		// binding created later, or after the notices were dropped, passes none).
		s.e.Tenants.ForgetUser(s.key, ev.UserID)
	case auth0events.TypeConnectionUpdated:
		if ev.ConnectionName != "" {
			// Its endpoint or client may have changed: the next refresh reads the connection.
			s.e.Tenants.ForgetConnection(s.key, ev.ConnectionName)
		}
		if ev.ConnectionID == "" {
			return
		}
		subject = eventSubject("", ev.ConnectionID)
	default:
		return
	}
	bound := s.e.bindingsOf(ctx, s.key, subject)
	if bound.empty() {
		return // nobody's token comes from it: nothing to read
	}
	if s.board.record(subject, deleted, now) {
		s.e.enqueue(bound, deleted)
	}
}

// rereadAll notices every binding of the tenant, after events may have been lost.
func (s *subscription) rereadAll(ctx context.Context, now time.Time) {
	bound, err := tenantBindings(ctx, s.e.Client, s.key)
	if err != nil {
		logf.FromContext(ctx).Error(err, "Failed to list the tenant's bindings")
		return
	}
	seen := map[string]bool{}
	for _, b := range bound {
		subject := bindingSubject(b)
		if subject == "" || seen[subject] {
			continue
		}
		seen[subject] = true
		if s.board.record(subject, false, now) {
			s.e.enqueue(s.e.bindingsOf(ctx, s.key, subject), false)
		}
	}
}
