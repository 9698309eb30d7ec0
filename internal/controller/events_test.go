package controller

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// The M2M client of the tenants that subscribe to Auth0 events: it also has read:events.
const (
	eventsClientID     = "events-m2m"
	eventsClientSecret = "sim_cs_events_m2m"
)

// newEventsTenant creates an Auth0Tenant with spec.events enabled, whose client has (or lacks)
// read:events, and waits for Ready.
func newEventsTenant(ns, name string, readEvents bool) {
	GinkgoHelper()
	scopes := append([]string{}, RequiredScopes...)
	id := eventsClientID + "-no-events"
	if readEvents {
		scopes, id = append(scopes, auth0sim.ScopeReadEvents), eventsClientID
	}
	sim.AddM2MClient(id, eventsClientSecret, scopes...)
	newTenantWith(ns, name, id, eventsClientSecret, func(s *authv1alpha1.Auth0TenantSpec) {
		s.Events = &authv1alpha1.EventsSpec{Enabled: true}
	})
}

// eventsReady is the tenant's EventsReady condition as "Status/Reason"; "" when absent.
func eventsReady(ns, name string) string {
	GinkgoHelper()
	t := &authv1alpha1.Auth0Tenant{}
	Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: name}, t)).To(Succeed())
	if c := meta.FindStatusCondition(t.Status.Conditions, authv1alpha1.ConditionEventsReady); c != nil {
		return string(c.Status) + "/" + c.Reason
	}
	return ""
}

