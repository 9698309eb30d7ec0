package binding

import (
	"testing"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// TestWhoMaySendATokenWhere is every combination of spec.refresh, the tenant's refreshOverride
// and the override client's Secret, with where the refresh token may go.
func TestWhoMaySendATokenWhere(t *testing.T) {
	type row struct {
		tokenURL, clientRef, allowed, refused, read bool
		want                                        EndpointSource
	}
	var rows []row
	for _, tokenURL := range []bool{false, true} {
		for _, clientRef := range []bool{false, true} {
			for _, allowed := range []bool{false, true} {
				for _, refused := range []bool{false, true} {
					for _, read := range []bool{false, true} {
						r := row{tokenURL: tokenURL, clientRef: clientRef, allowed: allowed, refused: refused, read: read}
						switch {
						case !tokenURL && !clientRef:
							r.want = EndpointConnection // the connection's client, to its own endpoint only
						case !allowed, !clientRef, refused, !read:
							r.want = EndpointRefused // never the connection's client elsewhere; never without consent
						case tokenURL:
							r.want = EndpointOverride
						default:
							r.want = EndpointConnectionWithOverrideClient
						}
						rows = append(rows, r)
					}
				}
			}
		}
	}
	for _, r := range rows {
		b := testBinding()
		if r.tokenURL {
			b.Spec.Refresh.TokenURL = "https://elsewhere.example/token"
		}
		if r.clientRef {
			b.Spec.Refresh.ClientCredentialsSecretRef = &authv1alpha1.SecretKeysRef{Name: "client"}
		}
		ten := Tenant{Kind: authv1alpha1.TenantKindCluster, Name: "prod", OverrideAllowed: r.allowed}
		if r.refused {
			ten.OverrideRefused = OverrideClientInvalid("not labelled")
		}
		got, fail := ChooseEndpoint(b, ten, r.read)
		if got != r.want || (got == EndpointRefused) != (fail != nil) {
			t.Errorf("%+v: ChooseEndpoint = %v (failure %v)", r, got, fail)
		}
		if fail != nil && fail.Reason != authv1alpha1.ReasonInvalidRefreshConfig {
			t.Errorf("%+v: refused with %s, want %s", r, fail.Reason, authv1alpha1.ReasonInvalidRefreshConfig)
		}
	}
}

func TestTheKeptClientGoesOnlyWhereItWasKept(t *testing.T) {
	kept := Endpoint{TokenURL: "https://idp.example/token", ClientID: "client"}
	b := testBinding()
	if !KeptClientUsable(b, kept, kept.TokenURL, kept.ClientID) {
		t.Fatal("the kept client must serve the URL and client ID it was kept with")
	}
	for name, c := range map[string]struct {
		ep       Endpoint
		url, cid string
	}{
		"a state naming another URL":       {ep: Endpoint{TokenURL: "https://attacker.example/token", ClientID: "client"}, url: kept.TokenURL, cid: "client"},
		"a state naming another client ID": {ep: Endpoint{TokenURL: kept.TokenURL, ClientID: "other"}, url: kept.TokenURL, cid: "client"},
		"no endpoint kept":                 {ep: Endpoint{}, url: "", cid: ""},
	} {
		if KeptClientUsable(b, c.ep, c.url, c.cid) {
			t.Errorf("%s: the kept client secret would be sent", name)
		}
	}
	b.Spec.Refresh.TokenURL = "https://elsewhere.example/token"
	if KeptClientUsable(b, kept, kept.TokenURL, kept.ClientID) {
		t.Error("a binding that refreshes elsewhere never uses the connection's kept client")
	}
}

func TestAConflictKeepsTheNewerToken(t *testing.T) {
	ours := &Token{AccessToken: "ours", ObtainedAt: now}
	newer := &Token{AccessToken: "theirs", ObtainedAt: now.Add(time.Second)}
	older := &Token{AccessToken: "theirs", ObtainedAt: now.Add(-time.Second)}
	if MergeOnConflict(ours, newer) != newer || MergeOnConflict(ours, older) != ours || MergeOnConflict(ours, nil) != ours {
		t.Error("the newer of the two tokens must be persisted")
	}
}
