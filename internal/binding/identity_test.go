package binding

import (
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

const clusterTenant = "ClusterAuth0Tenant/prod"

func TestIdentityKeysNameOneLineagePerIdentity(t *testing.T) {
	alice := Identity{Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "google-oauth2"}
	others := map[string]Identity{
		"another tenant":      {Tenant: "Auth0Tenant/team-a/prod", UserID: "google-oauth2|1", Connection: "google-oauth2"},
		"another user":        {Tenant: clusterTenant, UserID: "google-oauth2|2", Connection: "google-oauth2"},
		"another connection":  {Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "github"},
		"a connection":        {Tenant: clusterTenant, Connection: "google-oauth2"},
		"the primary, unread": {Tenant: clusterTenant, UserID: "google-oauth2|1"},
		"refreshes elsewhere": {Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "google-oauth2", Override: Override{TokenURL: "https://idp.example/token"}},
		"token vault":         {Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "google-oauth2", Vault: true},
		// Before length-prefixed keys, a NUL in a connection name made these two one lineage.
		"a NUL-spelled vault": {Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "google-oauth2\x00tokenvault"},
		"fields shifted":      {Tenant: clusterTenant + "\x00user\x00google-oauth2|1", Connection: "google-oauth2"},
		"a boundary moved":    {Tenant: "ClusterAuth0Tenant/pro", UserID: "dgoogle-oauth2|1", Connection: "google-oauth2"},
	}
	if alice.Hash() != (Identity{Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "google-oauth2"}).Hash() {
		t.Fatal("the same identity must name the same lineage")
	}
	if !regexp.MustCompile(`^idptoken-state-[0-9a-f]{16}$`).MatchString(alice.StateName()) {
		t.Fatalf("StateName = %q, want idptoken-state-<16 hex>", alice.StateName())
	}
	for name, o := range others {
		if o.Key() == alice.Key() || o.Hash() == alice.Hash() {
			t.Errorf("%s shares alice's lineage", name)
		}
	}
	vault, nul := others["token vault"], others["a NUL-spelled vault"]
	if vault.PreviousHash() != nul.PreviousHash() {
		t.Error("the test no longer shows the collision of the previous key")
	}
	if vault.Hash() == nul.Hash() {
		t.Error("length-prefixed keys still collide")
	}
}

// FuzzIdentityKey: no two distinct identities share a key.
func FuzzIdentityKey(f *testing.F) {
	f.Add("ClusterAuth0Tenant/prod", "google-oauth2|1", "google-oauth2", "", false, "ClusterAuth0Tenant/prod", "google-oauth2|1", "google-oauth2\x00tokenvault", "", true)
	f.Add("a", "1:b", "", "", false, "a1:b", "", "", "", false)
	f.Fuzz(func(t *testing.T, t1, u1, c1, o1 string, v1 bool, t2, u2, c2, o2 string, v2 bool) {
		a := Identity{Tenant: t1, UserID: u1, Connection: c1, Override: Override{TokenURL: o1}, Vault: v1}
		b := Identity{Tenant: t2, UserID: u2, Connection: c2, Override: Override{TokenURL: o2}, Vault: v2}
		if a != b && a.Key() == b.Key() {
			t.Fatalf("distinct identities share the key %q", a.Key())
		}
	})
}

func TestResolvedConnectionJoinsThePrimaryIdentity(t *testing.T) {
	primary := &authv1alpha1.IdentityStatus{Provider: "google-oauth2", Connection: "google-oauth2", UserID: "1"}
	tests := map[string]struct {
		spec   string
		status *authv1alpha1.IdentityStatus
		userID string
		want   string
	}{
		"named in the spec":              {spec: "github", status: primary, userID: "google-oauth2|1", want: "github"},
		"resolved by a read":             {status: primary, userID: "google-oauth2|1", want: "google-oauth2"},
		"not read yet":                   {userID: "google-oauth2|1", want: ""},
		"a status of another user":       {status: primary, userID: "google-oauth2|2", want: ""},
		"a linked identity, not primary": {status: &authv1alpha1.IdentityStatus{Provider: "github", Connection: "github", UserID: "7"}, userID: "google-oauth2|1", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := testBinding()
			b.Spec.User = &authv1alpha1.UserSource{ID: tc.userID, Connection: tc.spec}
			b.Status.Identity = tc.status
			if got := IdentityOf("t", b).Connection; got != tc.want {
				t.Errorf("connection = %q, want %q", got, tc.want)
			}
		})
	}
	// The two spellings of one identity are one lineage once the first read resolved it.
	empty, named := testBinding(), testBinding()
	empty.Spec.User.Connection, named.Spec.User.Connection = "", "google-oauth2"
	empty.Status.Identity = primary
	if IdentityOf("t", empty).Hash() != IdentityOf("t", named).Hash() {
		t.Error("an empty connection and the primary's name must be one lineage once resolved")
	}
}

