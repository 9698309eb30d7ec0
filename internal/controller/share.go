package controller

import "sync"

// tenantShares keeps any one tenant's requests (to Auth0, its IdPs, Token Vault) to at most a
// quarter of the reconcile workers at once, so that a slow, rate-limited or hostile tenant
// domain cannot hold every worker of a manager that other teams' tenants share. A pass that
// finds its tenant's share taken does not wait: it ends and looks again shortly.
type tenantShares struct {
	limit int
	mu    sync.Mutex
	busy  map[TenantKey]int
}

func newTenantShares(workers int) *tenantShares {
	return &tenantShares{limit: max(1, workers/4), busy: map[TenantKey]int{}}
}

// try takes one of the tenant's places; ok is false when all are taken. release gives it back.
func (s *tenantShares) try(key TenantKey) (release func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.busy[key] >= s.limit {
		return nil, false
	}
	s.busy[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.busy[key]--; s.busy[key] <= 0 {
				delete(s.busy, key)
			}
		})
	}, true
}
