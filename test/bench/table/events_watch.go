package main

import (
	"context"
	"crypto/sha256"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// tokenKey is what the events row keeps of an access token: its SHA-256, so that no token is
// held where a print could reach it.
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// eventsWatch follows, with watches, the bindings of the namespace (each one's Ready
// condition and when it last became Ready=True/Synced), the operator's target Secrets (when
// each access token was first seen in one, each Secret's current token, and when a Secret was
// deleted) and its refresh-state Secrets (how often each was written).
type eventsWatch struct {
	mu          sync.Mutex
	reason      map[string]string    // binding → "Status/Reason" of Ready
	readyAt     map[string]time.Time // binding → when it last became True/Synced
	tokenAt     map[tokenKey]time.Time
	current     map[string]tokenKey  // Secret → its access token
	goneAt      map[string]time.Time // Secret → when its deletion was seen
	stateWrites map[string]int       // refresh-state Secret → creates and updates seen
	lists       int                  // lists of the three watches (each starts with one)
	// expiry is when the simulator says an access token expires (zero if unknown): a token's
	// expiry tells when it was minted, the lifetime before it.
	expiry  func(token string) time.Time
	sighted map[string][]sighting // Secret → each new token seen in it, in order
}

// sighting is a token first seen in a Secret at a time, and its expiry.
type sighting struct{ at, expiry time.Time }

func newEventsWatch(expiry func(string) time.Time) *eventsWatch {
	return &eventsWatch{reason: map[string]string{}, readyAt: map[string]time.Time{}, tokenAt: map[tokenKey]time.Time{},
		current: map[string]tokenKey{}, goneAt: map[string]time.Time{}, stateWrites: map[string]int{},
		expiry: expiry, sighted: map[string][]sighting{}}
}

// simExpiry is the simulator's expiry of an access token; zero for one it did not issue.
func (c *cluster) simExpiry(token string) time.Time {
	at, _ := c.sim.AccessTokenValid(token)
	return at
}

func (c *cluster) watchEvents(ctx context.Context) *eventsWatch {
	w := newEventsWatch(c.simExpiry)
	target, _ := labels.Parse(authv1alpha1.LabelManagedBy + "=" + authv1alpha1.ManagedByValue + ",!" + authv1alpha1.LabelRole)
	state := client.MatchingLabels{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState}
	go c.follow(ctx, &authv1alpha1.IdPTokenBindingList{}, []client.ListOption{client.InNamespace(c.ns)}, w.seeBinding, w.listed)
	go c.follow(ctx, &corev1.SecretList{}, []client.ListOption{client.InNamespace(c.ns), client.MatchingLabelsSelector{Selector: target}}, w.seeSecret, w.listed)
	go c.follow(ctx, &corev1.SecretList{}, []client.ListOption{client.InNamespace(c.ns), state}, w.seeState, w.listed)
	return w
}

// follow lists, then watches, the objects of list, handing every change to see (and every
// listed object, with watch.Added); it lists again when the watch ends with an error, calling
// listed, and stops with ctx.
func (c *cluster) follow(ctx context.Context, list client.ObjectList, opts []client.ListOption, see func(watch.EventType, client.Object), listed func()) {
	rv := ""
	for ctx.Err() == nil {
		if rv == "" {
			if err := c.k8s.List(ctx, list, opts...); err != nil {
				time.Sleep(time.Second)
				continue
			}
			items, err := meta.ExtractList(list)
			if err != nil {
				return
			}
			listed()
			for _, it := range items {
				if o, ok := it.(client.Object); ok {
					see(watch.Added, o)
				}
			}
			rv = list.GetResourceVersion()
		}
		wopts := append(append([]client.ListOption{}, opts...), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
		wi, err := c.k8s.Watch(ctx, list, wopts...)
		if err != nil {
			rv = ""
			time.Sleep(time.Second)
			continue
		}
		for ev := range wi.ResultChan() {
			o, ok := ev.Object.(client.Object)
			switch {
			case ev.Type == watch.Error || !ok:
				rv = ""
			case ev.Type == watch.Bookmark:
				rv = o.GetResourceVersion()
			default:
				rv = o.GetResourceVersion()
				see(ev.Type, o)
			}
		}
		wi.Stop()
	}
}

func (w *eventsWatch) seeBinding(t watch.EventType, o client.Object) {
	b, ok := o.(*authv1alpha1.IdPTokenBinding)
	if !ok || t == watch.Deleted {
		return
	}
	now, reason := time.Now(), readyReason(b.Status.Conditions)
	w.mu.Lock()
	defer w.mu.Unlock()
	if reason == readySynced && w.reason[b.Name] != readySynced {
		w.readyAt[b.Name] = now
	}
	w.reason[b.Name] = reason
}

func (w *eventsWatch) seeSecret(t watch.EventType, o client.Object) {
	s, ok := o.(*corev1.Secret)
	if !ok {
		return
	}
	now := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if t == watch.Deleted {
		w.goneAt[s.Name] = now
		delete(w.current, s.Name)
		return
	}
	token := string(s.Data[authv1alpha1.SecretKeyAccessToken])
	k := keyOf(token)
	if prev, ok := w.current[s.Name]; !ok || prev != k {
		w.sighted[s.Name] = append(w.sighted[s.Name], sighting{at: now, expiry: w.expiry(token)})
	}
	w.current[s.Name] = k
	if _, seen := w.tokenAt[k]; !seen {
		w.tokenAt[k] = now
	}
}

// renewedAt is when Secret name was first seen, at or after since, with a token that expires
// no earlier than expiry: a token minted at or after the one that expires then.
func (w *eventsWatch) renewedAt(name string, since, expiry time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return firstRenewal(w.sighted[name], since, expiry)
}

// seeState counts the writes of refresh-state Secrets (a listed one counts as one too).
func (w *eventsWatch) seeState(t watch.EventType, o client.Object) {
	if t == watch.Deleted {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stateWrites[o.GetName()]++
}

func (w *eventsWatch) listed() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lists++
}

// stateSnapshot is a copy of the refresh-state Secrets' write counts, and the watches' lists.
func (w *eventsWatch) stateSnapshot() (map[string]int, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.stateWrites), w.lists
}

// readySynced is a binding's Ready condition when its Secret holds a valid token.
const readySynced = "True/" + authv1alpha1.ReasonSynced

// bindingReason is the binding's Ready condition as last seen.
func (w *eventsWatch) bindingReason(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.reason[name]
}

// healedAt is when binding name was seen Ready=True/Synced, after since, with token k in its
// Secret: the later of the two; false while either is missing.
func (w *eventsWatch) healedAt(name string, k tokenKey, since time.Time) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ready, seen := w.readyAt[name], w.tokenAt[k]
	if w.reason[name] != readySynced || ready.Before(since) || seen.IsZero() || w.current[name+"-token"] != k {
		return time.Time{}, false
	}
	return later(ready, seen), true
}

// deletedAt is when Secret name was seen deleted.
func (w *eventsWatch) deletedAt(name string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.goneAt[name]
	return at, ok
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
