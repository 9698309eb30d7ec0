package tokenvault_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/idptoken/idptoken-operator/internal/tokenvault"
	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// Exchange a user's vaulted Google token at a simulated tenant.
func Example() {
	sim, err := auth0sim.New(auth0sim.Options{})
	if err != nil {
		panic(err)
	}
	defer sim.Close()
	sim.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "g", ClientSecret: "gs", AccessTokenLifetime: time.Hour})
	sim.AddConnection(auth0sim.ConnectionSpec{Name: "google-oauth2", Strategy: "google-oauth2", IdP: "google", TokenVault: true})
	sim.AddUser("google-oauth2|1", auth0sim.IdentitySpec{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "1", IdP: "google", OfflineAccess: true})

	// The worker's key pair: the public half is registered with Auth0, the
	// private half is the tenant's token-vault credentials Secret.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		panic(err)
	}
	sim.AddTokenVaultClient("worker", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), "")

	c, err := tokenvault.New(tokenvault.Config{
		Domain:     sim.Domain(),
		ClientID:   "worker",
		PrivateKey: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}),
		CABundle:   sim.CAPEM(),
	})
	if err != nil {
		panic(err)
	}
	tok, err := c.Exchange(context.Background(), "google-oauth2|1", "google-oauth2", "idptoken-operator team-a/alice")
	if err != nil {
		panic(err)
	}
	fmt.Println(tok.ExpiresIn, tok.IssuedTokenType)
	// Output: 1h0m0s http://auth0.com/oauth/token-type/token-vault-access-token
}
