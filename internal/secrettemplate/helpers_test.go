package secrettemplate

import (
	"strings"
	"testing"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// expiry is in CET, so that rfc3339 and toJson are seen converting to UTC.
var expiry = time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))

// secretFragments are pieces of the fixture's secret values: none may appear in an error,
// whole or in part.
var secretFragments = []string{"s3kr1t", "xyzzy", "plugh", "frotz"}

// fixture is an Input with recognisable secret values; the access token is not valid base64.
func fixture() Input {
	return Input{
		AccessToken: "ya29.S3KR1T-access-xyzzy", TokenType: "Bearer", Scope: "repo read:org",
		AccessTokenSecret: "S3KR1T-ats-plugh", Provider: "github", Connection: "github-main",
		RefreshToken: "1//S3KR1T-refresh-frotz", ExpiresAt: expiry,
	}
}

func spec(data map[string]string) *authv1alpha1.SecretTemplate {
	t := &authv1alpha1.SecretTemplate{Data: make(map[string]authv1alpha1.TemplateText, len(data))}
	for k, v := range data {
		t.Data[k] = authv1alpha1.TemplateText(v)
	}
	return t
}

// render compiles src as key "k" and renders it for in.
func render(t *testing.T, src string, in Input, includeRefreshToken bool) (string, error) {
	t.Helper()
	c, err := Compile(spec(map[string]string{"k": src}), includeRefreshToken)
	if err != nil {
		t.Fatalf("Compile(%q): %v", src, err)
	}
	out, err := c.Render(in)
	if (out == nil) == (err == nil) {
		t.Fatalf("Render(%q) = %d keys, %v: want data or an error", src, len(out), err)
	}
	return string(out["k"]), err
}

// assertNoSecret fails when text holds any fragment of the fixture's secret values.
func assertNoSecret(t *testing.T, text string) {
	t.Helper()
	for _, f := range secretFragments {
		if strings.Contains(strings.ToLower(text), f) {
			t.Errorf("%q holds the secret fragment %q", text, f)
		}
	}
}
