// Package kstatus keeps the Reconciling and Stalled conditions that kstatus-aware tools (Flux,
// Argo CD, kpt) read in step with an object's Ready condition.
package kstatus

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// stalledReasons are the Ready=False reasons that no retry can cure: a person must change a
// spec, a tenant, a policy, a Secret or log in again. kstatus reports them as Stalled; the
// others as Reconciling, since the operator keeps trying.
var stalledReasons = map[string]bool{
	authv1alpha1.ReasonCredentialsNotFound:           true,
	authv1alpha1.ReasonMissingScopes:                 true,
	authv1alpha1.ReasonTenantNotFound:                true,
	authv1alpha1.ReasonUserNotFound:                  true,
	authv1alpha1.ReasonConnectionNotFound:            true,
	authv1alpha1.ReasonIdentityNotFound:              true,
	authv1alpha1.ReasonNoAccessToken:                 true,
	authv1alpha1.ReasonSecretConflict:                true,
	authv1alpha1.ReasonTokenExpired:                  true,
	authv1alpha1.ReasonNotPermitted:                  true,
	authv1alpha1.ReasonInvalidRefreshConfig:          true,
	authv1alpha1.ReasonSecretWriteFailed:             true,
	authv1alpha1.ReasonTokenVaultEnabled:             true,
	authv1alpha1.ReasonRefreshUnsupported:            true,
	authv1alpha1.ReasonTokenVaultCredentialsNotFound: true,
	authv1alpha1.ReasonTokenVaultCredentialsInvalid:  true,
}

// Set keeps Reconciling and Stalled in step with Ready: both absent when Ready is True; Stalled
// for a failure that needs a person; Reconciling while the operator is still trying. now is the
// transition time of a condition that changes.
func Set(conds *[]metav1.Condition, generation int64, ready bool, reason, msg string, now time.Time) {
	at := metav1.NewTime(now.Truncate(time.Second))
	switch {
	case ready:
		meta.RemoveStatusCondition(conds, authv1alpha1.ConditionReconciling)
		meta.RemoveStatusCondition(conds, authv1alpha1.ConditionStalled)
	case stalledReasons[reason]:
		meta.RemoveStatusCondition(conds, authv1alpha1.ConditionReconciling)
		meta.SetStatusCondition(conds, metav1.Condition{Type: authv1alpha1.ConditionStalled, Status: metav1.ConditionTrue,
			Reason: reason, Message: msg, ObservedGeneration: generation, LastTransitionTime: at})
	default:
		meta.RemoveStatusCondition(conds, authv1alpha1.ConditionStalled)
		meta.SetStatusCondition(conds, metav1.Condition{Type: authv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue,
			Reason: reason, Message: msg, ObservedGeneration: generation, LastTransitionTime: at})
	}
}