func stateSecret(id Identity, hash string) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: StateNamePrefix + hash,
		Labels: map[string]string{
			authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState,
			authv1alpha1.LabelIdentity: hash,
		},
		Annotations: map[string]string{
			authv1alpha1.AnnotationTenant: id.Tenant, authv1alpha1.AnnotationUserID: id.UserID, authv1alpha1.AnnotationConnection: id.Connection,
		},
		OwnerReferences: []metav1.OwnerReference{{UID: "tenant-uid", Controller: ptr.To(true)}},
	}}
}

func TestAcceptStateTrustsOnlyTheOperatorsStateOfTheIdentity(t *testing.T) {
	id := Identity{Tenant: clusterTenant, UserID: "google-oauth2|1", Connection: "google-oauth2"}
	owner := StateOwner{Hash: id.Hash(), Identity: id, TenantUID: "tenant-uid"}
	tests := map[string]struct {
		edit func(s *corev1.Secret)
		ok   bool
	}{
		"written by the operator":   {edit: func(*corev1.Secret) {}, ok: true},
		"no labels":                 {edit: func(s *corev1.Secret) { s.Labels = nil }},
		"another role":              {edit: func(s *corev1.Secret) { s.Labels[authv1alpha1.LabelRole] = "idp-client" }},
		"another identity's label":  {edit: func(s *corev1.Secret) { s.Labels[authv1alpha1.LabelIdentity] = "0000000000000000" }},
		"another user":              {edit: func(s *corev1.Secret) { s.Annotations[authv1alpha1.AnnotationUserID] = "google-oauth2|2" }},
		"another connection":        {edit: func(s *corev1.Secret) { s.Annotations[authv1alpha1.AnnotationConnection] = "github" }},
		"another tenant":            {edit: func(s *corev1.Secret) { s.Annotations[authv1alpha1.AnnotationTenant] = "Auth0Tenant/team-a/prod" }},
		"no annotations":            {edit: func(s *corev1.Secret) { s.Annotations = nil }},
		"no ownerReference":         {edit: func(s *corev1.Secret) { s.OwnerReferences = nil }},
		"owned, not controlled":     {edit: func(s *corev1.Secret) { s.OwnerReferences[0].Controller = nil }},
		"controlled by another UID": {edit: func(s *corev1.Secret) { s.OwnerReferences[0].UID = "binding-uid" }},
		"the tenant's UID, not first": {edit: func(s *corev1.Secret) {
			s.OwnerReferences = append([]metav1.OwnerReference{{UID: "x"}}, s.OwnerReferences...)
		}, ok: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := stateSecret(id, id.Hash())
			tc.edit(s)
			ok, why := AcceptState(s, owner)
			if ok != tc.ok {
				t.Fatalf("AcceptState = %v (%s), want %v", ok, why, tc.ok)
			}
			if !ok && why == "" {
				t.Error("a refusal must say why")
			}
		})
	}
	if ok, _ := AcceptState(stateSecret(id, id.Hash()), StateOwner{Hash: id.Hash(), Identity: id}); ok {
		t.Error("without a tenant UID nothing may be accepted")
	}
}

// FuzzAcceptState: no Secret without the tenant's UID as its controller is ever accepted, and
// none whose annotations name another identity.
func FuzzAcceptState(f *testing.F) {
	f.Add("google-oauth2|1", "google-oauth2", "tenant-uid", true, "google-oauth2|1", "google-oauth2")
	f.Add("google-oauth2|1", "google-oauth2", "binding-uid", true, "google-oauth2|1", "google-oauth2")
	f.Fuzz(func(t *testing.T, user, conn, uid string, controller bool, annUser, annConn string) {
		id := Identity{Tenant: clusterTenant, UserID: user, Connection: conn}
		s := stateSecret(Identity{Tenant: clusterTenant, UserID: annUser, Connection: annConn}, id.Hash())
		s.OwnerReferences = []metav1.OwnerReference{{UID: k8stypes.UID(uid), Controller: &controller}}
		ok, _ := AcceptState(s, StateOwner{Hash: id.Hash(), Identity: id, TenantUID: "tenant-uid"})
		if ok && (uid != "tenant-uid" || !controller) {
			t.Fatal("accepted a Secret not controlled by the tenant")
		}
		if ok && (annUser != user || annConn != conn) {
			t.Fatal("accepted a Secret whose annotations name another identity")
		}
	})
}

