package demo

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// run runs the step until it ends or ctx does; note tells what happens.
func (r *relogin) run(ctx context.Context, note func(format string, args ...any)) {
	defer close(r.done)
	say := func(format string, args ...any) {
		r.mu.Lock()
		r.status = fmt.Sprintf(format, args...)
		r.mu.Unlock()
		note(format, args...)
	}
	if err := r.steps(ctx, say); err != nil && ctx.Err() == nil {
		r.mu.Lock()
		r.times.failed, r.failure = true, err.Error()
		r.status = "FAILED: " + err.Error()
		r.mu.Unlock()
		note("%s", "FAILED: "+err.Error())
	}
}

func (r *relogin) steps(ctx context.Context, say func(format string, args ...any)) error {
	if err := r.subscribed(ctx, say); err != nil {
		return err
	}
	if err := r.expired(ctx, say); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(r.hold):
	}
	return r.loginAndHeal(ctx, say)
}

// subscribed waits for the tenant's events subscription.
func (r *relogin) subscribed(ctx context.Context, say func(format string, args ...any)) error {
	var tenant authv1alpha1.Auth0Tenant
	events := ""
	if !waitFor(ctx, 30*time.Second, 200*time.Millisecond, func() bool {
		if r.c.Get(ctx, r.tenant, &tenant) == nil {
			events = conditionOf(tenant.Status.Conditions, authv1alpha1.ConditionEventsReady)
		}
		return events == "True "+authv1alpha1.ReasonSubscribed
	}) {
		return fmt.Errorf("the Auth0Tenant %s did not subscribe to Auth0 events within 30s (EventsReady %s)", r.tenant, orDash(events))
	}
	say("Auth0 events: Auth0Tenant %s subscribed to the Events API (EventsReady=True %s)", r.tenant, authv1alpha1.ReasonSubscribed)
	return nil
}

// expired waits for the binding to be TokenExpired after a failed look at Auth0.
func (r *relogin) expired(ctx context.Context, say func(format string, args ...any)) error {
	var b authv1alpha1.IdPTokenBinding
	ready := ""
	if !waitFor(ctx, BriefTokenLifetime+30*time.Second, 200*time.Millisecond, func() bool {
		if r.c.Get(ctx, r.key, &b) == nil {
			ready = conditionOf(b.Status.Conditions, authv1alpha1.ConditionReady)
		}
		return ready == "False "+authv1alpha1.ReasonTokenExpired
	}) {
		return fmt.Errorf("binding %s did not turn Ready=False %s within %s (Ready=%s)", r.key, authv1alpha1.ReasonTokenExpired,
			BriefTokenLifetime+30*time.Second, orDash(ready))
	}
	r.mu.Lock()
	r.expiredAt = time.Now()
	r.mu.Unlock()
	// A token that lives less than MinRenewalSpacing is looked at once more when the spacing
	// allows; once a look at Auth0 has found nothing newer (a failed attempt), the operator
	// waits for the binding's fallback interval: only an event can bring a new login's token
	// sooner.
	if !gaveUp(&b) {
		say("%-32s Ready=False TokenExpired: %s", r.key, readyMessage(&b))
		if !waitFor(ctx, expiry.MinRenewalSpacing+30*time.Second, 200*time.Millisecond, func() bool {
			return r.c.Get(ctx, r.key, &b) == nil && gaveUp(&b)
		}) {
			return fmt.Errorf("binding %s did not settle in Ready=False %s after a failed look at Auth0 within %s (Ready=%s)",
				r.key, authv1alpha1.ReasonTokenExpired, expiry.MinRenewalSpacing+30*time.Second,
				orDash(conditionOf(b.Status.Conditions, authv1alpha1.ConditionReady)))
		}
	}
	next := timeOf(b.Status.LastFailureTime).Add(binding.FallbackInterval(&b))
	say("%-32s Ready=False TokenExpired, and Auth0 has nothing newer; without an event the operator would look again in %s: %s",
		r.key, until(time.Now(), next), readyMessage(&b))
	return nil
}

// loginAndHeal logs the user in again and waits for the binding to be Ready with the new token.
func (r *relogin) loginAndHeal(ctx context.Context, say func(format string, args ...any)) error {
	// Her new login's token outlasts the run, so that the healed binding stays Ready.
	r.idp.AccessTokenLifetime = ReloginTokenLifetime
	r.sim.AddIdP(r.idp)
	r.sim.Login(UserGrace)
	login := time.Now()
	r.mu.Lock()
	r.times.loginAt = login
	r.mu.Unlock()
	fresh := r.sim.CurrentAccessToken(UserGrace, ConnBrief)
	say("user %s logs in again: Auth0 holds her new token %s (valid for %s) and publishes user.updated", UserGrace, Fingerprint(fresh), fmtDur(ReloginTokenLifetime))

	var b authv1alpha1.IdPTokenBinding
	var s corev1.Secret
	ready := ""
	if !waitFor(ctx, HealWithin, 100*time.Millisecond, func() bool {
		if r.c.Get(ctx, r.key, &b) != nil || r.c.Get(ctx, types.NamespacedName{Namespace: r.key.Namespace, Name: r.secret}, &s) != nil {
			return false
		}
		ready = conditionOf(b.Status.Conditions, authv1alpha1.ConditionReady)
		return ready == "True "+authv1alpha1.ReasonSynced && secretToken(&s) == fresh
	}) {
		return fmt.Errorf("binding %s was not Ready with the new token %s within %s after user %s logged in again (Ready=%s, Secret token %s)",
			r.key, Fingerprint(fresh), HealWithin, UserGrace, orDash(ready), Fingerprint(secretToken(&s)))
	}
	healed := time.Now()
	r.mu.Lock()
	r.times.healedAt, r.latency = healed, healed.Sub(login)
	r.mu.Unlock()
	say("user %s logged in again; binding %s Ready with the new token %s %.1f s later (Auth0 event %s)",
		UserGrace, r.key, Fingerprint(fresh), healed.Sub(login).Seconds(), auth0sim.EventUserUpdated)
	return nil
}

// waitFor calls ok every interval until it returns true (then true) or timeout or ctx ends.
func waitFor(ctx context.Context, timeout, interval time.Duration, ok func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if ok() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(interval):
		}
	}
}

// gaveUp tells whether the binding is TokenExpired after a failed look at Auth0: it then waits
// for its fallback interval.
func gaveUp(b *authv1alpha1.IdPTokenBinding) bool {
	return conditionOf(b.Status.Conditions, authv1alpha1.ConditionReady) == "False "+authv1alpha1.ReasonTokenExpired &&
		b.Status.FailedAttempts > 0 && b.Status.LastFailureTime != nil
}

// readyMessage is the binding's Ready message, redacted.
func readyMessage(b *authv1alpha1.IdPTokenBinding) string {
	if c := meta.FindStatusCondition(b.Status.Conditions, authv1alpha1.ConditionReady); c != nil {
		return redact(c.Message)
	}
	return ""
}

// conditionOf is a condition as "<status> <reason>"; "" when absent.
func conditionOf(conds []metav1.Condition, typ string) string {
	if c := meta.FindStatusCondition(conds, typ); c != nil {
		return string(c.Status) + " " + c.Reason
	}
	return ""
}
