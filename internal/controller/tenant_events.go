package controller

import (
	"slices"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// EventsScope is the Management API scope the Events API stream needs.
const EventsScope = "read:events"

// syncEvents starts, keeps or stops the tenant's events subscription and sets its EventsReady
// condition. api is the tenant's client when it is Ready, nil otherwise; tenant nil means the
// tenant is gone.
func (r *TenantReconciler) syncEvents(key TenantKey, tenant tenantObject, api ManagementAPI, granted []string) {
	if r.Events == nil {
		return
	}
	var types []string
	if tenant != nil {
		types = tenant.TenantSpec().EventsTypes()
	}
	if len(types) == 0 {
		r.Events.Sync(key, nil)
		if tenant != nil {
			meta.RemoveStatusCondition(&tenant.TenantStatus().Conditions, authv1alpha1.ConditionEventsReady)
		}
		return
	}
	c := metav1.Condition{Type: authv1alpha1.ConditionEventsReady, Status: metav1.ConditionFalse, ObservedGeneration: tenant.GetGeneration()}
	switch {
	case api == nil:
		r.Events.Sync(key, nil)
		c.Reason, c.Message = authv1alpha1.ReasonEventsUnavailable, "The tenant is not Ready; the events stream is opened once it is"
	case !slices.Contains(granted, EventsScope):
		r.Events.Sync(key, nil)
		c.Reason, c.Message = authv1alpha1.ReasonEventsNotAuthorized,
			"The M2M application lacks the Management API scope read:events, which the events stream needs; grant it in Auth0 under Applications > APIs > Auth0 Management API"
	default:
		home := tenant.GetNamespace()
		if key.Kind == authv1alpha1.TenantKindCluster {
			home = r.ClusterResourceNamespace
		}
		r.Events.Sync(key, &eventsWanted{api: api, domain: tenant.TenantSpec().Domain, types: types, home: home})
		s, ok := r.Events.Status(key)
		switch {
		case !ok:
			c.Reason, c.Message = authv1alpha1.ReasonEventsUnavailable, "The events stream is being opened"
		case s.Open:
			c.Status, c.Reason, c.Message = metav1.ConditionTrue, s.Reason, s.Message
		default:
			c.Reason, c.Message = s.Reason, s.Message
		}
	}
	conds := &tenant.TenantStatus().Conditions
	prev := meta.FindStatusCondition(*conds, authv1alpha1.ConditionEventsReady)
	if prev == nil || prev.Status != c.Status || prev.Reason != c.Reason {
		kind := "Normal"
		if c.Status != metav1.ConditionTrue {
			kind = "Warning"
		}
		r.Recorder.Eventf(tenant, nil, kind, c.Reason, "SubscribeEvents", "%s", c.Message)
	}
	meta.SetStatusCondition(conds, c)
}
