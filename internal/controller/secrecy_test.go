package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"

	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gcustom"
	"github.com/onsi/gomega/types"
	eventsv1 "k8s.io/api/events/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// secretPattern matches every token the simulator mints and every client secret the suite uses.
var secretPattern = regexp.MustCompile(auth0sim.TokenPattern.String() + `|sim_cs_[A-Za-z0-9_-]+|tampered|user-data`)

// expectNoSecrets fails the suite when the manager's logs, Events or any status carried a token or
// client secret. It runs after every spec, so it sees what all of them produced.
func expectNoSecrets() {
	Expect(secretPattern.MatchString(sim.CurrentAccessToken(firstUser, "google-sim"))).To(BeTrue(),
		"the leak pattern must recognise a real token, or this check proves nothing")

	logText := logs.String()
	Expect(logText).NotTo(BeEmpty())
	Expect(secretPattern.FindAllString(logText, 5)).To(BeEmpty(), "manager logs carry a secret")

	events := &eventsv1.EventList{}
	Expect(k8s.List(suiteCtx, events)).To(Succeed())
	Expect(events.Items).NotTo(BeEmpty())
	for _, e := range events.Items {
		Expect(secretPattern.FindString(e.Note)).To(BeEmpty(), "Event %s/%s (%s) carries a secret", e.Namespace, e.Name, e.Reason)
	}

	bindings := &authv1alpha1.IdPTokenBindingList{}
	Expect(k8s.List(suiteCtx, bindings)).To(Succeed())
	tenants := &authv1alpha1.Auth0TenantList{}
	Expect(k8s.List(suiteCtx, tenants)).To(Succeed())
	Expect(bindings.Items).NotTo(BeEmpty())
	for _, obj := range []any{bindings, tenants} {
		raw, err := json.Marshal(obj)
		Expect(err).NotTo(HaveOccurred())
		// Specs and metadata are the user's; only statuses are the operator's words.
		var list struct {
			Items []struct {
				Status json.RawMessage `json:"status"`
			} `json:"items"`
		}
		Expect(json.Unmarshal(raw, &list)).To(Succeed())
		for _, it := range list.Items {
			Expect(secretPattern.FindString(string(it.Status))).To(BeEmpty(), "a status carries a secret")
		}
	}
}

// equalToken matches a token (or any secret) equal to want; a failure names the two values by
// the first bytes of their SHA-256, never the values themselves.
func equalToken(want string) types.GomegaMatcher {
	return gcustom.MakeMatcher(func(got string) (bool, error) { return got == want, nil }).
		WithTemplate("Expected the secret {{.To}} equal the one whose SHA-256 starts {{.Data}} (values not shown)", shortHash(want))
}

func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:6])
}
