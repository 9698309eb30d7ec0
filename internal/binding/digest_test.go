package binding

import (
	"maps"
	"slices"
	"strings"
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
		keys := len(s.Data)
		DigestTargetData(s)
		packed := s.Annotations[annotationCachedDigest]
		if s.Data != nil || len(packed) != keys*entryBytes || (raw != "" && strings.Contains(packed, raw)) {
			t.Fatalf("the cached copy holds data %v and %d packed bytes, want no data and %d bytes of digests", slices.Collect(maps.Keys(s.Data)), len(packed), keys*entryBytes)
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
	s.Annotations[annotationCachedDigest] = "written by someone on the Secret"
	DigestTargetData(s)
	if s.Data != nil || !TargetUpToDate(b, h, s) {
		t.Fatal("a Secret carrying the marker was not digested, or no longer matches: its writes would loop")
	}
}

func TestOnlyTargetSecretsAreDigested(t *testing.T) {
	b := testBinding()
	s := targetFor(b, testHeld(b))
	s.Labels[authv1alpha1.LabelRole] = authv1alpha1.RoleRefreshState
	before := string(s.Data[authv1alpha1.SecretKeyAccessToken])
	DigestTargetData(s)
	if _, marked := s.Annotations[annotationCachedDigest]; string(s.Data[authv1alpha1.SecretKeyAccessToken]) != before || marked {
		t.Fatal("a refresh-state Secret's data was digested: the engine reads its values")
	}
}

// TestAnUncachedSecretIsComparedByItsData: a Secret read from the API server (not the cache) is
// compared by its values, whatever annotation of the cache's name it carries.
func TestAnUncachedSecretIsComparedByItsData(t *testing.T) {
	b := testBinding()
	h := testHeld(b)
	s := targetFor(b, h)
	s.Annotations[annotationCachedDigest] = "written by someone on the Secret"
	if !TargetUpToDate(b, h, s) {
		t.Error("a Secret with the token and the annotation was not up to date: its data was not compared")
	}
	s.Data = nil
	if TargetUpToDate(b, h, s) {
		t.Error("a Secret with no data but the annotation was up to date")
	}
}
