package binding

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// The manager's cache keeps a target Secret's data as digests, not values: the engine only ever
// compares that data with what it would write (TargetMatches), and the values are most of a
// cached Secret's size (a JWT is one or two KiB). A digest is an HMAC under a key drawn at
// random by each process and never written anywhere, so it tells nothing about a token and is
// never compared with anything but a digest of the same process.

// annotationCachedDigest marks a cached copy whose data holds digests. It exists only in the
// cache; a copy with it is never written back (release patches labels and annotations only).
const annotationCachedDigest = "auth.idptoken.dev/cached-data"

const (
	cachedDigestValue = "hmac-sha256-128"
	digestBytes       = 16
)

// processKey is this process's digest key.
var processKey = func() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return b
}()

// IsTargetSecret tells whether a Secret's labels make it a binding's target (not the operator's
// refresh state, IdP client or MAC key, which carry a role).
func IsTargetSecret(labels map[string]string) bool {
	return labels[authv1alpha1.LabelBinding] != "" && labels[authv1alpha1.LabelRole] == ""
}

// DigestTargetData replaces the data values of a target Secret by their digests and marks it
// so, for the cache (a cache transform, called once on each object read from the API server);
// other Secrets are left as they are. It changes s. A marker someone wrote on the Secret itself
// changes nothing: the data is digested all the same.
func DigestTargetData(s *corev1.Secret) {
	if !IsTargetSecret(s.Labels) {
		return
	}
	for k, v := range s.Data {
		s.Data[k] = dataDigest(k, v)
	}
	if s.Annotations == nil {
		s.Annotations = map[string]string{}
	}
	s.Annotations[annotationCachedDigest] = cachedDigestValue
}

// dataDigest is the digest of one key and value, framed so that no two pairs share it by framing.
func dataDigest(k string, v []byte) []byte {
	m := hmac.New(sha256.New, processKey)
	writeFramed(m, []byte(k))
	m.Write(v)
	return m.Sum(nil)[:digestBytes]
}

// dataMatches tells whether the Secret's value of key k is want: compared as digests when s is a
// cached copy that holds them.
func dataMatches(s *corev1.Secret, k string, want []byte) bool {
	got := s.Data[k]
	if s.Annotations[annotationCachedDigest] == cachedDigestValue {
		return hmac.Equal(got, dataDigest(k, want))
	}
	return string(got) == string(want)
}
