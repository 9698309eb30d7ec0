package controller

import (
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
)

// quotaHeld is how long the tenant's client holds its M2M token requests from now; 0 when it
// does not.
func quotaHeld(q auth0.QuotaState, now time.Time) time.Duration {
	if q.HeldUntil.IsZero() || !q.HeldUntil.After(now) {
		return 0
	}
	return q.HeldUntil.Sub(now)
}

// setQuota keeps the tenant's M2MQuotaExhausted condition: True while Auth0 refuses new M2M
// tokens to the client, with the time the operator asks again; False once it issues them again.
// A tenant whose quota was never spent has no such condition.
func (r *TenantReconciler) setQuota(t tenantObject, q auth0.QuotaState) {
	conds := &t.TenantStatus().Conditions
	now := r.Clock.Now()
	prev := meta.FindStatusCondition(*conds, authv1alpha1.ConditionM2MQuotaExhausted)
	c := metav1.Condition{Type: authv1alpha1.ConditionM2MQuotaExhausted, ObservedGeneration: t.GetGeneration()}
	if quotaHeld(q, now) > 0 {
		c.Status, c.Reason = metav1.ConditionTrue, authv1alpha1.ReasonQuotaExhausted
		what := "its machine-to-machine token quota is spent"
		switch q.Reason {
		case auth0.QuotaReasonGlobalRateLimit:
			c.Reason, what = authv1alpha1.ReasonGlobalRateLimit, "its global limit on /oauth/token was reached"
		case auth0.QuotaReasonRateLimit:
			what = "it rate-limited /oauth/token"
		}
		c.Message = fmt.Sprintf("Auth0 refuses new Management API tokens (%s)%s; every token request is held until %s, and the token held serves until it expires",
			what, bucketsText(q.Buckets), q.HeldUntil.UTC().Format(time.RFC3339))
	} else {
		if prev == nil {
			return
		}
		c.Status, c.Reason = metav1.ConditionFalse, authv1alpha1.ReasonQuotaAvailable
		c.Message = "Auth0 issues Management API tokens to the client" + bucketsText(q.Buckets)
	}
	if prev == nil || prev.Status != c.Status || prev.Reason != c.Reason {
		kind := "Normal"
		if c.Status == metav1.ConditionTrue {
			kind = "Warning"
		}
		r.Recorder.Eventf(t, nil, kind, c.Reason, "Authenticate", "%s", c.Message)
	}
	meta.SetStatusCondition(conds, c)
}

// bucketsText renders the quota buckets Auth0 last reported, such as " (client/per_hour: 0 of
// 100 left, resets 2026-12-04T10:00:00Z)"; empty when it reported none.
func bucketsText(buckets []auth0.QuotaBucket) string {
	if len(buckets) == 0 {
		return ""
	}
	parts := make([]string, 0, len(buckets))
	for _, b := range buckets {
		s := fmt.Sprintf("%s: %d", b.Label(), b.Remaining)
		if b.Quota > 0 {
			s += fmt.Sprintf(" of %d", b.Quota)
		}
		s += " left"
		if !b.ResetAt.IsZero() {
			s += ", resets " + b.ResetAt.UTC().Format(time.RFC3339)
		}
		parts = append(parts, s)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}
