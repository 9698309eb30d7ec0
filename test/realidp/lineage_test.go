package realidp

import (
	"fmt"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/oauth2"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// Auth0 connection strategies the lineages use.
const (
	strategyOAuth2 = "oauth2" // options.tokenURL; the operator authenticates with client_secret_post
	strategyOIDC   = "oidc"   // options.token_endpoint and token_endpoint_auth_method
)

// lineage is one user's identity through one connection whose IdP is fosite, with its own
// fosite client: what one spec changes at the IdP touches no other spec.
type lineage struct {
	name       string // fosite user, Auth0 connection name and the identity's user_id
	userID     string // Auth0 user id
	connection string
	clientID   string
	strategy   string
	login      *oauth2.Token // the tokens of the user's latest login, which Auth0 holds
}

var lineageSeq int

// newLineage registers a client at fosite, a connection and a user in Auth0, logs the user in
// through fosite and gives Auth0 the tokens of that login.
func newLineage(strategy string) *lineage {
	GinkgoHelper()
	lineageSeq++
	name := fmt.Sprintf("fosite-%s-%d", strategy, lineageSeq)
	l := &lineage{name: name, userID: strategy + "|" + name, connection: name, clientID: "client-" + name, strategy: strategy}
	method := AuthClientSecretPost
	if strategy == strategyOIDC {
		method = AuthClientSecretBasic
	}
	secret := "realidp_cs_" + randomHex(8)
	Expect(idp.AddClient(l.clientID, secret, method)).To(Succeed())
	sim.AddConnection(auth0sim.ConnectionSpec{ID: "con_" + fmt.Sprint(lineageSeq), Name: name, Strategy: strategy})
	tenant.SetConnectionOptions(name, l.options(secret))
	idp.AddUser(name)
	sim.AddUser(l.userID, auth0sim.IdentitySpec{Connection: name, Provider: strategy, UserID: name})
	l.logIn()
	return l
}

// options are the connection's options in Auth0 for client secret secret, per its strategy.
func (l *lineage) options(secret string) map[string]any {
	opts := map[string]any{"client_id": l.clientID, "client_secret": secret}
	switch l.strategy {
	case strategyOAuth2:
		opts["tokenURL"] = idp.TokenURL()
	case strategyOIDC:
		opts["token_endpoint"] = idp.TokenURL()
		opts["token_endpoint_auth_method"] = AuthClientSecretBasic
		opts["issuer"] = idp.URL()
		opts["type"] = "back_channel"
	}
	return opts
}

// logIn logs the user in at fosite and hands the tokens to Auth0, which then holds them as
// after a login through the connection (a new last_login too).
func (l *lineage) logIn() {
	GinkgoHelper()
	tok, err := idp.Login(suiteCtx, l.clientID, l.name)
	Expect(err).NotTo(HaveOccurred())
	l.login = tok
	tenant.SetIdentityTokens(l.userID, l.connection, IdentityTokens{
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, ExpiresIn: tok.ExpiresIn,
	})
	sim.Login(l.userID)
}

// operatorExchanges are the operator's requests to fosite's token endpoint as l's client.
func (l *lineage) operatorExchanges() []Exchange {
	var out []Exchange
	for _, e := range idp.Exchanges() {
		if e.Caller == CallerOperator && e.ClientID == l.clientID {
			out = append(out, e)
		}
	}
	return out
}

// stateRefreshToken is the refresh token in the identity's refresh-state Secret, found by the
// labels and annotations the design names.
func (l *lineage) stateRefreshToken(ns string) string {
	GinkgoHelper()
	list := &corev1.SecretList{}
	Expect(k8s.List(suiteCtx, list, client.InNamespace(ns),
		client.MatchingLabels{authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState})).To(Succeed())
	for _, s := range list.Items {
		if s.Annotations[authv1alpha1.AnnotationUserID] == l.userID && s.Annotations[authv1alpha1.AnnotationConnection] == l.connection {
			return string(s.Data["refresh_token"])
		}
	}
	Fail(fmt.Sprintf("no refresh-state Secret of %s in namespace %s", l.userID, ns))
	return ""
}
