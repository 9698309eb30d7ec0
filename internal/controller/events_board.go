package controller

import (
	"sync"
	"time"

	"github.com/idptoken/idptoken-operator/internal/binding"
)

// The pacing of Auth0 events (spec.events), per tenant.
const (
	// NoticeSpacing is the least time between two notices of one user or connection: however
	// many events Auth0 sends about it (a burst of profile updates, redeliveries), its bindings
	// read Auth0 at most once per spacing. An event within it is not dropped: it is noticed
	// when the spacing ends. A deletion is noticed at once.
	NoticeSpacing = 30 * time.Second
	// noticeTTL is how long a notice is kept for bindings that have not acted on it yet.
	noticeTTL = time.Hour
	// maxNotices bounds the notices kept per tenant; the oldest settled ones go first.
	maxNotices = 50_000
)

// noticeBoard holds a tenant's latest notice per subject (a user or a connection, eventSubject)
// and paces them. It decides only from the times it is given; the subscriber enqueues the
// bindings of each subject it reports.
type noticeBoard struct {
	mu       sync.Mutex
	subjects map[string]*noticeEntry
}

type noticeEntry struct {
	notice binding.Notice
	// pending: an event arrived within the spacing; it is noticed when the spacing ends.
	pending bool
}

func newNoticeBoard() *noticeBoard { return &noticeBoard{subjects: map[string]*noticeEntry{}} }

// record takes an event about subject received at now, and tells whether it is noticed now.
// Otherwise it is pending, and due reports it once the spacing has passed.
func (nb *noticeBoard) record(subject string, deleted bool, now time.Time) bool {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	e := nb.subjects[subject]
	if e == nil {
		if len(nb.subjects) >= maxNotices {
			nb.evictLocked(now)
		}
		e = &noticeEntry{}
		nb.subjects[subject] = e
	}
	if deleted || e.notice.At.IsZero() || now.Sub(e.notice.At) >= NoticeSpacing {
		e.notice, e.pending = binding.Notice{At: now, Deleted: deleted}, false
		return true
	}
	e.pending = true
	return false
}

// due notices, at now, the pending subjects whose spacing has ended, and returns them.
func (nb *noticeBoard) due(now time.Time) []string {
	nb.mu.Lock()
	defer nb.mu.Unlock()
	var out []string
	for s, e := range nb.subjects {
		switch {
		case e.pending && now.Sub(e.notice.At) >= NoticeSpacing:
			e.notice, e.pending = binding.Notice{At: now}, false
			out = append(out, s)
		case !e.pending && now.Sub(e.notice.At) > noticeTTL:
			delete(nb.subjects, s)
		}
	}
	return out
}

// get returns subject's latest notice; zero when there is none.
func (nb *noticeBoard) get(subject string) binding.Notice {
	if nb == nil {
		return binding.Notice{}
	}
	nb.mu.Lock()
	defer nb.mu.Unlock()
	if e := nb.subjects[subject]; e != nil {
		return e.notice
	}
	return binding.Notice{}
}

// evictLocked makes room: notices older than their TTL first, else the oldest settled one.
func (nb *noticeBoard) evictLocked(now time.Time) {
	var oldest string
	for s, e := range nb.subjects {
		if e.pending {
			continue
		}
		if now.Sub(e.notice.At) > noticeTTL {
			delete(nb.subjects, s)
			return
		}
		if oldest == "" || e.notice.At.Before(nb.subjects[oldest].notice.At) {
			oldest = s
		}
	}
	delete(nb.subjects, oldest)
}

// eventSubject is what Auth0 events about a binding's source name: its user or its connection.
func eventSubject(userID, connectionID string) string {
	if userID != "" {
		return "user:" + userID
	}
	return "connection:" + connectionID
}
