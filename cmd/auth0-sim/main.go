// Command auth0-sim serves a simulated Auth0 tenant, with the identity providers whose tokens
// it holds, over HTTPS on the loopback interface, for trying the operator (or any application
// that reads IdP tokens from Auth0's Management API) without an Auth0 account.
//
// It creates its own CA and writes, into --out-dir: ca.crt, credentials.env (shell
// variables, also the values the templates of config/samples/demo use) and credentials.json.
// The credentials files hold the machine-to-machine application's client secret (mode 0600);
// no token is ever printed or written.
//
// The tenant has a machine-to-machine application with read:users, read:user_idp_tokens,
// read:connections and read:connections_options; four IdPs (Google-like: no rotation;
// Microsoft-like: rotation, JWT access tokens; GitHub-like: single-use refresh tokens; an
// enterprise IdP) behind connections of strategy oauth2 whose options.tokenURL points at the
// simulated token endpoints; five users with offline access; and one enterprise connection
// holding admin tokens. See docs/demo.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/idptoken/idptoken-operator/test/demo"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "Listen address (loopback only); port 0 picks a free port.")
	lifetime := flag.Duration("token-lifetime", 2*time.Minute, "Lifetime of the IdP access tokens (users' and admin tokens).")
	outDir := flag.String("out-dir", ".demo/sim", "Directory for ca.crt, credentials.env and credentials.json.")
	rateLimit := flag.Int("rate-limit", 10, "Management API requests per second before 429 (0: unlimited).")
	logRequests := flag.Bool("log-requests", false, "Log one line per request (method, path, status; never tokens) to stderr.")
	flag.Parse()
	if *lifetime < 10*time.Second {
		_, _ = fmt.Fprintln(os.Stderr, "auth0-sim: --token-lifetime must be at least 10s")
		os.Exit(2)
	}

	opts := demo.TenantOptions{Addr: *addr, TokenLifetime: *lifetime, RateLimitPerSecond: *rateLimit}
	if *logRequests {
		opts.Logf = func(format string, args ...any) {
			_, _ = fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
		}
	}
	t, err := demo.StartTenant(opts)
	if err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "auth0-sim: %v\n", err)
		os.Exit(1)
	}
	defer t.Close()
	files, err := t.WriteFiles(*outDir)
	if err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "auth0-sim: writing %s: %v\n", *outDir, err)
		t.Close()
		os.Exit(1)
	}

	fmt.Printf("Simulated Auth0 tenant listening on %s\n", t.Sim.URL())
	fmt.Printf("  domain:            %s\n", t.Sim.Domain())
	fmt.Printf("  audience:          %s\n", t.Sim.Audience())
	fmt.Printf("  CA certificate:    %s\n", files.CA)
	fmt.Printf("  credentials:       %s (and %s); M2M client_id %s\n", files.Env, files.JSON, t.ClientID)
	fmt.Printf("  IdP access tokens: live %s; refresh tokens are offline (no expiry)\n", *lifetime)
	users := make([]string, 0, len(demo.Users()))
	for _, u := range demo.Users() {
		users = append(users, fmt.Sprintf("%s (%s)", u.ID, strings.Join(u.Connections, ", ")))
	}
	fmt.Printf("  users:             %s\n", strings.Join(users, "\n                     "))
	fmt.Println("  connections (strategy oauth2; options.tokenURL is the IdP token endpoint):")
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, p := range t.IdPs() {
		_, _ = fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\n", p.Connection, p.ConnectionID, p.Kind, p.TokenURL)
	}
	_ = tw.Flush()
	fmt.Println("Ctrl-C stops it.")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	<-ctx.Done()
	fmt.Println("auth0-sim: stopping")
}
