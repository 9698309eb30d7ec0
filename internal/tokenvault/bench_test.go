package tokenvault

import (
	"context"
	"testing"
)

// BenchmarkSign measures what one exchange costs the operator's CPU in
// signatures: a subject token and a client assertion.
func BenchmarkSign(b *testing.B) {
	s, err := newSigner(testKey(), domain, clientID)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := s.subjectToken(now, "google-oauth2|1", "idptoken-operator team-a/alice"); err != nil {
			b.Fatal(err)
		}
		if _, err := s.clientAssertion(now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExchange measures one whole exchange over HTTPS against the
// simulator (which verifies both JWTs), on one connection.
func BenchmarkExchange(b *testing.B) {
	st := newSimTenant(b)
	c := st.client(b, func(c *Config) { c.RequestsPerSecond = 1e9; c.Burst = 1 << 20 })
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Exchange(ctx, simUser, simConn, "bench"); err != nil {
			b.Fatal(err)
		}
	}
}
