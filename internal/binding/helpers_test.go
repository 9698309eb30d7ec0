package binding

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

var now = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// testSource stands for the identity hash the controller computes.
const testSource = "0123456789abcdef"

func testBinding() *authv1alpha1.IdPTokenBinding {
	return &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "team-a", UID: "uid-1", Generation: 1},
		Status:     authv1alpha1.IdPTokenBindingStatus{ObservedGeneration: 1},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindNamespaced, Name: "prod"},
			User:      &authv1alpha1.UserSource{ID: "google-oauth2|1"},
			Secret:    authv1alpha1.SecretTarget{Name: "alice-token", Type: corev1.SecretTypeOpaque},
		},
	}
}

func testHeld(*authv1alpha1.IdPTokenBinding) *Token {
	return &Token{
		AccessToken: "at-1", RefreshToken: "rt-1", Auth0RefreshHash: HashToken("rt-1"),
		Expiry:   expiry.Result{ExpiresAt: now.Add(30 * time.Minute), IssuedAt: now.Add(-30 * time.Minute), Source: authv1alpha1.ExpirySourceIdPResponse},
		RenewAt:  now.Add(10 * time.Minute),
		Lineage:  testSource,
		Identity: authv1alpha1.IdentityStatus{Provider: "google-oauth2", Connection: "google-oauth2", UserID: "1"},
	}
}

// targetFor renders the Secret the operator would write, as the API server would return it.
func targetFor(b *authv1alpha1.IdPTokenBinding, h *Token) *corev1.Secret {
	d, _ := DesiredTarget(b, h)
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: b.Spec.Secret.Name, Namespace: b.Namespace, Labels: d.Labels, Annotations: d.Annotations},
		Data:       d.Data, Type: d.Type,
	}
	if d.Owned {
		s.OwnerReferences = []metav1.OwnerReference{{UID: b.UID, Controller: ptr.To(true)}}
	}
	return s
}

// testFacts are the facts of a pass over a binding whose Secret and state hold h.
func testFacts(b *authv1alpha1.IdPTokenBinding, h *Token) *Facts {
	f := &Facts{
		Binding: b, Now: now, Lineage: testSource, Held: h,
		Tenant: Tenant{Kind: authv1alpha1.TenantKindNamespaced, Name: "prod", Namespace: b.Namespace, Found: true, HomeKnown: true},
		Policy: PolicyOf([]authv1alpha1.IdPTokenBinding{*b}),
	}
	if h != nil {
		f.State = h.StateData()
		f.Target = targetFor(b, h)
	}
	return f
}
