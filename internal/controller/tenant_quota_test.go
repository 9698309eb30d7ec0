package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
)

// TestM2MQuotaExhaustedSaysUntilWhenTokenRequestsAreHeld: the condition appears when Auth0 holds
// the client's token requests, names the time and the buckets, turns False once tokens are
// issued again, and each transition is one Event.
func TestM2MQuotaExhaustedSaysUntilWhenTokenRequestsAreHeld(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	rec := events.NewFakeRecorder(10)
	r := &TenantReconciler{Clock: clocktesting.NewFakeClock(now), Recorder: rec}
	tenant := &authv1alpha1.Auth0Tenant{ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: "team-a", Generation: 1}}
	cond := func() *metav1.Condition {
		return meta.FindStatusCondition(tenant.Status.Conditions, authv1alpha1.ConditionM2MQuotaExhausted)
	}

	r.setQuota(tenant, auth0.QuotaState{})
	if cond() != nil || len(rec.Events) != 0 {
		t.Fatal("a tenant whose quota was never spent has no M2MQuotaExhausted condition and no Event")
	}

	until := now.Add(2 * time.Hour)
	spent := auth0.QuotaState{HeldUntil: until, Reason: auth0.QuotaReasonQuota,
		Buckets: []auth0.QuotaBucket{{Entity: "client", Name: "per_hour", Quota: 100, Remaining: 0, ResetAt: until}}}
	r.setQuota(tenant, spent)
	c := cond()
	if c == nil || c.Status != metav1.ConditionTrue || c.Reason != authv1alpha1.ReasonQuotaExhausted {
		t.Fatalf("held: condition = %+v, want True/QuotaExhausted", c)
	}
	for _, want := range []string{until.Format(time.RFC3339), "client/per_hour: 0 of 100 left"} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("message %q does not say %q", c.Message, want)
		}
	}
	if quotaHeld(spent, now) != 2*time.Hour {
		t.Errorf("held for %s, want 2h", quotaHeld(spent, now))
	}
	r.setQuota(tenant, spent)
	if got := len(rec.Events); got != 1 {
		t.Errorf("%d Events after the same hold twice, want 1", got)
	}

	r.setQuota(tenant, auth0.QuotaState{HeldUntil: until, Reason: auth0.QuotaReasonGlobalRateLimit})
	if c := cond(); c.Reason != authv1alpha1.ReasonGlobalRateLimit {
		t.Errorf("global limit: reason %s", c.Reason)
	}

	r.setQuota(tenant, auth0.QuotaState{HeldUntil: now.Add(-time.Second)})
	if c := cond(); c.Status != metav1.ConditionFalse || c.Reason != authv1alpha1.ReasonQuotaAvailable {
		t.Errorf("after the hold: condition = %+v, want False/QuotaAvailable", c)
	}
	if got := len(rec.Events); got != 3 {
		t.Errorf("%d Events, want one per transition (3)", got)
	}
}
