package binding

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"maps"
	"slices"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// SecretMAC is the HMAC-SHA256, keyed by the operator's own key, of a Secret's data, in
// standard base64: status.secretMAC. The data is framed unambiguously (each key and value
// length-prefixed, keys in order), so two different data maps never share a MAC by framing.
// Without the key, the MAC tells nothing about the token; with the key it is only ever
// compared, never reversed.
func SecretMAC(key []byte, data map[string][]byte) string {
	m := hmac.New(sha256.New, key)
	for _, k := range slices.Sorted(maps.Keys(data)) {
		writeFramed(m, []byte(k))
		writeFramed(m, data[k])
	}
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// writeFramed writes b to h after its length, so that no two sequences of writes run together.
func writeFramed(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}

// RestartDue tells whether a pass that wrote the binding's Secret changed its data for the
// workloads that read it at start: its rolloutRestartTargets are restarted. A first write (no
// MAC before) restarts nothing: no workload can have started with an older token. A write that
// left the data as it was (the same token again) restarts nothing.
func RestartDue(b *authv1alpha1.IdPTokenBinding, written bool, newMAC string) bool {
	old := b.Status.SecretMAC
	return len(b.Spec.RolloutRestartTargets) > 0 && written && b.DeletionTimestamp == nil &&
		old != "" && newMAC != "" && newMAC != old
}
