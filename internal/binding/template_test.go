package binding

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func templated(policy authv1alpha1.MergePolicy, data map[string]string) *authv1alpha1.IdPTokenBinding {
	b := testBinding()
	b.Spec.Secret.Template = &authv1alpha1.SecretTemplate{MergePolicy: policy, Data: map[string]authv1alpha1.TemplateText{}}
	for k, v := range data {
		b.Spec.Secret.Template.Data[k] = authv1alpha1.TemplateText(v)
	}
	return b
}

func TestATemplateShapesTheSecret(t *testing.T) {
	h := testHeld(nil)
	h.TokenType, h.Scope = "Bearer", "repo"
	netrc := map[string]string{".netrc": "machine api.github.com login x-access-token password {{ .AccessToken }}"}

	d, err := DesiredTarget(templated(authv1alpha1.MergePolicyReplace, netrc), h)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Data) != 1 || string(d.Data[".netrc"]) != "machine api.github.com login x-access-token password at-1" {
		t.Errorf("Replace: keys %v; want only .netrc with the token", keysOf(d.Data))
	}
	d, err = DesiredTarget(templated(authv1alpha1.MergePolicyMerge, netrc), h)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Data) != 3 || d.Data["access_token"] == nil || d.Data["expires_at"] == nil || d.Data[".netrc"] == nil {
		t.Errorf("Merge: keys %v; want .netrc with the default keys", keysOf(d.Data))
	}
	b := templated(authv1alpha1.MergePolicyReplace, map[string]string{".dockerconfigjson": `{"auths":{}}`, "type": "{{ .TokenType }} {{ .Scope }}"})
	b.Spec.Secret.Template.Type = corev1.SecretTypeDockerConfigJson
	d, err = DesiredTarget(b, h)
	if err != nil || d.Type != corev1.SecretTypeDockerConfigJson || string(d.Data["type"]) != "Bearer repo" {
		t.Errorf("typed: %v, type %s, data type %q", err, d.Type, d.Data["type"])
	}
	if d.Annotations[authv1alpha1.AnnotationExpiresAt] == "" {
		t.Error("a templated Secret still carries the expires-at annotation")
	}

	rt := templated(authv1alpha1.MergePolicyReplace, map[string]string{"rt": "{{ .RefreshToken }}"})
	if _, err := DesiredTarget(rt, h); err == nil {
		t.Error(".RefreshToken without includeRefreshToken must be refused")
	}
	rt.Spec.Secret.IncludeRefreshToken = true
	if d, err := DesiredTarget(rt, h); err != nil || string(d.Data["rt"]) != "rt-1" {
		t.Errorf("with includeRefreshToken: %v", err)
	}
}

func TestATemplateErrorWritesNothingAndSaysWhy(t *testing.T) {
	h := testHeld(nil)
	bad := templated(authv1alpha1.MergePolicyReplace, map[string]string{"a": "{{ .AccessToken }}", "b": "{{ .NoSuchField }}"})
	f := testFacts(bad, h)
	fail := Precheck(f)
	if fail == nil || fail.Reason != authv1alpha1.ReasonInvalidTemplate || !fail.Terminal {
		t.Fatalf("Precheck = %+v, want a terminal InvalidTemplate", fail)
	}
	if strings.Contains(fail.Message, h.AccessToken) || !strings.Contains(fail.Message, bad.Spec.Secret.Name) {
		t.Errorf("message %q must name the Secret and no token", fail.Message)
	}
	p := Start(f)
	if Next(f, p) != StepDone {
		t.Error("a binding whose template does not compile requests nothing and writes nothing")
	}

	// Rendering fails for this token only: the write is refused whole, and the Secret is not
	// up to date, so that the write step reports it.
	undecodable := templated(authv1alpha1.MergePolicyReplace, map[string]string{"a": "{{ .AccessToken }}", "b": "{{ b64dec .AccessToken }}"})
	h.AccessToken = "not base64!"
	if d, err := DesiredTarget(undecodable, h); err == nil || d.Data != nil {
		t.Errorf("a render error gives no data at all, got %v, %v", keysOf(d.Data), err)
	}
	if TargetUpToDate(undecodable, h, &corev1.Secret{Type: corev1.SecretTypeOpaque}) {
		t.Error("a Secret cannot be up to date with a template that does not render")
	}
}

