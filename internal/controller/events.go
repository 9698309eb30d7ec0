package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0events"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/metrics"
)

// Waits of a subscription that Subscribe returned from (it waits out 429s, 5xx and ordinary
// closes itself).
const (
	// eventsRefusedWait: Auth0 refused the stream (401/403): looked at again after this, or at
	// once when the tenant changes.
	eventsRefusedWait = time.Minute
	// eventsMaxWait caps the backoff after other failures (400, a token error).
	eventsMaxWait = 5 * time.Minute
	// eventsTick is how often pending notices are looked at and the offset is written.
	eventsTick = time.Second
	// offsetFlushEvery spaces the writes of a tenant's offset ConfigMap.
	offsetFlushEvery = 10 * time.Second
)

// streamTokens is what a tenant's Management API client gives a stream it does not send itself
// (auth0.Client does).
type streamTokens interface {
	StreamToken(ctx context.Context) (string, error)
	RejectStreamToken()
}

// EventsStatus is what a tenant's EventsReady condition says.
type EventsStatus struct {
	Open    bool
	Reason  string
	Message string
}

// eventsWanted is a tenant's subscription as its spec and client ask for it.
type eventsWanted struct {
	api    ManagementAPI
	domain string
	types  []string
	home   string // namespace of the offset ConfigMap
}

func (w *eventsWanted) equal(o *eventsWanted) bool {
	return w.api == o.api && w.domain == o.domain && w.home == o.home && slices.Equal(w.types, o.types)
}

type eventsRun struct {
	want   eventsWanted
	cancel context.CancelFunc
	done   chan struct{}
}

// Events holds the manager's Auth0 Events API subscriptions, one per tenant with spec.events
// enabled, while the manager is the elected one (it is a leader-election runnable), and the
// notices they produce. A notice enqueues the bindings of its user or connection, whose passes
// then read Auth0 (binding.TriggerAuth0Event). Events only move work earlier: expiry-driven
// renewal does not depend on them.
type Events struct {
	Client    client.Client // the cache, for bindings; writes of offset ConfigMaps
	APIReader client.Reader // offset ConfigMaps, read once per subscription
	Tenants   *TenantClients
	Clock     clock.Clock
	// NewClient builds a stream client (tests); nil means auth0events.New.
	NewClient func(auth0events.Config) (*auth0events.Client, error)

	mu       sync.Mutex
	ctx      context.Context // the elected manager's; nil before Start
	wanted   map[TenantKey]eventsWanted
	running  map[TenantKey]*eventsRun
	status   map[TenantKey]EventsStatus
	boards   map[TenantKey]*noticeBoard
	bindingQ workqueue.TypedRateLimitingInterface[reconcile.Request]
	tenantQ  map[authv1alpha1.TenantKind]workqueue.TypedRateLimitingInterface[reconcile.Request]
}

// NewEvents returns the subscriptions' registry; nothing runs until the manager starts it.
func NewEvents(c client.Client, reader client.Reader, tenants *TenantClients, clk clock.Clock) *Events {
	return &Events{Client: c, APIReader: reader, Tenants: tenants, Clock: clk,
		wanted: map[TenantKey]eventsWanted{}, running: map[TenantKey]*eventsRun{}, status: map[TenantKey]EventsStatus{},
		boards: map[TenantKey]*noticeBoard{}, tenantQ: map[authv1alpha1.TenantKind]workqueue.TypedRateLimitingInterface[reconcile.Request]{}}
}

// NeedLeaderElection: a tenant has one subscription, held by the elected manager (Auth0 limits
// concurrent connections per tenant).
func (e *Events) NeedLeaderElection() bool { return true }

// Start runs the wanted subscriptions until ctx ends, then stops them all and waits for them.
func (e *Events) Start(ctx context.Context) error {
	e.mu.Lock()
	e.ctx = ctx
	for key, w := range e.wanted {
		e.startLocked(key, w)
	}
	e.mu.Unlock()
	<-ctx.Done()
	e.mu.Lock()
	runs := make([]*eventsRun, 0, len(e.running))
	for _, r := range e.running {
		runs = append(runs, r)
	}
	e.running = map[TenantKey]*eventsRun{}
	e.mu.Unlock()
	for _, r := range runs {
		r.cancel()
		<-r.done
	}
	return nil
}

