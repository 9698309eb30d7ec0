package controller

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func TestOneTenantHoldsAtMostAQuarterOfTheWorkers(t *testing.T) {
	s := newTenantShares(16)
	a := TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: "a"}}
	b := TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: "b"}}
	var releases []func()
	for i := range 4 {
		release, ok := s.try(a)
		if !ok {
			t.Fatalf("place %d of 4 refused", i+1)
		}
		releases = append(releases, release)
	}
	if _, ok := s.try(a); ok {
		t.Fatal("a fifth place of 16 workers given to one tenant")
	}
	if release, ok := s.try(b); !ok {
		t.Fatal("another tenant was starved")
	} else {
		release()
	}
	releases[0]()
	releases[0]() // a second release gives back nothing more
	if _, ok := s.try(a); !ok {
		t.Fatal("a released place was not given back")
	}
	if _, ok := s.try(a); ok {
		t.Fatal("a double release gave back two places")
	}
	if _, ok := newTenantShares(2).try(a); !ok {
		t.Fatal("with fewer than 4 workers a tenant still gets one")
	}
}

func TestClaimHoldersSurviveARestartButNeverJoinTwoShards(t *testing.T) {
	a := ClaimHolderName("idptoken-7d9f-x2", "", "shard=a")
	if a != ClaimHolderName("idptoken-7d9f-x2", "", "shard=a") {
		t.Error("a manager restarted in the same pod must be the same holder")
	}
	for _, other := range []string{
		ClaimHolderName("idptoken-7d9f-x2", "", "shard=b"),
		ClaimHolderName("idptoken-7d9f-y9", "", "shard=a"),
		ClaimHolderName("idptoken-7d9f-x2", "team-a", "shard=a"),
	} {
		if other == a {
			t.Errorf("%q: two shards or two pods share a holder", other)
		}
	}
	if strings.Contains(ClaimHolderName("", "", ""), " ") || ClaimHolderName("", "", "") == "" {
		t.Error("a holder is one word (the claim annotation is <holder> <time>)")
	}
}
