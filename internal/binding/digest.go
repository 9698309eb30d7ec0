package binding

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// The manager's cache keeps a target Secret's data as digests, not values: the engine only ever
// compares that data with what it would write (TargetMatches), and the values are most of a
// cached Secret's size (a JWT is one or two KiB). A digest is an HMAC under a key drawn at
// random by each process and never written anywhere, so it tells nothing about a token and is
// never compared with anything but a digest of the same process.
//
// The cached copy holds no data map at all: each key's tag and its value's digest are packed
// into one annotation, annotationCachedDigest, which exists only in the cache (a copy with it is
// never written back: release patches labels and annotations only, from the copy itself). A
// data map of even three keys costs ~400 bytes; the packed form costs 24 bytes a key, which at
// 10,000 target Secrets is 4 MB of the manager's live heap.

// annotationCachedDigest holds a cached copy's packed digests: entries of entryBytes, each a
// key's tag followed by the digest of its value.
const annotationCachedDigest = "auth.idptoken.dev/cached-data"

const (
	keyTagBytes = 8  // which key an entry is for
	digestBytes = 16 // the digest of the key's value
	entryBytes  = keyTagBytes + digestBytes
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

// DigestTargetData replaces the data of a target Secret by the packed digests of its keys and
// values, for the cache (a cache transform, called once on each object read from the API
// server); other Secrets are left as they are. It changes s. An annotation of that name someone
// wrote on the Secret itself is replaced: the data is digested all the same.
func DigestTargetData(s *corev1.Secret) {
	if !IsTargetSecret(s.Labels) {
		return
	}
	var packed strings.Builder
	packed.Grow(len(s.Data) * entryBytes)
	for k, v := range s.Data {
		packed.WriteString(tagOf(k))
		packed.Write(dataDigest(k, v))
	}
	if s.Annotations == nil {
		s.Annotations = make(map[string]string, 1)
	}
	s.Annotations[annotationCachedDigest] = packed.String()
	s.Data = nil
}

// macs reuses this process's HMACs: a digest is computed for every cached target Secret's keys
// and on every pass that compares one.
var macs = sync.Pool{New: func() any { return hmac.New(sha256.New, processKey) }}

// mac returns the first n bytes of the HMAC of what write writes.
func mac(n int, write func(h hash.Hash)) []byte {
	m := macs.Get().(hash.Hash)
	defer macs.Put(m)
	m.Reset()
	write(m)
	var sum [sha256.Size]byte
	return append([]byte(nil), m.Sum(sum[:0])[:n]...)
}

// keyTag names key k in the packed digests.
func keyTag(k string) []byte {
	return mac(keyTagBytes, func(h hash.Hash) {
		writeFramed(h, []byte("key"))
		writeFramed(h, []byte(k))
	})
}

// dataDigest is the digest of one key and value, framed so that no two pairs share it by framing.
func dataDigest(k string, v []byte) []byte {
	return mac(digestBytes, func(h hash.Hash) {
		writeFramed(h, []byte(k))
		h.Write(v)
	})
}

// packedDigests returns the packed digests of a cached copy (no data, and the annotation); false
// for a Secret read from the API server, whose data is compared as it is.
func packedDigests(s *corev1.Secret) (string, bool) {
	packed, cached := s.Annotations[annotationCachedDigest]
	return packed, cached && s.Data == nil
}

// dataMatches tells whether the Secret's value of key k is want. A digest frames its key, so an
// entry with want's digest is key k's.
func dataMatches(s *corev1.Secret, k string, want []byte) bool {
	packed, cached := packedDigests(s)
	if !cached {
		got, has := s.Data[k]
		return has && string(got) == string(want)
	}
	d := string(dataDigest(k, want))
	for e := packed; len(e) >= entryBytes; e = e[entryBytes:] {
		if e[keyTagBytes:entryBytes] == d {
			return true
		}
	}
	return false
}

// hasData tells whether the Secret has key k.
func hasData(s *corev1.Secret, k string) bool {
	packed, cached := packedDigests(s)
	if !cached {
		_, has := s.Data[k]
		return has
	}
	tag := tagOf(k)
	for e := packed; len(e) >= entryBytes; e = e[entryBytes:] {
		if e[:keyTagBytes] == tag {
			return true
		}
	}
	return false
}

// tagOf is keyTag(k), computed once per process for the keys the operator owns.
func tagOf(k string) string {
	if t, ok := managedKeyTags()[k]; ok {
		return t
	}
	return string(keyTag(k))
}

var managedKeyTags = sync.OnceValue(func() map[string]string {
	tags := make(map[string]string, len(managedDataKeys))
	for _, k := range managedDataKeys {
		tags[k] = string(keyTag(k))
	}
	return tags
})
