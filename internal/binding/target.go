package binding

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// managedDataKeys are the target Secret keys the operator owns.
var managedDataKeys = []string{
	authv1alpha1.SecretKeyAccessToken, authv1alpha1.SecretKeyExpiresAt,
	authv1alpha1.SecretKeyRefreshToken, authv1alpha1.SecretKeyAccessTokenSecret,
}

// Target is the content of the binding's Secret for a held token.
type Target struct {
	Data        map[string][]byte
	Labels      map[string]string
	Annotations map[string]string
	Type        corev1.SecretType
	Owned       bool // carries a controller ownerReference to the binding
}

// stringMap copies a map of string-like values into a new, non-nil map.
func stringMap[V ~string](m map[string]V) map[string]string {
	out := make(map[string]string, len(m)+3)
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

// DesiredTarget is the content of the binding's Secret for the token t: the default keys, or
// what spec.secret.template renders from t. An error (a template that does not compile or
// render) means nothing may be written: a Secret is never written in part.
func DesiredTarget(b *authv1alpha1.IdPTokenBinding, t *Token) (Target, error) {
	d := Target{
		Data:        defaultData(b, t),
		Labels:      stringMap(b.Spec.Secret.Labels),
		Annotations: stringMap(b.Spec.Secret.Annotations),
		Type:        b.Spec.Secret.Type,
		Owned:       b.Spec.DeletionPolicy != authv1alpha1.DeletionPolicyRetain,
	}
	if tpl := b.Spec.Secret.Template; tpl != nil {
		data, err := renderTemplate(b, t)
		if err != nil {
			return Target{}, err
		}
		if tpl.MergePolicy == authv1alpha1.MergePolicyMerge {
			maps.Copy(d.Data, data)
		} else {
			d.Data = data
		}
		if tpl.Type != "" {
			d.Type = tpl.Type
		}
	}
	if d.Type == "" {
		d.Type = corev1.SecretTypeOpaque
	}
	d.Labels[authv1alpha1.LabelManagedBy] = authv1alpha1.ManagedByValue
	d.Labels[authv1alpha1.LabelBinding] = b.Name
	d.Annotations[authv1alpha1.AnnotationBindingUID] = string(b.UID)
	if exp := t.Expiry.ExpiresAt; !exp.IsZero() {
		d.Annotations[authv1alpha1.AnnotationExpiresAt] = string(FormatTime(exp))
	}
	if t.Identity.Provider != "" {
		d.Annotations[authv1alpha1.AnnotationProvider] = t.Identity.Provider
	}
	if t.Identity.Connection != "" {
		d.Annotations[authv1alpha1.AnnotationConnection] = t.Identity.Connection
	}
	return d, nil
}

// defaultData is the Secret's data without a template.
func defaultData(b *authv1alpha1.IdPTokenBinding, t *Token) map[string][]byte {
	d := map[string][]byte{authv1alpha1.SecretKeyAccessToken: []byte(t.AccessToken)}
	if exp := t.Expiry.ExpiresAt; !exp.IsZero() {
		d[authv1alpha1.SecretKeyExpiresAt] = FormatTime(exp)
	}
	if b.Spec.Secret.IncludeRefreshToken && t.RefreshToken != "" && !t.RefreshTokenDead {
		d[authv1alpha1.SecretKeyRefreshToken] = []byte(t.RefreshToken)
	}
	if t.AccessTokenSecret != "" {
		d[authv1alpha1.SecretKeyAccessTokenSecret] = []byte(t.AccessTokenSecret)
	}
	return d
}

// TargetUpToDate tells whether the Secret s already has everything the operator would write
// for t, so that it is written only when its content changes. A template that cannot render
// leaves nothing up to date: the write step reports why.
func TargetUpToDate(b *authv1alpha1.IdPTokenBinding, t *Token, s *corev1.Secret) bool {
	want, err := DesiredTarget(b, t)
	return err == nil && TargetMatches(b, want, s)
}

// TargetMatches tells whether the Secret s already has everything of want, the binding's
// DesiredTarget: for a caller that needs want anyway, so the template is rendered once.
func TargetMatches(b *authv1alpha1.IdPTokenBinding, want Target, s *corev1.Secret) bool {
	if s.Type != want.Type || HasControllerRef(s, b) != want.Owned {
		return false
	}
	keys := managedDataKeys
	if b.Spec.Secret.Template != nil {
		keys = slices.Concat(managedDataKeys, slices.Collect(maps.Keys(want.Data)))
	}
	for _, k := range keys {
		// A key the operator writes must hold its value; one it does not must be absent.
		if v, ok := want.Data[k]; (ok && !dataMatches(s, k, v)) || (!ok && hasData(s, k)) {
			return false
		}
	}
	for k, v := range want.Labels {
		if s.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.Annotations {
		if s.Annotations[k] != v {
			return false
		}
	}
	return true
}

// HasControllerRef tells whether s is controlled by the binding b.
func HasControllerRef(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding) bool {
	return b.UID != "" && controlledBy(s.OwnerReferences, b.UID)
}

// ManagedBy tells whether a Secret belongs to the binding: its labels name the binding and it
// carries the binding's UID, as its controller ownerReference (deletionPolicy Delete) or as the
// binding-uid annotation (Retain). Labels alone prove nothing: anyone who may write Secrets in
// the namespace can set them, and a Secret that only carries them is never written, deleted or
// released (SecretConflict).
func ManagedBy(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding) bool {
	return LabelledFor(s, b) &&
		(HasControllerRef(s, b) || (b.UID != "" && s.Annotations[authv1alpha1.AnnotationBindingUID] == string(b.UID)))
}

// LabelledFor tells whether a Secret carries the operator's labels for binding b.
func LabelledFor(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding) bool {
	return s.Labels[authv1alpha1.LabelManagedBy] == authv1alpha1.ManagedByValue &&
		s.Labels[authv1alpha1.LabelBinding] == b.Name
}
