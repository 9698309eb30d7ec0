package binding

import (
	"fmt"
	"time"
)

// Failure is why a pass could not get or write the token it wanted.
type Failure struct {
	Reason  string
	Message string
	// Terminal failures wait for a change (spec, tenant, Secret) instead of backing off.
	Terminal bool
	// NotBefore is the one "look again" of a failure: a terminal failure looks again after that
	// long anyway (0: only on a change); a transient one waits at least that long (a server's
	// Retry-After) on top of its backoff.
	NotBefore time.Duration
}

// Terminal is a failure that waits for a change, or for recheck when that is not 0.
func Terminal(reason string, recheck time.Duration, format string, args ...any) *Failure {
	return &Failure{Reason: reason, Terminal: true, NotBefore: recheck, Message: fmt.Sprintf(format, args...)}
}

// Transient is a failure retried with backoff.
func Transient(reason string, format string, args ...any) *Failure {
	return &Failure{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Backoff bounds for failed attempts.
const (
	backoffBase = 5 * time.Second
	backoffMax  = 5 * time.Minute
)

// Backoff is the wait after the n-th consecutive failure: 5s, 10s, 20s, … up to 5m.
func Backoff(n int32) time.Duration {
	if n < 1 {
		n = 1
	}
	d := backoffBase
	for i := int32(1); i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}

// BackoffJitter is the most a backoff is lengthened, as a fraction of it, so that bindings that
// failed together (one tenant's outage) do not all retry in the same second.
const BackoffJitter = 0.2

// JitteredBackoff is Backoff(n) lengthened by up to BackoffJitter; jitter is in [0, 1).
func JitteredBackoff(n int32, jitter float64) time.Duration {
	d := Backoff(n)
	return d + time.Duration(float64(d)*BackoffJitter*min(max(jitter, 0), 1)).Truncate(time.Millisecond)
}
