// Package usercache keeps a tenant's recent Auth0 user reads so that many bindings of one user
// cost one Management API read, within a fixed memory budget.
//
// The budget is the design doc's contract: "the user cache holds at most 1,000 users or 16 MiB
// per tenant, least recently used out". Without it, one namespace binding many large users could
// grow the manager without limit (200 large users grew it by 200 MiB), and that memory is shared
// with every other tenant.
package usercache

import (
	"fmt"
	"sync"
	"time"
	"unsafe"

	"k8s.io/utils/lru"

	"github.com/idptoken/idptoken-operator/internal/auth0"
)

// The design doc's per-tenant bounds.
const (
	DefaultMaxUsers       = 1000
	DefaultMaxBytes int64 = 16 << 20
)

// Options are a cache's reuse window and bounds.
type Options struct {
	// TTL is how long a read may answer later lookups.
	TTL time.Duration
	// SweepEvery spaces the sweeps of reads older than TTL, so that a large sync does not scan
	// the cache on every read while expired reads (and the tokens in them) still leave memory
	// soon after they stop being useful.
	SweepEvery time.Duration
	// MaxUsers and MaxBytes bound the cache; both must be at least 1. MaxBytes is compared with
	// Size, an estimate; a user larger than MaxBytes is not cached at all.
	MaxUsers int
	MaxBytes int64
}

// Cache holds recent user reads, least recently used out when either bound is exceeded. It is
// safe for concurrent use.
//
// The LRU order and the count bound come from k8s.io/utils/lru; this type adds the byte budget
// and an index by id, which the LRU does not offer and the sweep needs (it must visit every
// read, since reads are ordered by last use, not by age).
type Cache struct {
	opts Options

	// mu guards everything below, and every call into lru: the eviction callback runs inside
	// those calls and updates entries and bytes without taking mu again.
	mu      sync.Mutex
	lru     *lru.Cache
	entries map[string]*entry // the same entries as lru, by id
	bytes   int64             // sum of the sizes of entries
	swept   time.Time
}

type entry struct {
	user *auth0.User
	at   time.Time // when the read was made
	size int64
}

// New returns an empty cache. It panics when a bound is below 1: an unbounded cache (which
// lru.New(0) would be) is exactly what this package exists to prevent.
func New(opts Options) *Cache {
	if opts.MaxUsers < 1 || opts.MaxBytes < 1 {
		panic(fmt.Sprintf("usercache: MaxUsers (%d) and MaxBytes (%d) must be at least 1", opts.MaxUsers, opts.MaxBytes))
	}
	c := &Cache{opts: opts, entries: map[string]*entry{}}
	c.lru = lru.NewWithEvictionFunc(opts.MaxUsers, func(key lru.Key, value any) {
		// Called with c.mu held, from inside Add, Remove or RemoveOldest.
		delete(c.entries, key.(string))
		c.bytes -= value.(*entry).size
	})
	return c
}

// Get returns the read of id if it is younger than TTL and was made after notBefore. A binding
// that wants something newer than what it holds passes the time it got that, so a recent read
// never hides a new login from it. Only a read that answers counts as a use for the LRU order:
// a refused one is about to be replaced by Add, or is of no use to this caller.
func (c *Cache) Get(id string, now, notBefore time.Time) (*auth0.User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[id]
	if !ok {
		return nil, false
	}
	// Whole seconds, as notBefore usually comes from a persisted time: the read that produced a
	// held token must never count as newer than it. A notBefore with a fraction of a second (an
	// Auth0 event's arrival) is exact.
	at := e.at
	if notBefore.Nanosecond() == 0 {
		at = at.Truncate(time.Second)
	}
	if now.Sub(e.at) >= c.opts.TTL || !at.After(notBefore) {
		return nil, false
	}
	c.lru.Get(id) // moves it to the front
	return e.user, true
}

// Add records a read of id made at now, replacing any earlier one, and evicts the least
// recently used reads until both bounds hold. A user larger than MaxBytes is not cached, and
// the earlier read of id goes too, so that no caller is answered with a read older than the
// newest one made. Every SweepEvery, Add also drops the reads older than TTL.
func (c *Cache) Add(id string, u *auth0.User, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) >= c.opts.SweepEvery {
		for k, e := range c.entries {
			if now.Sub(e.at) >= c.opts.TTL {
				c.lru.Remove(k) // deleting from entries while ranging over it is allowed
			}
		}
		c.swept = now
	}
	c.lru.Remove(id) // lru.Add would replace the value without telling the byte count
	e := &entry{user: u, at: now, size: Size(id, u)}
	if e.size > c.opts.MaxBytes {
		return
	}
	c.entries[id] = e
	c.bytes += e.size
	c.lru.Add(id, e) // evicts the least recently used beyond MaxUsers
	// The new entry is at the front and fits alone, so this never evicts it.
	for c.bytes > c.opts.MaxBytes && c.lru.Len() > 1 {
		c.lru.RemoveOldest()
	}
}

// Remove drops the read of id: Auth0 said it changed (an event), or that it is gone (404).
func (c *Cache) Remove(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lru.Remove(id)
}

// Len is the number of reads held.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}

// Bytes is the sum of the estimated sizes of the reads held.
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Fixed costs of a cached read, in bytes, on the platform the operator runs on.
const (
	// entryOverhead is what a read costs besides its strings and identities: the User with its
	// LastLogin, our entry, and the bookkeeping of the LRU (list element, its entry, a map slot
	// with the id's interface header) and of our index (a map slot with the id's header). The
	// bookkeeping part is an estimate of Go's map and list layouts; it is small next to tokens.
	entryOverhead = int64(unsafe.Sizeof(auth0.User{})+unsafe.Sizeof(time.Time{})+unsafe.Sizeof(entry{})) + bookkeeping
	bookkeeping   = 128
	// identitySize is the fixed part of one identity in the User's backing array.
	identitySize = int64(unsafe.Sizeof(auth0.Identity{}))
)

// Size estimates the memory a cached read of id holds: the lengths of its strings (the id it
// was asked by, the user's id, and per identity its connection, provider, IdP user id and
// tokens) plus the fixed size of each identity and entryOverhead. Tokens dominate: an IdP
// access token is often 1 to 4 KiB, a whole user rarely a few KiB more than its tokens. The
// estimate ignores the allocator rounding each allocation up to its size class (or, above
// 32 KiB, to whole 8 KiB pages), so memory held can exceed MaxBytes by that rounding: a bound
// within a small factor, which is what the budget needs, not an exact account.
func Size(id string, u *auth0.User) int64 {
	n := entryOverhead + int64(len(id))
	if u == nil {
		return n
	}
	n += int64(len(u.UserID)) + int64(cap(u.Identities))*identitySize
	for _, i := range u.Identities {
		n += int64(len(i.Connection) + len(i.Provider) + len(i.UserID) +
			len(i.AccessToken) + len(i.AccessTokenSecret) + len(i.RefreshToken))
	}
	return n
}
