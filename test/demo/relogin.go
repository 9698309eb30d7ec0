package demo

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// The re-login step: a user whose IdP gives no refresh token, whose binding turns Ready=False
// TokenExpired when her token expires; the demo then logs her in again, and Auth0's
// user.updated event makes the operator adopt the new token within seconds (without the event
// it would look again only after an hour).
const (
	// IdPBrief is Google-like but grants no offline access: no refresh token, ever.
	IdPBrief    = "brief"
	ConnBrief   = "sim-brief"
	ConnBriefID = "con_simbrief000001"
	// UserGrace's only identity is on sim-brief.
	UserGrace = "oauth2|sim-brief|7007"
	// ReloginBinding is the binding of UserGrace the demo creates in the Auth0Tenant's namespace.
	ReloginBinding = "grace-brief"

	// BriefTokenLifetime is the lifetime of Grace's first token: it expires early in the run.
	BriefTokenLifetime = 20 * time.Second
	// ReloginTokenLifetime is the lifetime of the token of her new login: it outlasts the run.
	ReloginTokenLifetime = time.Hour
	// HealWithin is how soon after the new login her binding must be Ready with the new token.
	HealWithin = 15 * time.Second
)

// reloginTimes are the moments of the step that decide what the watcher tolerates.
type reloginTimes struct {
	loginAt, healedAt time.Time
	failed            bool
}

// excused tells whether, at now, the re-login binding may be Ready=False TokenExpired and its
// Secret may hold its expired token: until it has healed, and no longer than HealWithin after
// the new login; never once the step has failed.
func (s reloginTimes) excused(now time.Time) bool {
	switch {
	case s.failed:
		return false
	case !s.healedAt.IsZero() && !now.Before(s.healedAt):
		return false
	case !s.loginAt.IsZero() && now.Sub(s.loginAt) > HealWithin:
		return false
	}
	return true
}

// relogin runs the step, in its own goroutine, next to the watcher's polls.
type relogin struct {
	c      client.Client
	sim    *auth0sim.Server
	tenant types.NamespacedName // the Auth0Tenant whose events are enabled
	key    types.NamespacedName // the binding
	secret string
	idp    auth0sim.IdPOptions
	hold   time.Duration // how long the binding stays TokenExpired before the new login
	done   chan struct{}

	mu        sync.Mutex
	times     reloginTimes
	expiredAt time.Time
	latency   time.Duration
	failure   string
	status    string // the step's last note, for the live view
}

// startRelogin adds Grace, her IdP and connection to the simulator, enables spec.events on the
// samples' Auth0Tenant, creates her binding and adds it to smp. Without an Auth0Tenant among
// the samples it does nothing and returns nil.
func startRelogin(ctx context.Context, c client.Client, sim *auth0sim.Server, smp *samples, hold time.Duration) (*relogin, error) {
	i := slices.IndexFunc(smp.tenants, func(t sampleTenant) bool { return t.kind == "Auth0Tenant" })
	if i < 0 {
		return nil, nil
	}
	tenant := smp.tenants[i].key
	r := &relogin{c: c, sim: sim, tenant: tenant, hold: hold, done: make(chan struct{}),
		key: types.NamespacedName{Namespace: tenant.Namespace, Name: ReloginBinding}, secret: ReloginBinding + "-token",
		idp: auth0sim.IdPOptions{Name: IdPBrief, ClientID: "client-" + IdPBrief, ClientSecret: "idp_" + randomHex(16),
			Rotation: auth0sim.RotationNone, AccessTokenLifetime: BriefTokenLifetime}}
	sim.AddIdP(r.idp)
	sim.AddConnection(auth0sim.ConnectionSpec{ID: ConnBriefID, Name: ConnBrief, Strategy: "oauth2", IdP: IdPBrief})
	sim.AddUser(UserGrace, auth0sim.IdentitySpec{Connection: ConnBrief, Provider: "oauth2", UserID: "sim-brief|7007", IsSocial: true, IdP: IdPBrief})

	events := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"events":{"enabled":true}}}`))
	obj := &authv1alpha1.Auth0Tenant{ObjectMeta: metav1.ObjectMeta{Namespace: tenant.Namespace, Name: tenant.Name}}
	if err := c.Patch(ctx, obj, events, client.FieldOwner("idptoken-demo")); err != nil {
		return nil, fmt.Errorf("enabling events on Auth0Tenant %s: %w", tenant, err)
	}
	b := &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: r.key.Namespace, Name: r.key.Name},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Name: tenant.Name},
			User:      &authv1alpha1.UserSource{ID: UserGrace, Connection: ConnBrief},
			Secret:    authv1alpha1.SecretTarget{Name: r.secret},
		},
	}
	if err := c.Create(ctx, b, client.FieldOwner("idptoken-demo")); err != nil {
		return nil, fmt.Errorf("creating IdPTokenBinding %s: %w", r.key, err)
	}
	smp.bindings = append(smp.bindings, sampleBinding{key: r.key, userID: UserGrace, connection: ConnBrief,
		secretName: r.secret, tenant: tenant.Name, relogin: true})
	sort.Slice(smp.bindings, func(i, j int) bool { return smp.bindings[i].key.String() < smp.bindings[j].key.String() })
	return r, nil
}

// snapshot returns the step's state.
func (r *relogin) snapshot() (times reloginTimes, expiredAt time.Time, latency time.Duration, failure, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.times, r.expiredAt, r.latency, r.failure, r.status
}

// finished tells whether the step has ended.
func (r *relogin) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}