func TestAcceptLegacyStateOnlyFromTheBindingIntoItsOwnTenant(t *testing.T) {
	b := testBinding()
	legacy := func() *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
			Labels: map[string]string{
				authv1alpha1.LabelManagedBy: authv1alpha1.ManagedByValue, authv1alpha1.LabelBinding: b.Name,
				authv1alpha1.LabelRole: authv1alpha1.RoleRefreshState,
			},
			OwnerReferences: []metav1.OwnerReference{{UID: b.UID, Controller: ptr.To(true)}},
		}}
	}
	if !AcceptLegacyState(legacy(), b, authv1alpha1.TenantKindNamespaced) {
		t.Error("the binding's own per-binding state of an Auth0Tenant must be migrated")
	}
	if AcceptLegacyState(legacy(), b, authv1alpha1.TenantKindCluster) {
		t.Error("nothing from a team's namespace may enter a ClusterAuth0Tenant's lineage")
	}
	forged := legacy()
	forged.OwnerReferences = nil // what a namespace editor can write
	if AcceptLegacyState(forged, b, authv1alpha1.TenantKindNamespaced) {
		t.Error("a state Secret without the binding's UID as its controller must not be migrated")
	}
	other := legacy()
	other.OwnerReferences[0].UID = "another-binding"
	if AcceptLegacyState(other, b, authv1alpha1.TenantKindNamespaced) {
		t.Error("another binding's state must not be migrated")
	}
}

func TestTargetOwnershipNeedsTheBindingsUID(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	owned := targetFor(b, h)
	if !ManagedBy(owned, b) {
		t.Fatal("the Secret the binding writes must be the binding's")
	}
	labelsOnly := owned.DeepCopy()
	labelsOnly.OwnerReferences, labelsOnly.Annotations = nil, nil
	if ManagedBy(labelsOnly, b) || !LabelledFor(labelsOnly, b) {
		t.Error("a Secret with only the labels must not count as the binding's")
	}
	retained := labelsOnly.DeepCopy()
	retained.Annotations = map[string]string{authv1alpha1.AnnotationBindingUID: string(b.UID)}
	if !ManagedBy(retained, b) {
		t.Error("a Retain Secret is proved the binding's by its binding-uid annotation")
	}
	recreated := b.DeepCopy()
	recreated.UID = "uid-2" // a new binding of the same name
	if ManagedBy(owned, recreated) || ManagedBy(retained, recreated) {
		t.Error("a Secret of an earlier binding of the same name must not be the new binding's")
	}
	if d, _ := DesiredTarget(b, h); d.Annotations[authv1alpha1.AnnotationBindingUID] != string(b.UID) {
		t.Errorf("the target Secret carries binding-uid %q, want the binding's UID", d.Annotations[authv1alpha1.AnnotationBindingUID])
	}
	f := testFacts(b, h)
	f.Target, f.Conflict, f.ConflictLabelled = nil, b.Spec.Secret.Name, true
	if fail := Precheck(f); fail == nil || fail.Reason != authv1alpha1.ReasonSecretConflict || !strings.Contains(fail.Message, "delete it") {
		t.Errorf("a label-only Secret: Precheck = %+v, want SecretConflict saying to delete it", fail)
	}
}

func TestClaimsKeepOneRefreshInFlightPerIdentity(t *testing.T) {
	claim := func(c Claim) map[string]string {
		return map[string]string{authv1alpha1.AnnotationRefreshClaim: c.String()}
	}
	tests := map[string]struct {
		ann  map[string]string
		want bool
	}{
		"no claim":                        {ann: nil, want: true},
		"a live claim of another manager": {ann: claim(NewClaim("other", now.Add(-10*time.Second))), want: false},
		"our own live claim":              {ann: claim(NewClaim("me", now.Add(-10*time.Second))), want: true},
		"an expired claim":                {ann: claim(NewClaim("other", now.Add(-ClaimTTL))), want: true},
		"a claim no manager makes":        {ann: claim(Claim{Holder: "other", Until: now.Add(24 * time.Hour)}), want: true},
		"garbage":                         {ann: map[string]string{authv1alpha1.AnnotationRefreshClaim: "x"}, want: true},
	}
	for name, tc := range tests {
		if got := CanClaim(tc.ann, "me", now); got != tc.want {
			t.Errorf("%s: CanClaim = %v, want %v", name, got, tc.want)
		}
	}
	if c := ParseClaim(NewClaim("mgr-1", now).String()); c.Holder != "mgr-1" || !c.Until.Equal(now.Add(ClaimTTL).Truncate(time.Second)) {
		t.Errorf("ParseClaim(String()) = %+v", c)
	}
}