// bindingSource hands the binding controller's queue to the subscriptions.
func (e *Events) bindingSource() source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		e.mu.Lock()
		e.bindingQ = q
		e.mu.Unlock()
		return nil
	})
}

// tenantSource hands a tenant controller's queue to the subscriptions, whose status changes
// reach the tenant's EventsReady condition through it.
func (e *Events) tenantSource(kind authv1alpha1.TenantKind) source.Source {
	return source.Func(func(_ context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request]) error {
		e.mu.Lock()
		e.tenantQ[kind] = q
		e.mu.Unlock()
		return nil
	})
}

// Sync makes the tenant's subscription what want says; nil stops it (events disabled, the
// tenant gone or not ready). A subscription whose client, domain, types or home changed is
// started again.
func (e *Events) Sync(key TenantKey, want *eventsWanted) {
	var stop *eventsRun
	e.mu.Lock()
	if want == nil {
		delete(e.wanted, key)
		delete(e.status, key)
		delete(e.boards, key)
		stop = e.running[key]
		delete(e.running, key)
	} else {
		cur, ok := e.wanted[key]
		if !ok || !cur.equal(want) {
			e.wanted[key] = *want
			stop = e.running[key]
			delete(e.running, key)
			if e.ctx != nil {
				e.startLocked(key, *want)
			}
		}
	}
	e.mu.Unlock()
	if stop != nil {
		stop.cancel()
		<-stop.done
	}
	if want == nil {
		metrics.ForgetAuth0Events(key.String())
	}
}

// Status is what the tenant's EventsReady condition says; ok is false when the subscription
// has not reported yet.
func (e *Events) Status(key TenantKey) (EventsStatus, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.status[key]
	return s, ok
}

// Notice is the latest notice of a binding's user or connection.
func (e *Events) Notice(key TenantKey, b *authv1alpha1.IdPTokenBinding) binding.Notice {
	if e == nil {
		return binding.Notice{}
	}
	e.mu.Lock()
	nb := e.boards[key]
	e.mu.Unlock()
	return nb.get(bindingSubject(b))
}

// bindingSubject is what Auth0 events about the binding's source name.
func bindingSubject(b *authv1alpha1.IdPTokenBinding) string {
	switch {
	case b.Spec.User != nil:
		return eventSubject(b.Spec.User.ID, "")
	case b.Spec.Connection != nil:
		return eventSubject("", b.Spec.Connection.ID)
	}
	return ""
}

// subjectIndexValue is the auth0SubjectIndex value of a binding: its tenant and subject.
func subjectIndexValue(key TenantKey, subject string) string { return key.String() + "|" + subject }

func (e *Events) startLocked(key TenantKey, w eventsWanted) {
	ctx, cancel := context.WithCancel(e.ctx)
	run := &eventsRun{want: w, cancel: cancel, done: make(chan struct{})}
	e.running[key] = run
	nb := e.boards[key]
	if nb == nil {
		nb = newNoticeBoard()
		e.boards[key] = nb
	}
	go func() {
		defer close(run.done)
		(&subscription{e: e, key: key, want: w, board: nb}).run(ctx)
	}()
}

// setStatus records the subscription's state; a change requeues the tenant.
func (e *Events) setStatus(key TenantKey, s EventsStatus) {
	e.mu.Lock()
	prev, ok := e.status[key]
	if _, wanted := e.wanted[key]; !wanted {
		e.mu.Unlock()
		return
	}
	e.status[key] = s
	q := e.tenantQ[key.Kind]
	e.mu.Unlock()
	metrics.SetAuth0EventsSubscribed(key.String(), s.Open)
	if (!ok || prev != s) && q != nil {
		q.Add(reconcile.Request{NamespacedName: key.NamespacedName})
	}
}

