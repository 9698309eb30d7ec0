package auth0events

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// newSimClient starts the simulator and returns it with a Client whose token has scopes.
func newSimClient(t *testing.T, opts auth0sim.Options, mutate func(*Config), scopes ...string) (*auth0sim.Server, *Client) {
	t.Helper()
	sim, err := auth0sim.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	sim.AddM2MClient("operator", "operator-secret", scopes...)
	cc := clientcredentials.Config{
		ClientID: "operator", ClientSecret: "operator-secret", TokenURL: sim.URL() + "/oauth/token",
		EndpointParams: url.Values{"audience": {sim.Audience()}}, AuthStyle: oauth2.AuthStyleInParams,
	}
	src := cc.TokenSource(context.WithValue(context.Background(), oauth2.HTTPClient, sim.Client()))
	cfg := Config{
		Domain:     sim.Domain(),
		HTTPClient: sim.Client(),
		Token: func(context.Context) (string, error) {
			tok, err := src.Token()
			if err != nil {
				return "", err
			}
			return tok.AccessToken, nil
		},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// TestAgainstTheSimulator: 200 logins over 20 s while the simulator cuts the stream every 2 s,
// sends duplicates and swaps events: every login is handled exactly once.
func TestAgainstTheSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 20 s")
	}
	const users, every = 200, 100 * time.Millisecond
	connected := make(chan struct{}, 100)
	sim, c := newSimClient(t, auth0sim.Options{}, func(c *Config) {
		c.OnConnect = func() { connected <- struct{}{} }
	}, auth0sim.ScopeReadEvents)
	sim.SetEventsOptions(auth0sim.EventsOptions{
		CloseEvery: 2 * time.Second, Retry: 100 * time.Millisecond, Heartbeat: 250 * time.Millisecond,
		DuplicateEvery: 5, OutOfOrder: true,
	})
	for i := range users {
		sim.AddUser(fmt.Sprintf("auth0|u%03d", i))
	}

	var mu sync.Mutex
	handled := map[string]int{}
	var times []time.Time
	var last string
	all := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		errc <- c.Subscribe(ctx, From{}, func(ev Event) {
			mu.Lock()
			defer mu.Unlock()
			handled[ev.UserID]++
			times = append(times, ev.Time)
			if len(handled) == users {
				select {
				case <-all:
				default:
					close(all)
				}
			}
		}, func(off string) { mu.Lock(); last = off; mu.Unlock() })
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		t.Fatal("never connected")
	}
	for i := range users {
		sim.Login(fmt.Sprintf("auth0|u%03d", i))
		time.Sleep(every)
	}
	select {
	case <-all:
	case <-time.After(20 * time.Second):
	}
	time.Sleep(time.Second) // room for a late duplicate to be handled wrongly
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Subscribe = %v", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for i := range users {
		if n := handled[fmt.Sprintf("auth0|u%03d", i)]; n != 1 {
			t.Errorf("user u%03d handled %d times, want once", i, n)
		}
	}
	st := sim.EventsStats()
	inversions := 0
	for i := 1; i < len(times); i++ {
		if times[i].Before(times[i-1]) {
			inversions++
		}
	}
	t.Logf("streams %d, frames delivered %d, handled %d, out of time order %d, last checkpoint %q",
		st.StreamsOpened, st.Delivered, len(times), inversions, last)
	if st.StreamsOpened < 10 || st.Delivered <= users || last == "" {
		t.Errorf("the simulator did not cut (%d streams) or duplicate (%d frames), or no checkpoint (%q)", st.StreamsOpened, st.Delivered, last)
	}
}

// TestAgainstTheSimulatorRateLimited: reconnecting at once after every cut earns a 429; the
// client waits its Retry-After and loses nothing.
func TestAgainstTheSimulatorRateLimited(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for seconds")
	}
	var mu sync.Mutex
	var waits []time.Duration
	sim, c := newSimClient(t, auth0sim.Options{}, func(c *Config) {
		c.OnRetry = func(_ error, d time.Duration) { mu.Lock(); waits = append(waits, d); mu.Unlock() }
	}, auth0sim.ScopeReadEvents)
	sim.SetEventsOptions(auth0sim.EventsOptions{CloseEvery: 500 * time.Millisecond, Retry: time.Millisecond, MinReconnect: time.Second})
	col := newCollector()
	stop, _ := subscribe(t, c, From{Time: time.Now().Add(-time.Minute)}, col)
	for i := range 20 {
		sim.PublishEvent("user.updated", map[string]any{"user_id": fmt.Sprintf("u%d", i)})
		time.Sleep(150 * time.Millisecond)
	}
	col.waitEvents(t, 20)
	_ = stop()
	if got := len(col.ids()); got != 20 {
		t.Errorf("%d events handled, want 20", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if sim.EventsStats().Refused == 0 || len(waits) == 0 || waits[0] != time.Second {
		t.Errorf("refused %d, waits %v: want 429s waited out for Retry-After (1s)", sim.EventsStats().Refused, waits)
	}
}

func TestAgainstTheSimulatorFailures(t *testing.T) {
	t.Run("an expired offset", func(t *testing.T) {
		clk := testingclock.NewFakeClock(t0)
		sim, c := newSimClient(t, auth0sim.Options{Clock: clk}, nil, auth0sim.ScopeReadEvents)
		sim.SetEventsOptions(auth0sim.EventsOptions{Retention: time.Hour})
		col := newCollector()
		stop, _ := subscribe(t, c, From{Time: t0}, col)
		sim.PublishEvent("user.updated", map[string]any{"user_id": "a"})
		sim.PublishEvent("user.updated", map[string]any{"user_id": "b"})
		col.waitEvents(t, 2)
		_ = stop()
		offA := col.evs[0].Offset
		clk.Step(2 * time.Hour)
		_, errc := subscribe(t, c, From{Offset: offA}, newCollector())
		if err := waitErr(t, errc); !errors.Is(err, ErrOffsetExpired) {
			t.Fatalf("Subscribe = %v, want ErrOffsetExpired", err)
		}
	})
	t.Run("cursor_expired in the stream", func(t *testing.T) {
		sim, c := newSimClient(t, auth0sim.Options{}, nil, auth0sim.ScopeReadEvents)
		connected := make(chan struct{}, 1)
		c.cfg.OnConnect = func() { connected <- struct{}{} }
		_, errc := subscribe(t, c, From{}, newCollector())
		<-connected
		sim.FailStreams("cursor_expired")
		if err := waitErr(t, errc); !errors.Is(err, ErrOffsetExpired) {
			t.Fatalf("Subscribe = %v, want ErrOffsetExpired", err)
		}
	})
	t.Run("without read:events", func(t *testing.T) {
		_, c := newSimClient(t, auth0sim.Options{}, nil, auth0sim.ScopeReadUsers)
		_, errc := subscribe(t, c, From{}, newCollector())
		if err := waitErr(t, errc); !IsNotAuthorized(err) {
			t.Fatalf("Subscribe = %v, want not authorized", err)
		}
	})
}
