package controller

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
)

// TestAKeptClientSecretGoesOnlyToTheURLItWasKeptWith: the state Secret, in a team's namespace,
// names the endpoint; the client secret, in the operator's namespace, names the URL it belongs
// to. An edited state Secret must not send the secret anywhere else.
func TestAKeptClientSecretGoesOnlyToTheURLItWasKeptWith(t *testing.T) {
	b := testBinding()
	key := tenantKeyOf(b)
	kept := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: idpClientName(key, "google-oauth2"), Namespace: "operator",
			Labels: map[string]string{authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelRole: roleIdPClient}},
		Data: map[string][]byte{idpClientTokenURL: []byte("https://oauth2.googleapis.com/token"), idpClientID: []byte("cid"), idpClientSecret: []byte("cs")},
	}
	r := &BindingReconciler{Client: fake.NewClientBuilder().WithObjects(kept).Build(), ClusterResourceNamespace: "operator"}
	in := &bindingInput{tenantKey: key, Facts: binding.Facts{Binding: b}}
	held := func(url, id string) *binding.Token {
		return &binding.Token{Identity: authv1alpha1.IdentityStatus{Connection: "google-oauth2"}, Endpoint: binding.Endpoint{TokenURL: url, ClientID: id}}
	}

	ep, ok := r.keptEndpoint(context.Background(), in, held("https://oauth2.googleapis.com/token", "cid"))
	if !ok || ep.ClientSecret != "cs" || ep.TokenURL != "https://oauth2.googleapis.com/token" {
		t.Fatalf("the kept endpoint was not used: %v, %v", ep, ok)
	}
	for name, h := range map[string]*binding.Token{
		"another URL":       held("https://attacker.example/token", "cid"),
		"another client ID": held("https://oauth2.googleapis.com/token", "other"),
		"no kept endpoint":  held("", ""),
	} {
		if ep, ok := r.keptEndpoint(context.Background(), in, h); ok {
			t.Errorf("%s: the kept client secret would go to %s", name, ep.TokenURL)
		}
	}
	b.Spec.Refresh.TokenURL = "https://oauth2.googleapis.com/token"
	if _, ok := r.keptEndpoint(context.Background(), in, held("https://oauth2.googleapis.com/token", "cid")); ok {
		t.Error("a binding with a refresh override must not use the connection's kept client")
	}
}
