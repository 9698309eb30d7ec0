package realidp

import (
	"errors"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func newNamespace() string {
	GinkgoHelper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "realidp-"}}
	Expect(k8s.Create(suiteCtx, ns)).To(Succeed())
	return ns.Name
}

// newTenant creates the credentials Secret and an Auth0Tenant "prod" for Tenant, trusting the
// certificates of Tenant and of fosite, and waits for Ready.
func newTenant(ns string) {
	GinkgoHelper()
	Expect(k8s.Create(suiteCtx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "prod-m2m", Namespace: ns},
		StringData: map[string]string{"client_id": m2mClientID, "client_secret": m2mClientSecret},
	})).To(Succeed())
	t := &authv1alpha1.Auth0Tenant{
		ObjectMeta: metav1.ObjectMeta{Name: "prod", Namespace: ns},
		Spec: authv1alpha1.Auth0TenantSpec{
			Domain:               tenant.Domain(),
			Audience:             sim.Audience(),
			CredentialsSecretRef: authv1alpha1.SecretKeysRef{Name: "prod-m2m"},
			CABundle:             append(tenant.CAPEM(), idp.CAPEM()...),
			RateLimit:            authv1alpha1.RateLimit{RequestsPerSecond: 50, Burst: 50},
		},
	}
	Expect(k8s.Create(suiteCtx, t)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(suiteCtx, client.ObjectKeyFromObject(t), t)).To(Succeed())
		g.Expect(readyReason(t.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonAuthenticated))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// createBinding binds l's identity to Secret <name>-token.
func createBinding(ns, name string, l *lineage) {
	GinkgoHelper()
	Expect(k8s.Create(suiteCtx, &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Name: "prod"},
			User:      &authv1alpha1.UserSource{ID: l.userID, Connection: l.connection},
			Secret:    authv1alpha1.SecretTarget{Name: name + "-token"},
		},
	})).To(Succeed())
}

func getBinding(g Gomega, ns, name string) *authv1alpha1.IdPTokenBinding {
	b := &authv1alpha1.IdPTokenBinding{}
	g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b)).To(Succeed())
	return b
}

// accessToken is the access token in the binding's Secret.
func accessToken(g Gomega, ns, name string) string {
	s := &corev1.Secret{}
	g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name + "-token"}, s)).To(Succeed())
	return string(s.Data["access_token"])
}

// giveUpOn are Ready=False reasons that no wait within a spec can change.
var giveUpOn = []string{
	authv1alpha1.ReasonRefreshUnsupported, authv1alpha1.ReasonConnectionNotFound, authv1alpha1.ReasonUserNotFound,
	authv1alpha1.ReasonIdentityNotFound, authv1alpha1.ReasonNoAccessToken, authv1alpha1.ReasonInvalidRefreshConfig,
	authv1alpha1.ReasonSecretConflict, authv1alpha1.ReasonTenantNotFound,
}

// waitReady waits for Ready=True/Synced, and stops at once on a reason that will not pass.
func waitReady(ns, name string) *authv1alpha1.IdPTokenBinding {
	GinkgoHelper()
	var b *authv1alpha1.IdPTokenBinding
	Eventually(func(g Gomega) {
		b = getBinding(g, ns, name)
		stopOnTerminal(b)
		g.Expect(readyReason(b.Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
	}).WithTimeout(30 * time.Second).Should(Succeed())
	return b
}

func stopOnTerminal(b *authv1alpha1.IdPTokenBinding) {
	if c := condition(b, authv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse && slices.Contains(giveUpOn, c.Reason) {
		StopTrying(fmt.Sprintf("binding %s is Ready=False %s: %s", b.Name, c.Reason, c.Message)).Now()
	}
}

// forceRefresh sets the force-refresh annotation to value.
func forceRefresh(ns, name, value string) {
	GinkgoHelper()
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		b := &authv1alpha1.IdPTokenBinding{}
		if err := k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, b); err != nil {
			return err
		}
		metav1.SetMetaDataAnnotation(&b.ObjectMeta, authv1alpha1.AnnotationForceRefresh, value)
		return k8s.Update(suiteCtx, b)
	})).To(Succeed())
}

func condition(b *authv1alpha1.IdPTokenBinding, typ string) *metav1.Condition {
	for i := range b.Status.Conditions {
		if b.Status.Conditions[i].Type == typ {
			return &b.Status.Conditions[i]
		}
	}
	return nil
}

func readyReason(conds []metav1.Condition) string {
	for _, c := range conds {
		if c.Type == authv1alpha1.ConditionReady {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

// failing is the condition that reports a failed attempt: SyncFailing while the Secret's token
// is still valid, else Ready=False. Nil when neither says so.
func failing(b *authv1alpha1.IdPTokenBinding) *metav1.Condition {
	if c := condition(b, authv1alpha1.ConditionSyncFailing); c != nil && c.Status == metav1.ConditionTrue {
		return c
	}
	if c := condition(b, authv1alpha1.ConditionReady); c != nil && c.Status == metav1.ConditionFalse {
		return c
	}
	return nil
}

func eventReasons(ns, name string) []string {
	GinkgoHelper()
	list := &eventsv1.EventList{}
	Expect(k8s.List(suiteCtx, list, client.InNamespace(ns))).To(Succeed())
	var out []string
	for _, e := range list.Items {
		if e.Regarding.Name == name {
			out = append(out, e.Reason)
		}
	}
	return out
}

// refusalCode is the OAuth 2.0 error code of a grant fosite refused, "" when err is no refusal.
func refusalCode(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return ""
}

// errorsOf are the error codes of exchanges, "" for a success.
func errorsOf(ex []Exchange) []string {
	out := make([]string, 0, len(ex))
	for _, e := range ex {
		out = append(out, e.Error)
	}
	return out
}
