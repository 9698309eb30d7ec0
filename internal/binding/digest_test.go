package binding

import (
	"bytes"
	"testing"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// TestACachedTargetHoldsDigestsAndStillDetectsDrift: the cache's copy of a target Secret holds no
// value of its data, and comparing it with what the operator would write finds every edit.
func TestACachedTargetHoldsDigestsAndStillDetectsDrift(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	cached := func() *Token { return h }
	digested := func(edit func(d map[string][]byte)) bool {
		s := targetFor(b, cached())
		if edit != nil {
			edit(s.Data)
		}
		raw := string(s.Data[authv1alpha1.SecretKeyAccessToken])
		DigestTargetData(s)
		for k, v := range s.Data {
			if len(v) != digestBytes || (raw != "" && bytes.Contains(v, []byte(raw))) {
				t.Fatalf("key %s: the cached copy holds %d bytes, not a %d-byte digest", k, len(v), digestBytes)
			}
		}
		return TargetUpToDate(b, h, s)
	}
	tests := map[string]struct {
		edit func(d map[string][]byte)
		want bool
	}{
		"as written":                  {want: true},
		"the token edited":            {edit: func(d map[string][]byte) { d[authv1alpha1.SecretKeyAccessToken] = []byte("at-2") }},
		"the expiry removed":          {edit: func(d map[string][]byte) { delete(d, authv1alpha1.SecretKeyExpiresAt) }},
		"a refresh token added":       {edit: func(d map[string][]byte) { d[authv1alpha1.SecretKeyRefreshToken] = []byte("rt-1") }},
		"a key of someone else's":     {edit: func(d map[string][]byte) { d["extra"] = []byte("x") }, want: true},
		"a token with the key's name": {edit: func(d map[string][]byte) { d[authv1alpha1.SecretKeyAccessToken] = []byte("expires_at") }},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := digested(tc.edit); got != tc.want {
				t.Errorf("up to date = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAMarkerWrittenOnTheSecretDoesNotStopTheDigest(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	s := targetFor(b, h)
	s.Annotations[annotationCachedDigest] = cachedDigestValue // written by someone on the Secret
	DigestTargetData(s)
	if len(s.Data[authv1alpha1.SecretKeyAccessToken]) != digestBytes || !TargetUpToDate(b, h, s) {
		t.Fatal("a Secret carrying the marker was not digested, or no longer matches: its writes would loop")
	}
}

func TestOnlyTargetSecretsAreDigested(t *testing.T) {
	b := testBinding()
	s := targetFor(b, testHeld(b))
	s.Labels[authv1alpha1.LabelRole] = authv1alpha1.RoleRefreshState
	before := string(s.Data[authv1alpha1.SecretKeyAccessToken])
	DigestTargetData(s)
	if string(s.Data[authv1alpha1.SecretKeyAccessToken]) != before || s.Annotations[annotationCachedDigest] != "" {
		t.Fatal("a refresh-state Secret's data was digested: the engine reads its values")
	}
}
