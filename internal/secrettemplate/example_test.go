package secrettemplate_test

import (
	"fmt"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/secrettemplate"
)

func Example() {
	c, err := secrettemplate.Compile(&authv1alpha1.SecretTemplate{Data: map[string]authv1alpha1.TemplateText{
		".netrc":            "machine api.github.com login x-access-token password {{ .AccessToken }}",
		"authorization":     `{{ .TokenType | default "Bearer" }} {{ .AccessToken }}`,
		"git-credentials":   "https://x-access-token:{{ .AccessToken }}@github.com",
		".dockerconfigjson": `{"auths":{"ghcr.io":{"auth":"{{ printf "x-access-token:%s" .AccessToken | b64enc }}"}}}`,
		// There is no dict: toJson encodes one value at a time.
		"token.json": `{"access_token":{{ toJson .AccessToken }},"expiry":{{ toJson (rfc3339 .ExpiresAt) }}}`,
		"expires_at": `{{ unixEpoch .ExpiresAt | default "unknown" }}`,
	}}, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, err := c.Render(secrettemplate.Input{AccessToken: "gho_abc", ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, k := range c.Keys() {
		fmt.Printf("%s: %s\n", k, data[k])
	}
	// Output:
	// .dockerconfigjson: {"auths":{"ghcr.io":{"auth":"eC1hY2Nlc3MtdG9rZW46Z2hvX2FiYw=="}}}
	// .netrc: machine api.github.com login x-access-token password gho_abc
	// authorization: Bearer gho_abc
	// expires_at: 1893553445
	// git-credentials: https://x-access-token:gho_abc@github.com
	// token.json: {"access_token":"gho_abc","expiry":"2030-01-02T03:04:05Z"}
}

func ExampleCompile_errors() {
	_, err := secrettemplate.Compile(&authv1alpha1.SecretTemplate{Data: map[string]authv1alpha1.TemplateText{
		"rt":  "{{ .RefreshToken }}",
		"env": `{{ env "HOME" }}`,
		"exp": "{{ .ExpiresAt.Unix }}",
	}}, false)
	fmt.Println(err)
	// Output:
	// key "env" at line 1: function "env" not defined; key "exp" at 1:14: .ExpiresAt.Unix: fields of .ExpiresAt are not available; use the functions (rfc3339, unixEpoch...); key "rt" at 1:4: .RefreshToken needs spec.secret.includeRefreshToken: true
}
