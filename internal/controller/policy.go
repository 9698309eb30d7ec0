package controller

import (
	"fmt"
	"path"
	"regexp"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// subject is what a binding asks of a tenant: a user's identity, or an enterprise connection.
type subject struct {
	userID     string // empty for a connection binding
	connection string // spec.user.connection, or spec.connection.id
	// refreshToken: spec.secret.includeRefreshToken, which a condition must allow.
	refreshToken bool
}

func subjectOf(b *authv1alpha1.IdPTokenBinding) subject {
	s := subject{refreshToken: b.Spec.Secret.IncludeRefreshToken}
	if b.Spec.User != nil {
		s.userID, s.connection = b.Spec.User.ID, b.Spec.User.Connection
	} else if b.Spec.Connection != nil {
		s.connection = b.Spec.Connection.ID
	}
	return s
}

func (s subject) String() string {
	if s.userID == "" {
		return fmt.Sprintf("connection %q", s.connection)
	}
	if s.connection == "" {
		return fmt.Sprintf("user %q (primary identity)", s.userID)
	}
	return fmt.Sprintf("user %q through connection %q", s.userID, s.connection)
}

// permitted applies a ClusterAuth0Tenant's conditions: a binding in namespace ns (with those
// labels) may use the tenant for subj when at least one condition matches both. Deny by
// default. The message says what was refused, for the binding's condition; it names ids,
// never tokens.
func permitted(tenant string, conds []authv1alpha1.ClusterTenantCondition, ns string, nsLabels map[string]string, subj subject) (bool, string) {
	if len(conds) == 0 {
		return false, fmt.Sprintf("ClusterAuth0Tenant %s has no conditions, so no namespace may use it; its administrator must add one for namespace %s", tenant, ns)
	}
	nsMatched := false
	var why string
	for i := range conds {
		c := &conds[i]
		ok, err := namespaceMatches(c, ns, nsLabels)
		if err != nil && why == "" {
			why = fmt.Sprintf("condition %d is invalid: %v", i, err)
		}
		if !ok {
			continue
		}
		nsMatched = true
		if ok, reason := subjectMatches(c, subj); ok {
			return true, ""
		} else if why == "" {
			why = reason
		}
	}
	if !nsMatched {
		msg := fmt.Sprintf("ClusterAuth0Tenant %s does not let namespace %s use it: no condition matches the namespace", tenant, ns)
		if why != "" {
			msg += " (" + why + ")"
		}
		return false, msg
	}
	return false, fmt.Sprintf("ClusterAuth0Tenant %s does not let namespace %s bind %s: %s", tenant, ns, subj, why)
}

func namespaceMatches(c *authv1alpha1.ClusterTenantCondition, ns string, nsLabels map[string]string) (bool, error) {
	if slices.Contains(c.Namespaces, ns) {
		return true, nil
	}
	var firstErr error
	if c.NamespaceSelector != nil {
		sel, err := metav1.LabelSelectorAsSelector(c.NamespaceSelector)
		switch {
		case err != nil:
			firstErr = fmt.Errorf("namespaceSelector: %w", err)
		case !sel.Empty() && sel.Matches(labels.Set(nsLabels)):
			return true, nil
		}
	}
	for _, expr := range c.NamespaceRegexes {
		re, err := anchored(expr)
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("namespaceRegexes %q: %w", expr, err)
			}
			continue
		}
		if re.MatchString(ns) {
			return true, nil
		}
	}
	return false, firstErr
}

// anchored compiles a namespaceRegexes entry to match the whole namespace name: "team-a" must
// not let "not-team-a" in.
func anchored(expr string) (*regexp.Regexp, error) {
	if _, err := regexp.Compile(expr); err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + expr + `)$`)
}

func subjectMatches(c *authv1alpha1.ClusterTenantCondition, subj subject) (bool, string) {
	if subj.refreshToken && c.IncludeRefreshToken != authv1alpha1.IncludeRefreshTokenAllowed {
		return false, "spec.secret.includeRefreshToken needs a condition with includeRefreshToken: Allowed (the refresh token of a cluster tenant's identity is shared with other namespaces)"
	}
	if subj.userID == "" {
		// Admin tokens of an enterprise connection: a condition that limits users does not grant them.
		if len(c.Users) > 0 {
			return false, "a condition that lists users grants no enterprise connection's admin tokens"
		}
		if len(c.Connections) > 0 && !slices.Contains(c.Connections, subj.connection) {
			return false, fmt.Sprintf("connection %q is not among the condition's connections", subj.connection)
		}
		return true, ""
	}
	if len(c.Users) > 0 && !slices.ContainsFunc(c.Users, func(glob string) bool {
		ok, err := path.Match(glob, subj.userID)
		return err == nil && ok
	}) {
		return false, fmt.Sprintf("user %q matches none of the condition's users", subj.userID)
	}
	if len(c.Connections) > 0 {
		if subj.connection == "" {
			return false, "the condition limits connections, so spec.user.connection must name one of them"
		}
		if !slices.Contains(c.Connections, subj.connection) {
			return false, fmt.Sprintf("connection %q is not among the condition's connections", subj.connection)
		}
	}
	return true, ""
}
