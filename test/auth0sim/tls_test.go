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
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func TestURLAndDomain(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	host, port, err := net.SplitHostPort(s.Domain())
	if err != nil {
		t.Fatalf("Domain %q: %v", s.Domain(), err)
	}
	if host != "127.0.0.1" || port == "0" || port == "" {
		t.Errorf("Domain = %q, want 127.0.0.1:<port>", s.Domain())
	}
	if s.URL() != "https://"+s.Domain() {
		t.Errorf("URL = %q, want https://%s", s.URL(), s.Domain())
	}
	if want := "https://" + s.Domain() + "/api/v2/"; s.Audience() != want {
		t.Errorf("Audience = %q, want %q", s.Audience(), want)
	}
	if want := s.URL() + "/idp/google/token"; s.TokenURL("google") != want {
		t.Errorf("TokenURL = %q, want %q", s.TokenURL("google"), want)
	}
}

func TestTLSVerification(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})

	t.Run("trusted CA", func(t *testing.T) {
		c := clientFor(t, s)
		for _, base := range []string{s.URL(), strings.Replace(s.URL(), "127.0.0.1", "localhost", 1)} {
			req := newRequest(t, http.MethodGet, base+"/nothing-here", nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("GET %s with CAPEM: %v", base, err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("status = %d, want 404", resp.StatusCode)
			}
			leaf := resp.TLS.PeerCertificates[0]
			if !slices.Contains(leaf.DNSNames, "localhost") {
				t.Errorf("DNS SANs = %v, want localhost", leaf.DNSNames)
			}
			var ips []string
			for _, ip := range leaf.IPAddresses {
				ips = append(ips, ip.String())
			}
			for _, want := range []string{"127.0.0.1", "::1"} {
				if !slices.Contains(ips, want) {
					t.Errorf("IP SANs = %v, missing %s", ips, want)
				}
			}
		}
	})

	t.Run("client without the CA", func(t *testing.T) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
		resp, err := c.Get(s.URL() + "/oauth/token")
		if err == nil {
			_ = resp.Body.Close()
			t.Fatal("request succeeded without trusting the CA")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("error = %v, want x509.UnknownAuthorityError", err)
		}
	})

	t.Run("CA PEM is an ECDSA CA", func(t *testing.T) {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(s.CAPEM()) {
			t.Fatal("CAPEM does not parse")
		}
		conn, err := tls.Dial("tcp", s.Domain(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatalf("tls.Dial: %v", err)
		}
		defer func() { _ = conn.Close() }()
		chain := conn.ConnectionState().VerifiedChains[0]
		ca := chain[len(chain)-1]
		if !ca.IsCA || ca.PublicKeyAlgorithm != x509.ECDSA {
			t.Errorf("root IsCA=%v alg=%v, want ECDSA CA", ca.IsCA, ca.PublicKeyAlgorithm)
		}
	})

	t.Run("separate servers have separate CAs", func(t *testing.T) {
		other, _ := newSim(t, auth0sim.Options{})
		c := clientFor(t, other)
		resp, err := c.Get(s.URL() + "/")
		if err == nil {
			_ = resp.Body.Close()
			t.Fatal("a client trusting another server's CA was accepted")
		}
	})
}

func TestConvenienceClient(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := s.Client()
	defer c.CloseIdleConnections()
	r := get(t, c, s.URL()+"/api/v2/users/x", "")
	if r.status != http.StatusUnauthorized {
		t.Errorf("status = %d, want 401", r.status)
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	if s, err := auth0sim.New(auth0sim.Options{RateLimitPerSecond: -1}); err == nil {
		s.Close()
		t.Error("negative rate limit accepted")
	}
	if s, err := auth0sim.New(auth0sim.Options{Addr: "256.0.0.1:0"}); err == nil {
		s.Close()
		t.Error("invalid address accepted")
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	s, err := auth0sim.New(auth0sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
	c := clientFor(t, s)
	c.Timeout = 2 * time.Second
	if resp, err := c.Get(s.URL() + "/"); err == nil {
		_ = resp.Body.Close()
		t.Error("server still answers after Close")
	}
}
