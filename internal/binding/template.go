package binding

import (
	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/secrettemplate"
)

// TemplateInput is what a binding's spec.secret.template may read of the token t: the refresh
// token only with spec.secret.includeRefreshToken.
func TemplateInput(b *authv1alpha1.IdPTokenBinding, t *Token) secrettemplate.Input {
	in := secrettemplate.Input{
		AccessToken: t.AccessToken, TokenType: t.TokenType, Scope: t.Scope, AccessTokenSecret: t.AccessTokenSecret,
		Provider: t.Identity.Provider, Connection: t.Identity.Connection, ExpiresAt: t.Expiry.ExpiresAt,
	}
	if b.Spec.Secret.IncludeRefreshToken && !t.RefreshTokenDead {
		in.RefreshToken = t.RefreshToken
	}
	return in
}

// renderTemplate renders the binding's template for t, all keys or none.
func renderTemplate(b *authv1alpha1.IdPTokenBinding, t *Token) (map[string][]byte, error) {
	c, err := secrettemplate.Compile(b.Spec.Secret.Template, b.Spec.Secret.IncludeRefreshToken)
	if err != nil {
		return nil, err
	}
	return c.Render(TemplateInput(b, t))
}

// TemplateRejected: spec.secret.template does not compile, or does not render for the token held;
// nothing is written, and a Secret written before keeps its content. It waits for a change of
// the binding.
func TemplateRejected(b *authv1alpha1.IdPTokenBinding, err error) *Failure {
	return Terminal(authv1alpha1.ReasonInvalidTemplate, 0,
		"spec.secret.template cannot be used, so Secret %s was not written: %s", b.Spec.Secret.Name, err)
}

// checkTemplate is Precheck's part: a template that does not compile is refused before anything
// is requested.
func checkTemplate(b *authv1alpha1.IdPTokenBinding) *Failure {
	if b.Spec.Secret.Template == nil {
		return nil
	}
	if _, err := secrettemplate.Compile(b.Spec.Secret.Template, b.Spec.Secret.IncludeRefreshToken); err != nil {
		return TemplateRejected(b, err)
	}
	return nil
}
