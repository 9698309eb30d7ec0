package binding

import (
	"strings"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// A manager claims an identity's refresh on its state Secret (an optimistic write of the
// refresh-claim annotation) before it sends the refresh token to the IdP, so that at most one
// refresh of an identity is in flight across every manager: shards with other label selectors,
// a new leader, a restarted process. The write of the refreshed state gives the claim back.
const (
	// ClaimTTL bounds a claim whose holder died: longer than any refresh (refreshTimeout).
	ClaimTTL = 60 * time.Second
	// BusyRetry is how soon a pass that found the claim held, or its tenant's share of the
	// workers taken, looks again (plus the pass's jitter, up to 20 %).
	BusyRetry = 2 * time.Second
)

// Claim is a manager's claim on an identity's refresh.
type Claim struct {
	Holder string
	Until  time.Time
}

// String renders the claim as the annotation's value: "<holder> <RFC 3339 time>".
func (c Claim) String() string {
	return c.Holder + " " + c.Until.UTC().Format(time.RFC3339)
}

// ParseClaim reads a claim annotation; the zero Claim for none or one that does not parse.
func ParseClaim(v string) Claim {
	holder, until, ok := strings.Cut(v, " ")
	t, err := time.Parse(time.RFC3339, until)
	if !ok || holder == "" || err != nil {
		return Claim{}
	}
	return Claim{Holder: holder, Until: t}
}

// NewClaim is holder's claim made at now.
func NewClaim(holder string, now time.Time) Claim {
	return Claim{Holder: holder, Until: now.Add(ClaimTTL).Truncate(time.Second)}
}

// CanClaim tells whether holder may claim the refresh of the identity whose state Secret has
// these annotations: nobody else holds a live claim. A claim that ends further ahead than
// ClaimTTL was not made by a manager and counts as none.
func CanClaim(annotations map[string]string, holder string, now time.Time) bool {
	c := ParseClaim(annotations[authv1alpha1.AnnotationRefreshClaim])
	live := now.Before(c.Until) && !c.Until.After(now.Add(ClaimTTL+time.Second))
	return c.Holder == "" || c.Holder == holder || !live
}
