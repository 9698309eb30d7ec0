package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// LeaderElectionID is the lease of the managers that serve every binding.
const LeaderElectionID = "idptoken-operator.auth.idptoken.dev"

// ParseWatchLabelSelector parses --watch-label-selector (Flux's convention, e.g.
// "sharding.idptoken.dev/shard=a" or "!sharding.idptoken.dev/shard"); empty selects every binding.
func ParseWatchLabelSelector(s string) (labels.Selector, error) {
	if strings.TrimSpace(s) == "" {
		return labels.Everything(), nil
	}
	sel, err := labels.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("--watch-label-selector: %w", err)
	}
	return sel, nil
}

// WithBindingSelector limits the cache, and so every controller, to the IdPTokenBindings that
// match sel: a manager started with it serves only its shard. An empty selector changes nothing.
func WithBindingSelector(opts cache.Options, sel labels.Selector) cache.Options {
	if sel == nil || sel.Empty() {
		return opts
	}
	byObject := make(map[client.Object]cache.ByObject, len(opts.ByObject)+1)
	for obj, by := range opts.ByObject {
		byObject[obj] = by
	}
	byObject[&authv1alpha1.IdPTokenBinding{}] = cache.ByObject{Label: sel}
	opts.ByObject = byObject
	return opts
}

// ShardLeaderElectionID gives each shard its own lease, so that managers with different
// selectors run side by side while the replicas of one shard still elect a single leader.
func ShardLeaderElectionID(sel labels.Selector) string {
	if sel == nil || sel.Empty() {
		return LeaderElectionID
	}
	sum := sha256.Sum256([]byte(sel.String()))
	return "idptoken-operator-" + hex.EncodeToString(sum[:])[:10] + ".auth.idptoken.dev"
}
