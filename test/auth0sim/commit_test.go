/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// hangGuard bounds each wait of these tests, so that a broken server fails them instead of
// hanging; it plays no part in what they assert.
const hangGuard = 10 * time.Second

// delayedIdP starts a server with a strict IdP that holds its replies for delay on a fake clock,
// and returns the channel its events arrive on.
func delayedIdP(t *testing.T, delay time.Duration) (*auth0sim.Server, *testingclock.FakeClock, <-chan auth0sim.IdPEvent) {
	t.Helper()
	s, clk := newSim(t, auth0sim.Options{})
	events := make(chan auth0sim.IdPEvent, 16)
	s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid", ClientSecret: "csecret", Rotation: auth0sim.RotationStrict,
		ReplyDelay: delay, Observe: func(e auth0sim.IdPEvent) { events <- e }})
	s.AddUser("oauth2|u", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "u", IdP: "idp", OfflineAccess: true})
	return s, clk, events
}

func nextEvent(t *testing.T, events <-chan auth0sim.IdPEvent, want auth0sim.IdPEventKind) auth0sim.IdPEvent {
	t.Helper()
	select {
	case e := <-events:
		if e.Kind != want || e.IdP != "idp" {
			t.Fatalf("event %+v, want %s at idp", e, want)
		}
		return e
	case <-time.After(hangGuard):
		t.Fatalf("no %s event", want)
	}
	return auth0sim.IdPEvent{}
}

// waitHeld waits until the server's hold timer is armed on the fake clock.
func waitHeld(t *testing.T, clk *testingclock.FakeClock) {
	t.Helper()
	deadline := time.Now().Add(hangGuard)
	for !clk.HasWaiters() {
		if time.Now().After(deadline) {
			t.Fatal("the reply is not being held")
		}
		time.Sleep(time.Millisecond)
	}
}

type refreshResult struct {
	status       int
	refreshToken string
	err          error
}

// startRefresh sends a refresh grant in the background.
func startRefresh(ctx context.Context, c *http.Client, s *auth0sim.Server, rt string) <-chan refreshResult {
	out := make(chan refreshResult, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.TokenURL("idp"), strings.NewReader(refreshForm(rt).Encode()))
		if err != nil {
			out <- refreshResult{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := c.Do(req)
		if err != nil {
			out <- refreshResult{err: err}
			return
		}
		defer func() { _ = resp.Body.Close() }()
		var body struct {
			RefreshToken string `json:"refresh_token"`
		}
		err = json.NewDecoder(resp.Body).Decode(&body)
		out <- refreshResult{status: resp.StatusCode, refreshToken: body.RefreshToken, err: err}
	}()
	return out
}

func TestReplyDelayCommitsOnlyOnDelivery(t *testing.T) {
	const delay = 5 * time.Second
	s, clk, events := delayedIdP(t, delay)
	c := clientFor(t, s)
	rt := s.CurrentRefreshToken("oauth2|u", "c")

	// A client that goes away while the reply is held spends nothing.
	ctx, cancel := context.WithCancel(context.Background())
	gone := startRefresh(ctx, c, s, rt)
	nextEvent(t, events, auth0sim.IdPRefreshArrived)
	waitHeld(t, clk)
	cancel()
	nextEvent(t, events, auth0sim.IdPRefreshAbandoned)
	if r := <-gone; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("abandoned request: %+v, want context.Canceled", r)
	}
	st := s.Stats()
	if st.IdPRefreshesAbandoned != 1 || st.IdPRefreshes["idp"] != 0 || st.InvalidGrants != 0 {
		t.Fatalf("Stats abandoned=%d refreshes=%d invalid_grant=%d, want 1, 0, 0", st.IdPRefreshesAbandoned, st.IdPRefreshes["idp"], st.InvalidGrants)
	}
	if !s.RefreshTokenLive(rt) || s.RefreshTokenSpent(rt) || s.LiveRefreshTokens("idp") != 1 {
		t.Fatal("an abandoned refresh changed the lineage")
	}

	// A client that waits gets the successor once the delay has passed, and only then.
	delivered := startRefresh(context.Background(), c, s, rt)
	arrived := nextEvent(t, events, auth0sim.IdPRefreshArrived)
	waitHeld(t, clk)
	if !s.RefreshTokenLive(rt) {
		t.Fatal("the refresh token was spent before the reply was delivered")
	}
	clk.Step(delay)
	committed := nextEvent(t, events, auth0sim.IdPRefreshCommitted)
	if got := committed.At.Sub(arrived.At); got != delay {
		t.Errorf("committed %v after arrival, want %v", got, delay)
	}
	r := <-delivered
	if r.err != nil || r.status != http.StatusOK || r.refreshToken == "" {
		t.Fatalf("delivered request: status %d, err %v, refresh token returned: %t", r.status, r.err, r.refreshToken != "")
	}
	if !s.RefreshTokenSpent(rt) || !s.RefreshTokenLive(r.refreshToken) || s.LiveRefreshTokens("idp") != 1 {
		t.Fatal("the delivered refresh did not rotate the lineage to exactly one live token")
	}
}

func TestReplyDelayRefusesSpentTokensAtOnce(t *testing.T) {
	const delay = time.Minute
	s, clk, events := delayedIdP(t, delay)
	c := clientFor(t, s)
	rt := s.CurrentRefreshToken("oauth2|u", "c")

	// Two grants of one token held at once: the first delivered wins, the other is refused.
	first := startRefresh(context.Background(), c, s, rt)
	second := startRefresh(context.Background(), c, s, rt)
	nextEvent(t, events, auth0sim.IdPRefreshArrived)
	nextEvent(t, events, auth0sim.IdPRefreshArrived)
	deadline := time.Now().Add(hangGuard)
	for clk.Waiters() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the replies are not being held")
		}
		time.Sleep(time.Millisecond)
	}
	clk.Step(delay)
	statuses := map[int]int{}
	for _, ch := range []<-chan refreshResult{first, second} {
		r := <-ch
		if r.err != nil && r.status == 0 {
			t.Fatalf("request failed: %v", r.err)
		}
		statuses[r.status]++
	}
	if statuses[http.StatusOK] != 1 || statuses[http.StatusBadRequest] != 1 {
		t.Fatalf("statuses %v, want one 200 and one 400", statuses)
	}

	// A spent token is refused without waiting for the delay (the fake clock stands still).
	r := <-startRefresh(context.Background(), c, s, rt)
	if r.status != http.StatusBadRequest {
		t.Fatalf("spent token: status %d, want 400", r.status)
	}
	if st := s.Stats(); st.InvalidGrants != 2 || st.IdPRefreshes["idp"] != 1 {
		t.Fatalf("Stats invalid_grant=%d refreshes=%d, want 2 and 1", st.InvalidGrants, st.IdPRefreshes["idp"])
	}
}
