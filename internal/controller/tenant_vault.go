package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
	"github.com/idptoken/idptoken-operator/internal/tokenvault"
)

// reconcileTokenVault builds the tenant's Token Vault client from spec.tokenVault and reports
// whether it can be used in the TokenVaultReady condition. The check is offline (the key parses
// and is an RSA key of 2048 bits or more); a 403 from Auth0 to a binding's exchange is reported
// here on the next pass as TokenVaultNotAuthorized.
func (r *TenantReconciler) reconcileTokenVault(ctx context.Context, key TenantKey, tenant tenantObject, mgmt auth0.Config) {
	spec := tenant.TenantSpec().TokenVault
	conds := &tenant.TenantStatus().Conditions
	if spec == nil {
		r.Tenants.ForgetVault(key)
		meta.RemoveStatusCondition(conds, authv1alpha1.ConditionTokenVaultReady)
		return
	}
	set := func(status metav1.ConditionStatus, reason, msg string) {
		meta.SetStatusCondition(conds, metav1.Condition{Type: authv1alpha1.ConditionTokenVaultReady, Status: status,
			Reason: reason, Message: msg, ObservedGeneration: tenant.GetGeneration()})
	}
	s := &corev1.Secret{}
	ns := r.credentialsNamespace(tenant)
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: ns, Name: spec.CredentialsSecretRef.Name}, s); err != nil {
		r.Tenants.ForgetVault(key)
		set(metav1.ConditionFalse, authv1alpha1.ReasonTokenVaultCredentialsNotFound,
			fmt.Sprintf("Reading the Token Vault credentials Secret %q in namespace %s: %v", spec.CredentialsSecretRef.Name, ns, client.IgnoreNotFound(err)))
		return
	}
	cfg := tokenvault.Config{
		Domain: mgmt.Domain, CABundle: mgmt.CABundle,
		RequestsPerSecond: float64(max(spec.RateLimit.RequestsPerSecond, 1)), Burst: int(max(spec.RateLimit.Burst, 1)),
	}
	err := cfg.LoadSecretData(s.Data)
	if err == nil {
		err = r.Tenants.EnsureVault(key, cfg)
	}
	if err != nil {
		r.Tenants.ForgetVault(key)
		set(metav1.ConditionFalse, authv1alpha1.ReasonTokenVaultCredentialsInvalid,
			fmt.Sprintf("The Token Vault credentials in Secret %q cannot be used: %v", spec.CredentialsSecretRef.Name, err))
		return
	}
	if why := r.Tenants.VaultRefusal(key); why != "" {
		set(metav1.ConditionFalse, authv1alpha1.ReasonTokenVaultNotAuthorized, why)
		return
	}
	set(metav1.ConditionTrue, authv1alpha1.ReasonTokenVaultConfigured,
		fmt.Sprintf("The Token Vault client %s has a usable private key", cfg.ClientID))
}
