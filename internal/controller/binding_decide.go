package controller

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// action is what a reconcile must do to the binding's token.
type action int

const (
	actionNone    action = iota // the Secret holds the current token and it is not due
	actionWrite                 // the held token is fine but the target Secret must be (re)written
	actionRefresh               // renew at the IdP with the held refresh token
	actionRead                  // (re)read the token from Auth0
)

func (a action) String() string {
	return [...]string{"none", "write", "refresh", "read"}[a]
}

// decision is the first trigger of the chain that fired.
type decision struct {
	action action
	why    string
}

// trigger is one policy of the chain: it returns a decision when it fires.
type trigger func(in *bindingInput) (decision, bool)

// triggers are tried in order; the first that fires decides. Reading Auth0 is the last resort:
// a held token with a refresh token is renewed at the IdP, never re-read.
var triggers = []trigger{
	func(in *bindingInput) (decision, bool) {
		return decision{actionRead, "no token held yet"}, in.held == nil
	},
	func(in *bindingInput) (decision, bool) {
		return decision{actionRead, "the binding's source changed"}, in.held.Source != sourceOf(in.binding)
	},
	func(in *bindingInput) (decision, bool) {
		if !forceRefreshPending(in.binding) || in.forceHandled {
			return decision{}, false
		}
		if in.held.canRefresh() {
			return decision{actionRefresh, "the force-refresh annotation has a new value"}, true
		}
		return decision{actionRead, "the force-refresh annotation has a new value"}, true
	},
	func(in *bindingInput) (decision, bool) {
		if in.now.Before(in.held.RenewAt) {
			return decision{}, false
		}
		if in.held.canRefresh() {
			return decision{actionRefresh, "the token is due for renewal"}, true
		}
		return decision{actionRead, "the token is due for renewal and there is no usable refresh token"}, true
	},
	func(in *bindingInput) (decision, bool) {
		// Applying again drops what the spec no longer asks for, such as a removed label. Only
		// after a first successful pass: a cache lagging behind that pass is not a spec change.
		st := in.binding.Status
		return decision{actionWrite, "the binding's spec changed"}, st.ObservedGeneration != 0 && in.binding.Generation != st.ObservedGeneration
	},
	func(in *bindingInput) (decision, bool) {
		if in.target == nil {
			return decision{actionWrite, "the Secret does not exist"}, true
		}
		return decision{actionWrite, "the Secret's content differs"}, !targetUpToDate(in.binding, in.held, in.target)
	},
}

// forceRefreshPending tells whether the force-refresh annotation has a value not yet acted on.
func forceRefreshPending(b *authv1alpha1.IdPTokenBinding) bool {
	v := b.Annotations[authv1alpha1.AnnotationForceRefresh]
	return v != "" && v != b.Status.LastForceRefresh
}

// decide runs the trigger chain.
func decide(in *bindingInput) decision {
	for _, t := range triggers {
		if d, ok := t(in); ok {
			return d
		}
	}
	return decision{actionNone, "the Secret is current"}
}

// managedDataKeys are the target Secret keys the operator owns.
var managedDataKeys = []string{
	authv1alpha1.SecretKeyAccessToken, authv1alpha1.SecretKeyExpiresAt,
	authv1alpha1.SecretKeyRefreshToken, authv1alpha1.SecretKeyAccessTokenSecret,
}

// desiredTarget is the content of the target Secret for a held token.
type desiredTarget struct {
	data        map[string][]byte
	labels      map[string]string
	annotations map[string]string
	secretType  corev1.SecretType
	owned       bool // carries a controller ownerReference to the binding
}

// stringMap copies a map of string-like values; nil stays nil.
func stringMap[V ~string](m map[string]V) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = string(v)
	}
	return out
}

func desiredTargetFor(b *authv1alpha1.IdPTokenBinding, h *heldToken) desiredTarget {
	d := desiredTarget{
		data:        map[string][]byte{authv1alpha1.SecretKeyAccessToken: []byte(h.AccessToken)},
		labels:      stringMap(b.Spec.Secret.Labels),
		annotations: stringMap(b.Spec.Secret.Annotations),
		secretType:  b.Spec.Secret.Type,
		owned:       b.Spec.DeletionPolicy != authv1alpha1.DeletionPolicyRetain,
	}
	if d.secretType == "" {
		d.secretType = corev1.SecretTypeOpaque
	}
	if d.labels == nil {
		d.labels = map[string]string{}
	}
	if d.annotations == nil {
		d.annotations = map[string]string{}
	}
	d.labels[authv1alpha1.LabelManagedBy] = authv1alpha1.ManagedByValue
	d.labels[authv1alpha1.LabelBinding] = b.Name
	if exp := h.Expiry.ExpiresAt; !exp.IsZero() {
		d.data[authv1alpha1.SecretKeyExpiresAt] = formatTime(exp)
		d.annotations[authv1alpha1.AnnotationExpiresAt] = string(formatTime(exp))
	}
	if b.Spec.Secret.IncludeRefreshToken && h.RefreshToken != "" && !h.RefreshTokenDead {
		d.data[authv1alpha1.SecretKeyRefreshToken] = []byte(h.RefreshToken)
	}
	if h.AccessTokenSecret != "" {
		d.data[authv1alpha1.SecretKeyAccessTokenSecret] = []byte(h.AccessTokenSecret)
	}
	if h.Identity.Provider != "" {
		d.annotations[authv1alpha1.AnnotationProvider] = h.Identity.Provider
	}
	if h.Identity.Connection != "" {
		d.annotations[authv1alpha1.AnnotationConnection] = h.Identity.Connection
	}
	return d
}

// targetUpToDate tells whether the target Secret already has everything the operator would
// write, so that it is written only when its content changes.
func targetUpToDate(b *authv1alpha1.IdPTokenBinding, h *heldToken, s *corev1.Secret) bool {
	want := desiredTargetFor(b, h)
	if s.Type != want.secretType || hasControllerRef(s, b) != want.owned {
		return false
	}
	for _, k := range managedDataKeys {
		v, ok := want.data[k]
		got, has := s.Data[k]
		if ok != has || string(v) != string(got) {
			return false
		}
	}
	for k, v := range want.labels {
		if s.Labels[k] != v {
			return false
		}
	}
	for k, v := range want.annotations {
		if s.Annotations[k] != v {
			return false
		}
	}
	return true
}

func hasControllerRef(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding) bool {
	for _, ref := range s.OwnerReferences {
		if ref.UID == b.UID && ref.Controller != nil && *ref.Controller {
			return true
		}
	}
	return false
}

// managedBy tells whether a Secret belongs to the binding.
func managedBy(s *corev1.Secret, b *authv1alpha1.IdPTokenBinding) bool {
	return s.Labels[authv1alpha1.LabelManagedBy] == authv1alpha1.ManagedByValue &&
		s.Labels[authv1alpha1.LabelBinding] == b.Name
}

// Backoff bounds for failed attempts.
const (
	backoffBase = 5 * time.Second
	backoffMax  = 5 * time.Minute
)

// backoff is the wait after the n-th consecutive failure: 5s, 10s, 20s, … up to 5m.
func backoff(n int32) time.Duration {
	if n < 1 {
		n = 1
	}
	d := backoffBase
	for i := int32(1); i < n && d < backoffMax; i++ {
		d *= 2
	}
	return min(d, backoffMax)
}