func TestTargetUpToDateSeesTemplatedKeys(t *testing.T) {
	h := testHeld(nil)
	b := templated(authv1alpha1.MergePolicyReplace, map[string]string{"authorization": "Bearer {{ .AccessToken }}"})
	s := targetFor(b, h)
	if !TargetUpToDate(b, h, s) {
		t.Fatal("the rendered Secret must be up to date")
	}
	edited := s.DeepCopy()
	edited.Data["authorization"] = []byte("Bearer x")
	if TargetUpToDate(b, h, edited) {
		t.Error("an edited templated key must be restored")
	}
	stale := s.DeepCopy()
	stale.Data["access_token"] = []byte(h.AccessToken)
	if TargetUpToDate(b, h, stale) {
		t.Error("a default key left from before the template (Replace) must go")
	}
	renewed := *h
	renewed.AccessToken = "at-2"
	if TargetUpToDate(b, &renewed, s) {
		t.Error("a new token must be written through the template")
	}
}

func TestSecretMACChangesExactlyWithTheData(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	a := map[string][]byte{"access_token": []byte("at-1"), "expires_at": []byte("2026")}
	same := map[string][]byte{"expires_at": []byte("2026"), "access_token": []byte("at-1")}
	if SecretMAC(key, a) != SecretMAC(key, same) {
		t.Error("the MAC must not depend on map order")
	}
	for name, other := range map[string]map[string][]byte{
		"another token":     {"access_token": []byte("at-2"), "expires_at": []byte("2026")},
		"a key moved":       {"access_toke": []byte("nat-1"), "expires_at": []byte("2026")},
		"a key less":        {"access_token": []byte("at-1")},
		"an empty value":    {"access_token": []byte("at-1"), "expires_at": []byte("2026"), "x": nil},
		"the same, new key": nil,
	} {
		k := key
		if other == nil {
			other, k = a, []byte("fedcba9876543210fedcba9876543210")
		}
		if SecretMAC(k, other) == SecretMAC(key, a) {
			t.Errorf("%s: same MAC", name)
		}
	}
	if mac := SecretMAC(key, a); strings.Contains(mac, "at-1") || len(mac) != 44 {
		t.Errorf("MAC %q: want 44 base64 characters", mac)
	}
}

func TestRestartDueOnlyWhenTheDataChanged(t *testing.T) {
	b := testBinding()
	b.Spec.RolloutRestartTargets = []authv1alpha1.RolloutRestartTarget{{Kind: authv1alpha1.RolloutRestartDeployment, Name: "api"}}
	b.Status.SecretMAC = "old"
	for _, tc := range []struct {
		name    string
		edit    func(b *authv1alpha1.IdPTokenBinding)
		written bool
		mac     string
		want    bool
	}{
		{"the data changed", func(*authv1alpha1.IdPTokenBinding) {}, true, "new", true},
		{"the same data written again", func(*authv1alpha1.IdPTokenBinding) {}, true, "old", false},
		{"nothing written", func(*authv1alpha1.IdPTokenBinding) {}, false, "new", false},
		{"the first write", func(b *authv1alpha1.IdPTokenBinding) { b.Status.SecretMAC = "" }, true, "new", false},
		{"no targets", func(b *authv1alpha1.IdPTokenBinding) { b.Spec.RolloutRestartTargets = nil }, true, "new", false},
		{"being deleted", func(b *authv1alpha1.IdPTokenBinding) { b.DeletionTimestamp = &metav1.Time{Time: time.Now()} }, true, "new", false},
	} {
		c := b.DeepCopy()
		tc.edit(c)
		if got := RestartDue(c, tc.written, tc.mac); got != tc.want {
			t.Errorf("%s: RestartDue = %t, want %t", tc.name, got, tc.want)
		}
	}
}

func TestARenewalKeepsTheScopeTheIdPDidNotRepeat(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	h.Scope = "repo user"
	next := Renewed(testFacts(b, h), h, Renewal{AccessToken: "at-2", TokenType: "bearer"})
	if next.Scope != "repo user" || next.TokenType != "bearer" {
		t.Errorf("scope %q, token type %q", next.Scope, next.TokenType)
	}
	if got := ParseState(next.StateData()); got.Scope != next.Scope || got.TokenType != next.TokenType {
		t.Error("scope and token type must survive the state Secret")
	}
}

func keysOf(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
