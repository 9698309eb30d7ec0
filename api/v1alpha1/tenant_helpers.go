package v1alpha1

// TenantSpec returns the tenant's connection settings; shared by both tenant kinds.
func (t *Auth0Tenant) TenantSpec() *Auth0TenantSpec { return &t.Spec }

// TenantStatus returns the tenant's status.
func (t *Auth0Tenant) TenantStatus() *Auth0TenantStatus { return &t.Status }

// TenantSpec returns the tenant's connection settings; shared by both tenant kinds.
func (t *ClusterAuth0Tenant) TenantSpec() *Auth0TenantSpec { return &t.Spec.Auth0TenantSpec }

// TenantStatus returns the tenant's status.
func (t *ClusterAuth0Tenant) TenantStatus() *Auth0TenantStatus { return &t.Status }
