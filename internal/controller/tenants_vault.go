package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/idptoken/idptoken-operator/internal/tokenvault"
)

// EnsureVault returns the tenant's Token Vault client for cfg, building a new one only when the
// configuration changed. The tenant's Management API client must exist.
func (t *TenantClients) EnsureVault(key TenantKey, cfg tokenvault.Config) error {
	h := sha256.New()
	_, _ = fmt.Fprintf(h, "%q %q %q %q %q %v %d", cfg.Domain, cfg.ClientID, cfg.PrivateKey, cfg.ClientSecret, cfg.CABundle, cfg.RequestsPerSecond, cfg.Burst)
	fp := hex.EncodeToString(h.Sum(nil))
	c := t.get(key)
	if c == nil {
		return fmt.Errorf("no client for tenant %s", key)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.vault != nil && c.vaultFP == fp {
		return nil
	}
	v, err := tokenvault.New(cfg)
	if err != nil {
		return err
	}
	c.vault, c.vaultFP, c.vaultRefusal = v, fp, ""
	return nil
}

// ForgetVault drops the tenant's Token Vault client.
func (t *TenantClients) ForgetVault(key TenantKey) {
	if c := t.get(key); c != nil {
		c.mu.Lock()
		c.vault, c.vaultFP, c.vaultRefusal = nil, "", ""
		c.mu.Unlock()
	}
}

// Vault returns the tenant's Token Vault client, or nil.
func (t *TenantClients) Vault(key TenantKey) TokenVaultAPI {
	c := t.get(key)
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vault
}

// SetVaultRefusal records (or, with "", clears) why Auth0 refused the tenant's Token Vault client.
func (t *TenantClients) SetVaultRefusal(key TenantKey, why string) {
	if c := t.get(key); c != nil {
		c.mu.Lock()
		c.vaultRefusal = why
		c.mu.Unlock()
	}
}

// VaultRefusal is why Auth0 last refused the tenant's Token Vault client, or "".
func (t *TenantClients) VaultRefusal(key TenantKey) string {
	c := t.get(key)
	if c == nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vaultRefusal
}