// noticed are the bindings an Auth0 event is about, in two groups: one binding of each lineage
// (leads), and the others. A lead's pass reads Auth0 and renews the lineage; its state write
// queues the lineage's other bindings (stateToBindings), which copy the token without reading
// Auth0 again. Queued all at once, the others would only wait for the lineage's lock or their
// tenant's share of the workers, and step back (1,000 logins at 25/s, 10 bindings each: p99
// 54 s from login to all the user's Secrets, 16 s with leads first). The others are queued too, fanOutLag later, in case the lead writes nothing (a lead
// that may no longer use its tenant, say).
type noticed struct {
	leads, others []reconcile.Request
}

// fanOutLag is how long after its lineage's lead a binding an event is about is queued.
const fanOutLag = 2 * time.Second

// bindingsOf are the tenant's subject's bindings (the cache's own objects are not copied);
// none when the cache cannot say.
func (e *Events) bindingsOf(ctx context.Context, key TenantKey, subject string) noticed {
	list := &authv1alpha1.IdPTokenBindingList{}
	if err := e.Client.List(ctx, list, client.MatchingFields{auth0SubjectIndex: subjectIndexValue(key, subject)}, client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "Failed to list the bindings of an Auth0 event", "tenant", key.String())
		return noticed{}
	}
	var n noticed
	led := map[string]bool{}
	for i := range list.Items {
		b := &list.Items[i]
		req := reconcile.Request{NamespacedName: client.ObjectKeyFromObject(b)}
		if lineage := identityOf(key, b).Hash(); !led[lineage] {
			led[lineage] = true
			n.leads = append(n.leads, req)
		} else {
			n.others = append(n.others, req)
		}
	}
	return n
}

func (n noticed) empty() bool { return len(n.leads) == 0 }

// enqueue queues the bindings of a notice on the binding controller's queue: the leads now, the
// others fanOutLag later; all now for a deletion (each binding must drop its own Secret, and
// the lead drops the state the others would have been queued by).
func (e *Events) enqueue(n noticed, deleted bool) {
	e.mu.Lock()
	q := e.bindingQ
	e.mu.Unlock()
	if q == nil {
		return
	}
	for _, r := range n.leads {
		q.Add(r)
	}
	for _, r := range n.others {
		if deleted {
			q.Add(r)
		} else {
			q.AddAfter(r, fanOutLag)
		}
	}
}

// errNoStreamClient: the tenant's client cannot give a stream its token (a test double).
var errNoStreamClient = errors.New("the tenant's Management API client cannot open the events stream")

// describeEventsError is the EventsReady message of a failed subscription.
func describeEventsError(err error, wait time.Duration) EventsStatus {
	switch {
	case auth0events.IsNotAuthorized(err):
		return EventsStatus{Reason: authv1alpha1.ReasonEventsNotAuthorized,
			Message: fmt.Sprintf("Auth0 refused the events stream (%v); grant the scope read:events to the M2M application; trying again in %s", err, wait.Round(time.Second))}
	default:
		return EventsStatus{Reason: authv1alpha1.ReasonEventsUnavailable,
			Message: fmt.Sprintf("The events stream is not open (%v); trying again in %s; tokens are still renewed before they expire", err, wait.Round(time.Second))}
	}
}

// eventsIndexValues names a binding's tenant and subject for the index; bindings without a user
// or connection are not indexed.
func eventsIndexValues(b *authv1alpha1.IdPTokenBinding) []string {
	s := bindingSubject(b)
	if s == "" {
		return nil
	}
	return []string{subjectIndexValue(tenantKeyOf(b), s)}
}

// offsetStoreFor is the tenant's offset ConfigMap.
// Without a home namespace (a ClusterAuth0Tenant of a manager not told its namespace) nothing is
// kept: the stream starts at the latest events.
func (e *Events) offsetStoreFor(key TenantKey, home string) *offsetStore {
	return &offsetStore{reader: e.APIReader, writer: e.Client, tenant: key.String(), foreign: home == "",
		key: types.NamespacedName{Namespace: home, Name: OffsetConfigMapName(key.Name)}}
}
