package usercache

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/internal/auth0"
)

// start is in the middle of a second, so the whole-second rule of Get is visible.
var start = time.Date(2025, 1, 2, 3, 4, 5, 500_000_000, time.UTC)

const (
	ttl        = 5 * time.Minute
	sweepEvery = 30 * time.Second
	kib        = 1 << 10
	mib        = 1 << 20
)

func newCache(maxUsers int, maxBytes int64) *Cache {
	return New(Options{TTL: ttl, SweepEvery: sweepEvery, MaxUsers: maxUsers, MaxBytes: maxBytes})
}

var (
	tokensMu sync.Mutex
	tokens   = map[int64]string{}
)

// token returns a filler token of n bytes, shared between users so that tests of large budgets
// do not allocate each user's tokens.
func token(n int64) string {
	tokensMu.Lock()
	defer tokensMu.Unlock()
	if _, ok := tokens[n]; !ok {
		tokens[n] = strings.Repeat("t", int(n))
	}
	return tokens[n]
}

// userOfSize returns a user whose Size, cached under its own id, is exactly size bytes.
func userOfSize(t testing.TB, id string, size int64) *auth0.User {
	t.Helper()
	u := &auth0.User{UserID: id, Identities: []auth0.Identity{{Connection: "github", Provider: "github", UserID: "1234567"}}}
	base := Size(id, u)
	if size < base {
		t.Fatalf("a user %q cannot be smaller than %d bytes, asked for %d", id, base, size)
	}
	u.Identities[0].AccessToken = token(size - base)
	if got := Size(id, u); got != size {
		t.Fatalf("Size = %d, want %d", got, size)
	}
	return u
}

// held lists the ids in the cache, sorted, after checking that its two structures and its byte
// count agree and that both bounds hold.
func held(t *testing.T, c *Cache) []string {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var sum int64
	ids := make([]string, 0, len(c.entries))
	for id, e := range c.entries {
		if e.size != Size(id, e.user) {
			t.Errorf("%s: recorded size %d, Size says %d", id, e.size, Size(id, e.user))
		}
		if _, ok := c.lru.Get(id); !ok {
			t.Errorf("%s is indexed but not in the LRU", id)
		}
		sum += e.size
		ids = append(ids, id)
	}
	if n := c.lru.Len(); n != len(c.entries) {
		t.Errorf("the LRU holds %d reads, the index %d", n, len(c.entries))
	}
	if sum != c.bytes {
		t.Errorf("bytes = %d, the entries add up to %d", c.bytes, sum)
	}
	if c.bytes > c.opts.MaxBytes || len(c.entries) > c.opts.MaxUsers {
		t.Errorf("%d reads of %d bytes exceed the bounds (%d, %d)", len(c.entries), c.bytes, c.opts.MaxUsers, c.opts.MaxBytes)
	}
	slices.Sort(ids)
	return ids
}

// op is one step of a scenario: at a time after start, add a read of a user of an exact size,
// or look one up.
type op struct {
	at     time.Duration
	add    string
	size   int64 // of the added user; 0 means 1 KiB
	get    string
	refuse bool // the lookup's notBefore is after every read, so it must miss
	hit    bool // the lookup's expected answer
}

