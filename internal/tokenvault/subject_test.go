package tokenvault

import (
	"context"
	"testing"
	"time"
)

// TestEverySubjectTokenIsFreshAndAccountable checks, on what the simulated tenant accepted, the
// Privileged Worker rules for subject tokens: a new random jti every time (Auth0 refuses a
// replay), iat and nbf when the request is sent (also after waiting on the rate limiter), a
// lifetime of at most 60 s ("tokens older than 60 seconds are rejected regardless") and a
// non-empty audit_context (required, 1–256 characters), even when the caller gave none.
func TestEverySubjectTokenIsFreshAndAccountable(t *testing.T) {
	st := newSimTenant(t)
	c := st.client(t, func(c *Config) { c.RequestsPerSecond, c.Burst = 1, 1 })
	ctx := context.Background()
	audits := []string{"idptoken-operator team-a/alice", "", "   ", "idptoken-operator team-b/bob"}
	var sentAt []time.Time
	for i, audit := range audits {
		if i == 2 {
			// Right after the previous one, the limiter holds this one for a second: its
			// token must be signed after the wait.
			done := make(chan error, 1)
			go func() {
				_, err := c.Exchange(ctx, simUser, simConn, audit)
				done <- err
			}()
			for !st.clk.HasWaiters() {
				time.Sleep(time.Millisecond)
			}
			st.clk.Step(time.Second)
			if err := <-done; err != nil {
				t.Fatalf("exchange %d: %v", i, err)
			}
			sentAt = append(sentAt, st.clk.Now())
			st.clk.Step(1500 * time.Millisecond)
			continue
		}
		if _, err := c.Exchange(ctx, simUser, simConn, audit); err != nil {
			t.Fatalf("exchange %d: %v", i, err)
		}
		sentAt = append(sentAt, st.clk.Now())
		if i != 1 {
			st.clk.Step(1500 * time.Millisecond)
		}
	}

	subjects := st.s.TokenVaultSubjects()
	if len(subjects) != len(audits) {
		t.Fatalf("the tenant accepted %d subject tokens, want %d", len(subjects), len(audits))
	}
	seen := map[string]bool{}
	for i, rec := range subjects {
		if rec.JTI == "" || seen[rec.JTI] {
			t.Errorf("subject %d: jti %q is empty or reused", i, rec.JTI)
		}
		seen[rec.JTI] = true
		if want := sentAt[i].Truncate(time.Second); !rec.IssuedAt.Equal(want) {
			t.Errorf("subject %d: iat %v, want the send time %v", i, rec.IssuedAt, want)
		}
		if rec.Lifetime <= 0 || rec.Lifetime > 60*time.Second {
			t.Errorf("subject %d: lifetime %v, want (0, 60s]", i, rec.Lifetime)
		}
		want := audits[i]
		if i == 1 || i == 2 {
			want = DefaultAuditContext
		}
		if rec.AuditContext != want {
			t.Errorf("subject %d: audit_context %q, want %q", i, rec.AuditContext, want)
		}
	}
	if s := st.s.Stats(); s.TokenVaultReplays != 0 || s.TokenVaultInvalidSubjectTokens != 0 {
		t.Errorf("simulator stats %+v: want no replay and no invalid subject token", s)
	}
}
