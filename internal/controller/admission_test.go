package controller

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/idptoken/idptoken-operator/test/testenv"
)

// readObjects decodes every document of a YAML file.
func readObjects(path string) []*unstructured.Unstructured {
	GinkgoHelper()
	raw, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var out []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out
		} else {
			Expect(err).NotTo(HaveOccurred(), path)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

func nestedString(u *unstructured.Unstructured, fields ...string) string {
	GinkgoHelper()
	v, found, err := unstructured.NestedString(u.Object, fields...)
	Expect(err).NotTo(HaveOccurred())
	Expect(found).To(BeTrue(), strings.Join(fields, "."))
	return v
}

func nestedInt(u *unstructured.Unstructured, fields ...string) int64 {
	GinkgoHelper()
	v, found, err := unstructured.NestedInt64(u.Object, fields...)
	Expect(err).NotTo(HaveOccurred())
	Expect(found).To(BeTrue(), strings.Join(fields, "."))
	return v
}

// validBinding is a minimal valid IdPTokenBinding as YAML; cases below break one rule each.
const validBinding = `
apiVersion: auth.idptoken.dev/v1alpha1
kind: IdPTokenBinding
metadata: {name: b}
spec:
  tenantRef: {name: prod}
  user: {id: "google-oauth2|1"}
  secret: {name: b-token}
`

const validTenant = `
apiVersion: auth.idptoken.dev/v1alpha1
kind: Auth0Tenant
metadata: {name: t}
spec:
  domain: example.us.auth0.com
  credentialsSecretRef: {name: m2m}
`

const validClusterTenant = `
apiVersion: auth.idptoken.dev/v1alpha1
kind: ClusterAuth0Tenant
metadata: {name: ct}
spec:
  domain: example.us.auth0.com
  credentialsSecretRef: {name: m2m}
  conditions:
  - namespaces: [team-a]
    users: ["google-oauth2|*"]
    connections: [google-oauth2]
  - namespaceSelector: {matchLabels: {idptoken.dev/tenant: prod}}
  - namespaceRegexes: ["team-.*"]
`

// mutate parses base, applies edits (dotted path → value; nil deletes) and returns the object.
func mutate(base string, edits map[string]any) *unstructured.Unstructured {
	GinkgoHelper()
	u := &unstructured.Unstructured{}
	Expect(yaml.Unmarshal([]byte(base), &u.Object)).To(Succeed())
	for path, v := range edits {
		fields := strings.Split(path, ".")
		if v == nil {
			unstructured.RemoveNestedField(u.Object, fields...)
			continue
		}
		Expect(unstructured.SetNestedField(u.Object, v, fields...)).To(Succeed())
	}
	return u
}

var _ = Describe("Admission", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	create := func(u *unstructured.Unstructured) error {
		u.SetNamespace(ns)
		return k8s.Create(suiteCtx, u, client.DryRunAll)
	}

	It("accepts every sample in config/samples", func() {
		files, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "samples", "*.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).NotTo(BeEmpty())
		n := 0
		for _, f := range files {
			if filepath.Base(f) == "kustomization.yaml" {
				continue
			}
			for _, u := range readObjects(f) {
				u.SetNamespace(ns)
				Expect(k8s.Create(suiteCtx, u)).To(Succeed(), "%s: %s/%s", filepath.Base(f), u.GetKind(), u.GetName())
				n++
			}
		}
		Expect(n).To(BeNumerically(">=", 5))
	})

	It("defaults what the design says", func() {
		u := mutate(validBinding, nil)
		Expect(create(u)).To(Succeed())
		Expect(nestedString(u, "spec", "tenantRef", "kind")).To(Equal("Auth0Tenant"))
		Expect(nestedString(u, "spec", "secret", "type")).To(Equal("Opaque"))
		Expect(nestedString(u, "spec", "deletionPolicy")).To(Equal("Delete"))
		Expect(nestedString(u, "spec", "refresh", "fallbackInterval")).To(Equal("1h"))
		t := mutate(validTenant, nil)
		Expect(create(t)).To(Succeed())
		Expect(nestedInt(t, "spec", "rateLimit", "requestsPerSecond")).To(BeEquivalentTo(2))
		Expect(nestedInt(t, "spec", "rateLimit", "burst")).To(BeEquivalentTo(2))
		Expect(nestedString(t, "spec", "credentialsSecretRef", "clientIDKey")).To(Equal("client_id"))
	})

	DescribeTable("rejects an invalid IdPTokenBinding with an actionable message",
		func(edits map[string]any, message string) {
			err := create(mutate(validBinding, edits))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("neither user nor connection", map[string]any{"spec.user": nil},
			"exactly one of spec.user or spec.connection must be set"),
		Entry("both user and connection", map[string]any{"spec.connection": map[string]any{"id": "con_1"}},
			"exactly one of spec.user or spec.connection must be set"),
		Entry("secret name not a DNS subdomain", map[string]any{"spec.secret.name": "Bad_Name"},
			"spec.secret.name must be a DNS subdomain"),
		Entry("secret name with a trailing dash", map[string]any{"spec.secret.name": "token-"},
			"spec.secret.name must be a DNS subdomain"),
		Entry("a kubernetes.io Secret type", map[string]any{"spec.secret.type": "kubernetes.io/tls"},
			"spec.secret.type must be Opaque or a custom type"),
		Entry("a NUL in the user id", map[string]any{"spec.user.id": "google-oauth2|1\x00tokenvault"},
			"must not contain control characters"),
		Entry("a control character in the connection", map[string]any{"spec.user.connection": "google\noauth2"},
			"must not contain control characters"),
		Entry("a control character in the enterprise connection", map[string]any{"spec.user": nil, "spec.connection": map[string]any{"id": "con_\u0085x"}},
			"must not contain control characters"),
		Entry("a legacy refresh-state Secret's name", map[string]any{"spec.secret.name": "b.idptoken-state"},
			"spec.secret.name must not start with idptoken-state- nor end in .idptoken-state"),
		Entry("an identity refresh-state Secret's name", map[string]any{"spec.secret.name": "idptoken-state-0123456789abcdef"},
			"spec.secret.name must not start with idptoken-state- nor end in .idptoken-state"),
		Entry("a name too long for a label value", map[string]any{"metadata.name": strings.Repeat("b", 64)},
			"metadata.name of an IdPTokenBinding must be at most 63 characters"),
		Entry("tokenURL without the client to send there", map[string]any{"spec.refresh.tokenURL": "https://idp.example.com/token"},
			"spec.refresh.tokenURL requires spec.refresh.clientCredentialsSecretRef"),
		Entry("an invalid label key", map[string]any{"spec.secret.labels": map[string]any{"bad key!": "x"}},
			"spec.secret.labels keys must be valid label keys"),
		Entry("a label value too long", map[string]any{"spec.secret.labels": map[string]any{"team": strings.Repeat("x", 64)}},
			"spec.secret.labels.team: Too long: may not be more than 63 bytes"),
		Entry("an invalid label value", map[string]any{"spec.secret.labels": map[string]any{"team": "-bad value-"}},
			"spec.secret.labels values must be valid label values"),
		Entry("the operator's own label", map[string]any{"spec.secret.labels": map[string]any{"auth.idptoken.dev/binding": "other"}},
			"spec.secret.labels must not set app.kubernetes.io/managed-by or auth.idptoken.dev/ keys"),
		Entry("the managed-by label", map[string]any{"spec.secret.labels": map[string]any{"app.kubernetes.io/managed-by": "me"}},
			"spec.secret.labels must not set app.kubernetes.io/managed-by or auth.idptoken.dev/ keys"),
		Entry("an invalid annotation key", map[string]any{"spec.secret.annotations": map[string]any{"a/b/c": "x"}},
			"spec.secret.annotations keys must be valid annotation keys"),
		Entry("the operator's own annotation", map[string]any{"spec.secret.annotations": map[string]any{"auth.idptoken.dev/expires-at": "never"}},
			"spec.secret.annotations must not set auth.idptoken.dev/ keys"),
		Entry("TokenVault without a connection", map[string]any{"spec.user.source": "TokenVault"},
			"spec.user.connection is required with spec.user.source TokenVault"),
		Entry("an unknown token source", map[string]any{"spec.user.source": "Cache"},
			"spec.user.source: Unsupported value"),
		Entry("tokenURL over plain http", map[string]any{"spec.refresh.tokenURL": "http://idp.example.com/token"},
			"spec.refresh.tokenURL must be an https:// URL"),
		Entry("tokenURL not a URL", map[string]any{"spec.refresh.tokenURL": "idp.example.com/token"},
			"spec.refresh.tokenURL must be an https:// URL"),
		Entry("zero renewBefore", map[string]any{"spec.refresh.renewBefore": "0s"},
			"spec.refresh.renewBefore must be a duration of at least 10s"),
		Entry("renewBefore under 10s", map[string]any{"spec.refresh.renewBefore": "9s"},
			"spec.refresh.renewBefore must be a duration of at least 10s"),
		Entry("negative renewBefore", map[string]any{"spec.refresh.renewBefore": "-5m"},
			"spec.refresh.renewBefore must be a duration of at least 10s"),
		Entry("renewBefore not a duration", map[string]any{"spec.refresh.renewBefore": "ten minutes"},
			"spec.refresh.renewBefore must be a duration of at least 10s"),
		Entry("zero fallbackInterval", map[string]any{"spec.refresh.fallbackInterval": "0m"},
			"spec.refresh.fallbackInterval must be a duration of at least 1m"),
		Entry("a nanosecond fallbackInterval, a hot loop against Auth0", map[string]any{"spec.refresh.fallbackInterval": "1ns"},
			"spec.refresh.fallbackInterval must be a duration of at least 1m"),
		Entry("fallbackInterval under a minute", map[string]any{"spec.refresh.fallbackInterval": "59s"},
			"spec.refresh.fallbackInterval must be a duration of at least 1m"),
		Entry("missing tenantRef.name", map[string]any{"spec.tenantRef.name": nil},
			"spec.tenantRef.name: Required value"),
		Entry("unknown tenant kind", map[string]any{"spec.tenantRef.kind": "Tenant"},
			"spec.tenantRef.kind: Unsupported value"),
		Entry("unknown deletion policy", map[string]any{"spec.deletionPolicy": "Orphan"},
			"spec.deletionPolicy: Unsupported value"),
	)

	DescribeTable("rejects an invalid Auth0Tenant with an actionable message",
		func(edits map[string]any, message string) {
			err := create(mutate(validTenant, edits))
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("domain with a scheme", map[string]any{"spec.domain": "https://example.us.auth0.com"},
			"spec.domain must be a host or host:port"),
		Entry("domain with a path", map[string]any{"spec.domain": "example.us.auth0.com/api"},
			"spec.domain must be a host or host:port"),
		Entry("domain with an empty port", map[string]any{"spec.domain": "example.us.auth0.com:"},
			"spec.domain must be a host or host:port"),
		Entry("requestsPerSecond 0", map[string]any{"spec.rateLimit": map[string]any{"requestsPerSecond": int64(0)}},
			"rateLimit.requestsPerSecond must be at least 1"),
		Entry("burst 0", map[string]any{"spec.rateLimit": map[string]any{"burst": int64(0)}},
			"rateLimit.burst must be at least 1"),
		Entry("an unknown refreshOverride", map[string]any{"spec.refreshOverride": "Sometimes"},
			"spec.refreshOverride: Unsupported value"),
		Entry("audience over http", map[string]any{"spec.audience": "http://example.us.auth0.com/api/v2/"},
			"spec.audience must be an https:// URL"),
		Entry("no credentials secret name", map[string]any{"spec.credentialsSecretRef.name": nil},
			"spec.credentialsSecretRef.name: Required value"),
	)

	It("accepts a domain with a port, as the local simulator uses, and an https or empty audience", func() {
		Expect(create(mutate(validTenant, map[string]any{"spec.domain": "127.0.0.1:8443"}))).To(Succeed())
		Expect(create(mutate(validTenant, map[string]any{"metadata.name": "t2", "spec.audience": "https://example.us.auth0.com/api/v2/"}))).To(Succeed())
		Expect(create(mutate(validTenant, map[string]any{"metadata.name": "t3", "spec.audience": ""}))).To(Succeed())
		Expect(create(mutate(validBinding, map[string]any{"spec.refresh.tokenURL": "https://idp.example.com/token", "spec.refresh.renewBefore": "1h30m",
			"spec.refresh.clientCredentialsSecretRef": map[string]any{"name": "idp-client"}}))).To(Succeed())
		Expect(create(mutate(validBinding, map[string]any{"metadata.name": "b2", "spec.secret.type": "example.com/token"}))).To(Succeed())
		Expect(create(mutate(validBinding, map[string]any{"metadata.name": strings.Repeat("b", 63), "spec.refresh.renewBefore": "10s", "spec.refresh.fallbackInterval": "1m",
			"spec.secret.labels": map[string]any{"example.com/team": "payments"}, "spec.secret.annotations": map[string]any{"example.com/owner": "Payments team <pay@example.com>"}}))).To(Succeed())
		Expect(create(mutate(validBinding, map[string]any{"metadata.name": "b4", "spec.user": map[string]any{"id": "u", "connection": "google-oauth2", "source": "TokenVault"}}))).To(Succeed())
		t := mutate(validTenant, map[string]any{"metadata.name": "t4"})
		Expect(create(t)).To(Succeed())
		Expect(nestedString(t, "spec", "refreshOverride")).To(Equal("Denied"))
	})

	DescribeTable("rejects an invalid ClusterAuth0Tenant with an actionable message",
		func(edits map[string]any, message string) {
			u := mutate(validClusterTenant, edits)
			err := k8s.Create(suiteCtx, u, client.DryRunAll)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("a condition with no namespace part", map[string]any{"spec.conditions": []any{map[string]any{"users": []any{"*"}}}},
			"a condition must name namespaces, a namespaceSelector or namespaceRegexes"),
		Entry("domain with a scheme", map[string]any{"spec.domain": "https://example.us.auth0.com"},
			"spec.domain must be a host or host:port"),
	)

	It("accepts a ClusterAuth0Tenant and defaults it like an Auth0Tenant", func() {
		u := mutate(validClusterTenant, nil)
		Expect(k8s.Create(suiteCtx, u, client.DryRunAll)).To(Succeed())
		Expect(nestedString(u, "spec", "refreshOverride")).To(Equal("Denied"))
		Expect(nestedInt(u, "spec", "rateLimit", "requestsPerSecond")).To(BeEquivalentTo(2))
	})
})

var _ = Describe("Admission of templates and rollout restart targets", func() {
	var ns string
	BeforeEach(func() { ns = newNamespace() })

	create := func(edits map[string]any) (*unstructured.Unstructured, error) {
		u := mutate(validBinding, edits)
		u.SetNamespace(ns)
		return u, k8s.Create(suiteCtx, u, client.DryRunAll)
	}
	bearer := map[string]any{"authorization": "Bearer {{ .AccessToken }}"}
	apiTarget := map[string]any{"kind": "Deployment", "name": "api"}

	DescribeTable("rejects with an actionable message",
		func(edits map[string]any, message string) {
			_, err := create(edits)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry(".RefreshToken without includeRefreshToken",
			map[string]any{"spec.secret.template": map[string]any{"data": map[string]any{"rt": "{{ .RefreshToken }}"}}},
			"spec.secret.template may use .RefreshToken only with spec.secret.includeRefreshToken: true"),
		Entry("a data key that is no Secret key", map[string]any{"spec.secret.template": map[string]any{"data": map[string]any{"bad/key": "x"}}},
			"spec.secret.template.data keys must be valid Secret keys"),
		Entry("no data keys", map[string]any{"spec.secret.template": map[string]any{"data": map[string]any{}}},
			"spec.secret.template.data: Invalid value"),
		Entry("a data value over 8192 characters", map[string]any{"spec.secret.template": map[string]any{"data": map[string]any{"big": strings.Repeat("x", 8193)}}},
			"Too long: may not be more than 8192"),
		Entry("template type kubernetes.io/tls", map[string]any{"spec.secret.template": map[string]any{"type": "kubernetes.io/tls", "data": bearer}},
			"spec.secret.template.type may be Opaque, a custom type, kubernetes.io/dockerconfigjson"),
		Entry("a bootstrap token type", map[string]any{"spec.secret.template": map[string]any{"type": "bootstrap.kubernetes.io/token", "data": bearer}},
			"spec.secret.template.type must not be a bootstrap token type"),
		Entry("an unknown merge policy", map[string]any{"spec.secret.template": map[string]any{"mergePolicy": "Union", "data": bearer}},
			"spec.secret.template.mergePolicy: Unsupported value"),
		Entry("a restart target with a name and a selector", map[string]any{"spec.rolloutRestartTargets": []any{
			map[string]any{"kind": "Deployment", "name": "api", "selector": map[string]any{"matchLabels": map[string]any{"app": "api"}}}}},
			"a rollout restart target names exactly one of name or selector"),
		Entry("a restart target with neither", map[string]any{"spec.rolloutRestartTargets": []any{map[string]any{"kind": "Deployment"}}},
			"a rollout restart target names exactly one of name or selector"),
		Entry("a restart target of an unknown kind", map[string]any{"spec.rolloutRestartTargets": []any{map[string]any{"kind": "Job", "name": "api"}}},
			"spec.rolloutRestartTargets[0].kind: Unsupported value"),
		Entry("rolloutRestartMinInterval 30s", map[string]any{"spec.rolloutRestartTargets": []any{apiTarget}, "spec.rolloutRestartMinInterval": "30s"},
			"spec.rolloutRestartMinInterval must be a duration of at least 1m"),
		Entry("rolloutRestartMinInterval not a duration", map[string]any{"spec.rolloutRestartMinInterval": "hourly"},
			"spec.rolloutRestartMinInterval must be a duration of at least 1m"),
	)

	It("accepts .RefreshToken with includeRefreshToken, the allowed Secret types, restart targets and a 1m interval", func() {
		_, err := create(map[string]any{"spec.secret.includeRefreshToken": true,
			"spec.secret.template": map[string]any{"data": map[string]any{"rt": "{{ .RefreshToken }}"}}})
		Expect(err).NotTo(HaveOccurred())
		for i, typ := range []string{"kubernetes.io/dockerconfigjson", "kubernetes.io/dockercfg", "kubernetes.io/basic-auth", "example.com/token", "Opaque"} {
			_, err := create(map[string]any{"metadata.name": fmt.Sprintf("typed-%d", i),
				"spec.secret.template": map[string]any{"type": typ, "data": map[string]any{".dockerconfigjson": "{}"}}})
			Expect(err).NotTo(HaveOccurred(), typ)
		}
		u, err := create(map[string]any{"metadata.name": "restarts", "spec.rolloutRestartMinInterval": "1m", "spec.rolloutRestartTargets": []any{apiTarget,
			map[string]any{"kind": "StatefulSet", "selector": map[string]any{"matchLabels": map[string]any{"uses-token": "x"}}}}})
		Expect(err).NotTo(HaveOccurred())
		Expect(nestedString(u, "spec", "rolloutRestartMinInterval")).To(Equal("1m"))
	})

	It("defaults mergePolicy to Replace and rolloutRestartMinInterval to 10m", func() {
		u, err := create(map[string]any{"spec.secret.template": map[string]any{"data": bearer}, "spec.rolloutRestartTargets": []any{apiTarget}})
		Expect(err).NotTo(HaveOccurred())
		Expect(nestedString(u, "spec", "secret", "template", "mergePolicy")).To(Equal("Replace"))
		Expect(nestedString(u, "spec", "rolloutRestartMinInterval")).To(Equal("10m"))
	})
})