func TestBackoffsCarryUpToTwentyPercentJitter(t *testing.T) {
	for n := int32(1); n < 10; n++ {
		base := Backoff(n)
		if got := JitteredBackoff(n, 0); got != base {
			t.Errorf("attempt %d with no jitter: %s, want %s", n, got, base)
		}
		if got := JitteredBackoff(n, 0.999); got <= base || got > base+base/5 {
			t.Errorf("attempt %d with full jitter: %s, want in (%s, %s]", n, got, base, base+base/5)
		}
	}
	// Two bindings that failed together and drew different jitter retry apart.
	b := testBinding()
	f1, f2 := testFacts(b, nil), testFacts(b, nil)
	f1.Jitter, f2.Jitter = 0.1, 0.9
	p := &Pass{Failure: Transient(authv1alpha1.ReasonManagementAPIError, "503")}
	if Requeue(f1, p, 3) == Requeue(f2, p, 3) {
		t.Error("the requeue of a failure must carry the pass's jitter")
	}
}

func TestAForceRefreshWithinTheSpacingIsQueued(t *testing.T) {
	b := testBinding()
	b.Annotations = map[string]string{authv1alpha1.AnnotationForceRefresh: "again"}
	h := testHeld(b)
	h.LastRefresh = now.Add(-10 * time.Second)
	f := testFacts(b, h)
	if d := Decide(f); d.Action == ActionRefresh {
		t.Fatalf("refreshed 10 s after the last refresh: %+v", d)
	}
	p := Start(f)
	if got := Requeue(f, p, 0); got != 20*time.Second {
		t.Errorf("Requeue = %s, want the end of the spacing (20 s)", got)
	}
	st, _ := Report(f, p)
	if st.LastForceRefresh == "again" {
		t.Error("a queued force-refresh value must not be marked as acted on")
	}
	f.Now = now.Add(20 * time.Second)
	if d := Decide(f); d.Action != ActionRefresh {
		t.Errorf("at the end of the spacing: %+v, want a refresh", d)
	}
	// A refresh of the identity after the value was first seen serves it: renewals of the
	// identity's other bindings never starve a queued force.
	f.Now, f.ForceSeenAt = now, now.Add(-15*time.Second)
	if !ForceSatisfied(f) || ForceWaiting(f) {
		t.Fatal("a refresh 10 s ago, after the force was seen 15 s ago, serves it")
	}
	if st, _ := Report(f, Start(f)); st.LastForceRefresh != "again" {
		t.Errorf("a served force-refresh value is recorded as acted on; LastForceRefresh = %q", st.LastForceRefresh)
	}
	for _, seen := range []time.Duration{-5 * time.Second, -10 * time.Second} {
		f.ForceSeenAt = now.Add(seen)
		if ForceSatisfied(f) {
			t.Errorf("a refresh 10 s ago does not serve a force seen %s ago (the same second counts as before)", -seen)
		}
	}
	f.ForceSeenAt = time.Time{}
	// A binding without a usable refresh token re-reads Auth0 at once: nothing to hold.
	h.RefreshToken = ""
	f.Now = now
	if d := Decide(f); d.Action != ActionRead {
		t.Errorf("without a refresh token: %+v, want a read", d)
	}
}

func TestAResolvingPassRecordsOnlyTheIdentity(t *testing.T) {
	b := testBinding()
	f := testFacts(b, nil)
	f.Unresolved = true
	read := testHeld(b)
	p := &Pass{ReadAuth0: true, Held: read}
	if !Resolving(f, p) || Next(f, p) != StepDone {
		t.Fatal("a read that resolved the primary identity ends the pass")
	}
	st, evs := Report(f, p)
	if st.Identity == nil || st.Identity.Connection != "google-oauth2" || len(evs) != 0 || st.ExpiresAt != nil || len(st.Conditions) != 0 {
		t.Errorf("Report = %+v, %v; want only the identity", st, evs)
	}
	if got := Requeue(f, p, 0); got != MinRequeue {
		t.Errorf("Requeue = %s, want %s", got, MinRequeue)
	}
	read.Identity.Provider = "github" // not the primary of google-oauth2|1
	if Resolving(f, p) {
		t.Error("a linked identity must not resolve the primary")
	}
}