func TestBoundsAndOrder(t *testing.T) {
	adds := func(size int64, ids ...string) []op {
		ops := make([]op, 0, len(ids))
		for _, id := range ids {
			ops = append(ops, op{add: id, size: size})
		}
		return ops
	}
	seq := func(parts ...[]op) []op { return slices.Concat(parts...) }
	tests := map[string]struct {
		maxUsers int
		maxBytes int64
		ops      []op
		want     []string
	}{
		"count: the least recently used goes": {
			maxUsers: 3, maxBytes: mib,
			ops:  adds(0, "u1", "u2", "u3", "u4"),
			want: []string{"u2", "u3", "u4"},
		},
		"count: a read that answers is a use": {
			maxUsers: 3, maxBytes: mib,
			ops:  seq(adds(0, "u1", "u2", "u3"), []op{{get: "u1", hit: true}, {add: "u4"}}),
			want: []string{"u1", "u3", "u4"},
		},
		"count: a refused lookup is not a use": {
			maxUsers: 3, maxBytes: mib,
			ops:  seq(adds(0, "u1", "u2", "u3"), []op{{get: "u1", refuse: true}, {add: "u4"}}),
			want: []string{"u2", "u3", "u4"},
		},
		"count: replacing a read is a use": {
			maxUsers: 3, maxBytes: mib,
			ops:  adds(0, "u1", "u2", "u3", "u1", "u4"),
			want: []string{"u1", "u3", "u4"},
		},
		"count: the default bound is 1,000 users": {
			maxUsers: DefaultMaxUsers, maxBytes: DefaultMaxBytes,
			ops: func() []op {
				var ops []op
				for i := range DefaultMaxUsers + 1 {
					ops = append(ops, op{add: fmt.Sprintf("u%04d", i)})
				}
				return ops
			}(),
			want: func() []string {
				var ids []string
				for i := 1; i <= DefaultMaxUsers; i++ {
					ids = append(ids, fmt.Sprintf("u%04d", i))
				}
				return ids
			}(),
		},
		"bytes: exactly the budget fits": {
			maxUsers: 100, maxBytes: 3 * kib,
			ops:  adds(kib, "u1", "u2", "u3"),
			want: []string{"u1", "u2", "u3"},
		},
		"bytes: the least recently used go until the new read fits": {
			maxUsers: 100, maxBytes: 3 * kib,
			ops:  adds(kib, "u1", "u2", "u3", "u4"),
			want: []string{"u2", "u3", "u4"},
		},
		"bytes: a read that answers is a use": {
			maxUsers: 100, maxBytes: 3 * kib,
			ops:  seq(adds(kib, "u1", "u2", "u3"), []op{{get: "u1", hit: true}, {add: "u4"}}),
			want: []string{"u1", "u3", "u4"},
		},
		"bytes: one large read evicts several small ones": {
			maxUsers: 100, maxBytes: 4 * kib,
			ops:  seq(adds(kib, "u1", "u2", "u3", "u4"), []op{{add: "u5", size: 5 * kib / 2}}),
			want: []string{"u4", "u5"},
		},
		"bytes: a replaced read counts at its new size": {
			maxUsers: 100, maxBytes: 3 * kib,
			ops:  seq(adds(kib, "u1", "u2"), []op{{add: "u1", size: 2 * kib}, {add: "u3"}}),
			want: []string{"u1", "u3"},
		},
		"bytes: 200 users of 1 MiB hold 16 MiB, not 200": {
			maxUsers: DefaultMaxUsers, maxBytes: DefaultMaxBytes,
			ops: func() []op {
				var ops []op
				for i := range 200 {
					ops = append(ops, op{add: fmt.Sprintf("u%03d", i), size: mib})
				}
				return ops
			}(),
			want: func() []string {
				var ids []string
				for i := 200 - 16; i < 200; i++ {
					ids = append(ids, fmt.Sprintf("u%03d", i))
				}
				return ids
			}(),
		},
		"oversize: a user bigger than 16 MiB is not cached at all": {
			maxUsers: DefaultMaxUsers, maxBytes: DefaultMaxBytes,
			ops:  []op{{add: "u1"}, {add: "u2", size: DefaultMaxBytes + 1}, {get: "u2", hit: false}, {get: "u1", hit: true}},
			want: []string{"u1"},
		},
		"oversize: it takes the earlier read of its id with it": {
			maxUsers: DefaultMaxUsers, maxBytes: DefaultMaxBytes,
			ops:  []op{{add: "u1"}, {add: "u2"}, {add: "u1", size: DefaultMaxBytes + 1}, {get: "u1", hit: false}},
			want: []string{"u2"},
		},
		"oversize: a user of exactly 16 MiB is cached, alone": {
			maxUsers: DefaultMaxUsers, maxBytes: DefaultMaxBytes,
			ops:  []op{{add: "u1"}, {add: "u2", size: DefaultMaxBytes}, {get: "u2", hit: true}},
			want: []string{"u2"},
		},
		"sweep: expired reads leave on the next add": {
			maxUsers: 100, maxBytes: mib,
			ops:  []op{{add: "u1"}, {at: ttl, add: "u2"}},
			want: []string{"u2"},
		},
		"sweep: not sooner than SweepEvery after the last one": {
			maxUsers: 100, maxBytes: mib,
			ops: []op{
				{add: "u1"},
				{at: ttl - 10*time.Second, add: "u2"}, // sweeps; u1 is not expired yet
				{at: ttl + 10*time.Second, add: "u3"}, // 20 s after that sweep: u1 stays, expired
				{at: ttl + 10*time.Second, get: "u1", hit: false},
			},
			want: []string{"u1", "u2", "u3"},
		},
		"sweep: SweepEvery after the last one": {
			maxUsers: 100, maxBytes: mib,
			ops: []op{
				{add: "u1"},
				{at: ttl - 10*time.Second, add: "u2"},
				{at: ttl + 10*time.Second, add: "u3"},
				{at: ttl + 20*time.Second, add: "u4"}, // 30 s after the last sweep
			},
			want: []string{"u2", "u3", "u4"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(start)
			c := newCache(tc.maxUsers, tc.maxBytes)
			added := map[string]*auth0.User{}
			for n, o := range tc.ops {
				clk.SetTime(start.Add(o.at))
				now := clk.Now()
				if o.add != "" {
					size := o.size
					if size == 0 {
						size = kib
					}
					u := userOfSize(t, o.add, size)
					c.Add(o.add, u, now)
					added[o.add] = u
					continue
				}
				notBefore := time.Time{}
				if o.refuse {
					notBefore = now
				}
				u, ok := c.Get(o.get, now, notBefore)
				if ok != o.hit {
					t.Fatalf("step %d: Get(%s) hit = %v, want %v", n, o.get, ok, o.hit)
				}
				if ok && u != added[o.get] {
					t.Fatalf("step %d: Get(%s) answered another read than the last one added", n, o.get)
				}
			}
			if got := held(t, c); !slices.Equal(got, tc.want) {
				t.Errorf("held %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFreshness(t *testing.T) {
	readSecond := start.Truncate(time.Second)
	tests := map[string]struct {
		lookup    string
		after     time.Duration // between the read and the lookup
		notBefore time.Time
		want      bool
	}{
		"a fresh read, nothing held":             {after: 0, want: true},
		"just under the TTL":                     {after: ttl - time.Nanosecond, want: true},
		"at the TTL":                             {after: ttl, want: false},
		"beyond the TTL":                         {after: ttl + time.Minute, want: false},
		"the held token is from a second before": {after: time.Minute, notBefore: readSecond.Add(-time.Second), want: true},
		"the held token is from the read's second, persisted in whole seconds": {
			after: time.Minute, notBefore: readSecond, want: false,
		},
		"the held token is from the read's own instant": {after: time.Minute, notBefore: start, want: false},
		"the held token is newer than the read":         {after: time.Minute, notBefore: start.Add(time.Minute), want: false},
		"another user":                                  {lookup: "u2", after: 0, want: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clk := clocktesting.NewFakeClock(start)
			c := newCache(DefaultMaxUsers, DefaultMaxBytes)
			u := userOfSize(t, "u1", kib)
			c.Add("u1", u, clk.Now())
			clk.Step(tc.after)
			id := tc.lookup
			if id == "" {
				id = "u1"
			}
			got, ok := c.Get(id, clk.Now(), tc.notBefore)
			if ok != tc.want {
				t.Fatalf("Get hit = %v, want %v", ok, tc.want)
			}
			if ok && got != u {
				t.Fatal("Get answered another read than the one added")
			}
			if !ok && got != nil {
				t.Fatal("a miss answered a user")
			}
		})
	}
}

func TestSize(t *testing.T) {
	empty := Size("", &auth0.User{})
	tests := map[string]struct {
		id   string
		user *auth0.User
		want int64
	}{
		"no user (kept as before: a nil read is cached too)": {id: "u", user: nil, want: empty + 1},
		"the id asked and the id answered both count": {
			id: "auth0|1", user: &auth0.User{UserID: "auth0|1"}, want: empty + 14,
		},
		"every string of every identity counts, and its fixed part": {
			id: "u",
			user: &auth0.User{UserID: "u", Identities: []auth0.Identity{
				{Connection: "conn", Provider: "prov", UserID: "42", AccessToken: strings.Repeat("a", 1000),
					AccessTokenSecret: "sec", RefreshToken: strings.Repeat("r", 500), ExpiresIn: 3600},
				{Connection: "c2", Provider: "p2", UserID: "7"},
			}},
			want: empty + 2 + 2*identitySize + (4 + 4 + 2 + 1000 + 3 + 500) + (2 + 2 + 1),
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Size(tc.id, tc.user); got != tc.want {
				t.Errorf("Size = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestNewRefusesUnboundedCaches(t *testing.T) {
	for name, o := range map[string]Options{
		"no MaxUsers": {TTL: ttl, MaxBytes: mib},
		"no MaxBytes": {TTL: ttl, MaxUsers: 10},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("New did not panic")
				}
			}()
			New(o)
		})
	}
}

// TestConcurrentUse is for the race detector: lookups, adds, sweeps and evictions from many
// goroutines must leave the index, the LRU and the byte count in agreement.
func TestConcurrentUse(t *testing.T) {
	c := newCache(20, 30*kib)
	users := make([]*auth0.User, 50)
	for i := range users {
		users[i] = userOfSize(t, fmt.Sprintf("u%02d", i), kib+int64(i)*64)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for n := range 500 {
				i := (g*31 + n*7) % len(users)
				now := start.Add(time.Duration(n) * time.Second)
				if _, ok := c.Get(users[i].UserID, now, time.Time{}); !ok {
					c.Add(users[i].UserID, users[i], now)
				}
			}
		})
	}
	wg.Wait()
	held(t, c)
}

func TestAnEventsArrivalIsComparedExactlyAndRemoveForgets(t *testing.T) {
	c := New(Options{TTL: time.Minute, SweepEvery: time.Minute, MaxUsers: 10, MaxBytes: 1 << 20})
	t0 := time.Date(2026, 12, 5, 10, 0, 5, 0, time.UTC)
	c.Add("u", &auth0.User{UserID: "u"}, t0.Add(300*time.Millisecond))
	now := t0.Add(time.Second)
	if _, ok := c.Get("u", now, t0.Add(100*time.Millisecond)); !ok {
		t.Error("a read 0.2 s after an event's arrival, in the same second, was not served: every binding of the user would read again")
	}
	if _, ok := c.Get("u", now, t0.Add(500*time.Millisecond)); ok {
		t.Error("a read 0.2 s before an event's arrival was served: it may hide the new login")
	}
	if _, ok := c.Get("u", now, t0); ok {
		t.Error("a whole-second notBefore (a persisted time) served a read of the same second")
	}
	c.Remove("u")
	if _, ok := c.Get("u", now, time.Time{}); ok || c.Len() != 0 {
		t.Error("Remove left the read")
	}
	c.Remove("absent") // no panic
}