var _ = Describe("Auth0 events", Ordered, func() {
	var ns string
	BeforeAll(func() {
		ns = newNamespace()
		newEventsTenant(ns, "live", true)
		Eventually(func() string { return eventsReady(ns, "live") }).WithTimeout(20 * time.Second).
			Should(Equal("True/" + authv1alpha1.ReasonSubscribed))
	})

	It("heals a TokenExpired binding as soon as the user logs in again, without waiting for a backoff", func() {
		// The brief IdP's tokens last 12 s and there is no refresh token: the binding expires.
		user := newUser("brief", false)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "relogin", "live", user, "brief-sim"))).To(Succeed())
		waitReady(ns, "relogin")
		waitReason(ns, "relogin", "False/"+authv1alpha1.ReasonTokenExpired)

		sim.Login(user)
		fresh := sim.CurrentAccessToken(user, "brief-sim")
		// Without the event, a TokenExpired binding is looked at again after its fallback
		// interval (an hour): only the event can make this pass in time.
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "relogin-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(binding.HashToken(string(s.Data["access_token"]))).To(Equal(binding.HashToken(fresh)), "the Secret does not hold the new login's token yet")
			g.Expect(readyReason(getBinding(ns, "relogin").Status.Conditions)).To(Equal("True/" + authv1alpha1.ReasonSynced))
		}).WithTimeout(15 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	It("deletes a deleted user's Secrets and refresh state, and says so", func() {
		user := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "gone", "live", user, "google-sim"))).To(Succeed())
		b := waitReady(ns, "gone")
		state := stateNameOf(b)
		_, err := getSecret(ns, state)
		Expect(err).NotTo(HaveOccurred())

		sim.DeleteUser(user)
		Eventually(func() bool {
			_, err := getSecret(ns, "gone-token")
			return apierrors.IsNotFound(err)
		}).WithTimeout(15*time.Second).WithPolling(100*time.Millisecond).Should(BeTrue(), "the deleted user's Secret is still there")
		Eventually(func() bool {
			_, err := getSecret(ns, state)
			return apierrors.IsNotFound(err)
		}).WithTimeout(5*time.Second).Should(BeTrue(), "the deleted user's refresh state is still there")
		b = waitReason(ns, "gone", "False/"+authv1alpha1.ReasonUserNotFound)
		Expect(readyMessage(b.Status.Conditions)).To(ContainSubstring("user.deleted"))
		Expect(eventReasons(ns, "gone")).To(ContainElements("SecretDeleted", "StateDeleted"))
		// It stays deleted: nothing writes it back.
		Consistently(func() bool {
			_, err := getSecret(ns, "gone-token")
			return apierrors.IsNotFound(err)
		}).WithTimeout(3 * time.Second).Should(BeTrue())
	})

	It("reads a user at most once per spacing however many events Auth0 sends", func() {
		user := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "busy-a", "live", user, "google-sim"))).To(Succeed())
		Expect(k8s.Create(suiteCtx, userBinding(ns, "busy-b", "live", user, "google-sim"))).To(Succeed())
		waitReady(ns, "busy-a")
		waitReady(ns, "busy-b")
		before := sim.Stats().UserReads[user]
		for range 200 {
			sim.PublishEvent(auth0sim.EventUserUpdated, map[string]any{"user_id": user})
		}
		// The first event is read at once (by both bindings, one request); the other 199 wait
		// for the spacing and make at most one more read when it ends.
		Consistently(func() int { return sim.Stats().UserReads[user] - before }).
			WithTimeout(8 * time.Second).Should(BeNumerically("<=", 1))
		Eventually(func() int { return sim.Stats().UserReads[user] - before }).
			WithTimeout(5 * time.Second).Should(Equal(1))
	})

	It("keeps the stream's offset in a ConfigMap in the tenant's namespace", func() {
		Eventually(func(g Gomega) {
			cm := &corev1.ConfigMap{}
			g.Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: OffsetConfigMapName("live")}, cm)).To(Succeed())
			g.Expect(cm.Data[offsetKey]).NotTo(BeEmpty())
			g.Expect(cm.Annotations[authv1alpha1.AnnotationTenant]).To(Equal("Auth0Tenant/" + ns + "/live"))
		}).WithTimeout(20 * time.Second).Should(Succeed())
	})

	It("re-reads a connection binding's admin token when Auth0 reports the connection updated", func() {
		spec := auth0sim.ConnectionSpec{ID: "con_events_admin", Name: "events-admin", Strategy: "oauth2", IdP: "google", AdminTokens: true}
		sim.AddConnection(spec)
		b := &authv1alpha1.IdPTokenBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: ns},
			Spec: authv1alpha1.IdPTokenBindingSpec{
				TenantRef:  authv1alpha1.TenantRef{Name: "live"},
				Connection: &authv1alpha1.ConnectionSource{ID: spec.ID},
				Secret:     authv1alpha1.SecretTarget{Name: "admin-token"},
			},
		}
		Expect(k8s.Create(suiteCtx, b)).To(Succeed())
		waitReady(ns, "admin")

		sim.AddConnection(spec) // new admin tokens, and connection.updated
		at, _ := sim.ConnectionAdminTokens(spec.ID)
		// The google IdP's tokens last 45 s and are refreshed at the IdP, never re-read from
		// the connection: only the event brings Auth0's new admin token.
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, "admin-token")
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(binding.HashToken(string(s.Data["access_token"]))).To(Equal(binding.HashToken(at)), "the Secret does not hold the connection's new admin token")
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	It("reads every user of the tenant once when the kept offset has expired, and resumes", func() {
		user := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "expired-offset", "live", user, "google-sim"))).To(Succeed())
		waitReady(ns, "expired-offset")
		before := sim.Stats().UserReads[user]
		expired := sim.EventsStats().Expired
		sim.FailStreams("cursor_expired")
		Eventually(func() int { return sim.EventsStats().Expired }).WithTimeout(5 * time.Second).Should(BeNumerically(">", expired))
		Eventually(func() int { return sim.Stats().UserReads[user] - before }).WithTimeout(10 * time.Second).Should(Equal(1))
		Eventually(func() string { return eventsReady(ns, "live") }).WithTimeout(10 * time.Second).
			Should(Equal("True/" + authv1alpha1.ReasonSubscribed))
		// The stream works again: a new login reaches the Secret. (Another user: this one's
		// re-read holds its next notice for NoticeSpacing.)
		other := newUser("google", true)
		Expect(k8s.Create(suiteCtx, userBinding(ns, "after-resume", "live", other, "google-sim"))).To(Succeed())
		waitReady(ns, "after-resume")
		sim.Login(other)
		// The new login's lineage is adopted (and, its expiry being an estimate, refreshed at
		// once): the identity's state holds the hash of Auth0's new refresh token.
		newLineage := binding.HashToken(sim.CurrentRefreshToken(other, "google-sim"))
		state := stateNameOf(getBinding(ns, "after-resume"))
		Eventually(func(g Gomega) {
			s, err := getSecret(ns, state)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(string(s.Data["auth0_refresh_token_sha256"])).To(Equal(newLineage), "the new login did not reach the identity's state")
		}).WithTimeout(10 * time.Second).WithPolling(100 * time.Millisecond).Should(Succeed())
	})

	It("says EventsNotAuthorized when the M2M app lacks read:events, and nothing when events are off", func() {
		newEventsTenant(ns, "noscope", false)
		Eventually(func() string { return eventsReady(ns, "noscope") }).WithTimeout(20 * time.Second).
			Should(Equal("False/" + authv1alpha1.ReasonEventsNotAuthorized))
		newTenant(ns, "quiet")
		Consistently(func() string { return eventsReady(ns, "quiet") }).WithTimeout(2 * time.Second).Should(BeEmpty())

		// Turning events off removes the condition and ends the subscription.
		t := &authv1alpha1.Auth0Tenant{}
		Expect(k8s.Get(suiteCtx, client.ObjectKey{Namespace: ns, Name: "noscope"}, t)).To(Succeed())
		t.Spec.Events.Enabled = false
		Expect(k8s.Update(suiteCtx, t)).To(Succeed())
		Eventually(func() string { return eventsReady(ns, "noscope") }).WithTimeout(10 * time.Second).Should(BeEmpty())
	})
})
