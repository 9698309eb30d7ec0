package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReasonInvalidTemplate: spec.secret.template does not parse or does not render; the Secret was
// not written (a Secret written before keeps its content).
const ReasonInvalidTemplate = "InvalidTemplate"

// MergePolicy says which keys a templated Secret holds.
// +kubebuilder:validation:Enum=Replace;Merge
type MergePolicy string

const (
	// MergePolicyReplace: only the template's keys.
	MergePolicyReplace MergePolicy = "Replace"
	// MergePolicyMerge: the template's keys and the default keys (access_token, expires_at, ...);
	// a template key of the same name wins.
	MergePolicyMerge MergePolicy = "Merge"
)

// SecretTemplate shapes the Secret's data for the app that reads it.
type SecretTemplate struct {
	// type of the Secret; when set, it replaces spec.secret.type. Besides Opaque and custom
	// types, kubernetes.io/dockerconfigjson, kubernetes.io/dockercfg and kubernetes.io/basic-auth
	// are allowed: a template can write their keys.
	// +optional
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('kubernetes.io/') || self in ['kubernetes.io/dockerconfigjson', 'kubernetes.io/dockercfg', 'kubernetes.io/basic-auth']",message="spec.secret.template.type may be Opaque, a custom type, kubernetes.io/dockerconfigjson, kubernetes.io/dockercfg or kubernetes.io/basic-auth"
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('bootstrap.kubernetes.io/')",message="spec.secret.template.type must not be a bootstrap token type"
	Type corev1.SecretType `json:"type,omitempty"`

	// mergePolicy: Replace writes only the template's keys; Merge writes them with the default
	// keys.
	// +optional
	// +kubebuilder:default=Replace
	MergePolicy MergePolicy `json:"mergePolicy,omitempty"`

	// data maps each key of the Secret to a Go text/template. Fields: .AccessToken, .ExpiresAt
	// (a time), .TokenType, .Scope, .AccessTokenSecret, .Provider, .Connection, and
	// .RefreshToken with includeRefreshToken only. Functions: b64enc, b64dec, toJson, quote,
	// upper, lower, trim, default, rfc3339, unixEpoch.
	// +required
	// +kubebuilder:validation:MinProperties=1
	// +kubebuilder:validation:MaxProperties=32
	// +kubebuilder:validation:XValidation:rule="self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z0-9]+$'))",message="spec.secret.template.data keys must be valid Secret keys: letters, digits, '-', '_' and '.', at most 253 characters"
	Data map[string]TemplateText `json:"data"`
}

// TemplateText is one key's Go text/template.
// +kubebuilder:validation:MaxLength=8192
type TemplateText string

// RolloutRestartKind is a kind of workload the operator can restart.
// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;Rollout
type RolloutRestartKind string

const (
	RolloutRestartDeployment  RolloutRestartKind = "Deployment"
	RolloutRestartStatefulSet RolloutRestartKind = "StatefulSet"
	RolloutRestartDaemonSet   RolloutRestartKind = "DaemonSet"
	// RolloutRestartRollout is an Argo Rollout (argoproj.io/v1alpha1), when its CRD is served.
	RolloutRestartRollout RolloutRestartKind = "Rollout"
)

// RolloutRestartTarget names workloads, in the binding's namespace, restarted when the token in
// the Secret changes: by name, or by label selector (workloads created later included).
// +kubebuilder:validation:XValidation:rule="has(self.name) != has(self.selector)",message="a rollout restart target names exactly one of name or selector"
type RolloutRestartTarget struct {
	// kind of the workload.
	// +required
	Kind RolloutRestartKind `json:"kind"`

	// name of the workload.
	// +optional
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name,omitempty"`

	// selector picks workloads of the kind by their labels.
	// +optional
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}
