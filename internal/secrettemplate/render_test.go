package secrettemplate

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWorkedExamples are the contract's examples, rendered for a real-looking token.
func TestWorkedExamples(t *testing.T) {
	data := map[string]string{
		".netrc":            "machine api.github.com login x-access-token password {{ .AccessToken }}",
		"authorization":     "Bearer {{ .AccessToken }}",
		"git-credentials":   "https://x-access-token:{{ .AccessToken }}@github.com",
		".dockerconfigjson": `{"auths":{"ghcr.io":{"auth":"{{ printf "x-access-token:%s" .AccessToken | b64enc }}"}}}`,
		"google.json":       `{"access_token":{{ toJson .AccessToken }},"expiry":{{ toJson (rfc3339 .ExpiresAt) }}}`,
		"header":            `{{ .TokenType | default "Bearer" }} {{ .AccessToken }}`,
	}
	c, err := Compile(spec(data), false)
	if err != nil {
		t.Fatal(err)
	}
	in := fixture()
	in.AccessToken, in.TokenType = `gho_16C7e42F292c6912E7710c838347Ae178B4a"\`, ""
	out, err := c.Render(in)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		".netrc":          "machine api.github.com login x-access-token password " + in.AccessToken,
		"authorization":   "Bearer " + in.AccessToken,
		"git-credentials": "https://x-access-token:" + in.AccessToken + "@github.com",
		"header":          "Bearer " + in.AccessToken,
	} {
		if string(out[k]) != want {
			t.Errorf("%s = %q, want %q", k, out[k], want)
		}
	}

	var docker struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	if err := json.Unmarshal(out[".dockerconfigjson"], &docker); err != nil {
		t.Fatalf(".dockerconfigjson is not JSON: %v", err)
	}
	if auth, _ := base64.StdEncoding.DecodeString(docker.Auths["ghcr.io"].Auth); string(auth) != "x-access-token:"+in.AccessToken {
		t.Errorf(".dockerconfigjson auth decodes to %q", auth)
	}

	// toJson escapes the quote and backslash the token holds.
	var google struct {
		AccessToken string    `json:"access_token"`
		Expiry      time.Time `json:"expiry"`
	}
	if err := json.Unmarshal(out["google.json"], &google); err != nil {
		t.Fatalf("google.json is not JSON: %v", err)
	}
	if google.AccessToken != in.AccessToken || !google.Expiry.Equal(expiry) {
		t.Errorf("google.json = %q", out["google.json"])
	}
	if len(out) != len(data) {
		t.Errorf("%d keys rendered, want %d", len(out), len(data))
	}
}

func TestRenderIsAllOrNothing(t *testing.T) {
	c, err := Compile(spec(map[string]string{"a": "{{ .AccessToken }}", "b": "{{ b64dec .AccessToken }}", "c": "x"}), false)
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Render(fixture())
	if out != nil || err == nil || err.Error() != `key "b" at 1:4: b64dec: the argument is not valid standard base64` {
		t.Fatalf("Render = %d keys, %v; want no data and b named", len(out), err)
	}
	in := fixture()
	in.AccessToken = "aGVsbG8="
	if out, err := c.Render(in); err != nil || string(out["b"]) != "hello" || len(out) != 3 {
		t.Fatalf("Render = %q, %v", out, err)
	}
}

// TestRenderErrorsAreDeterministic: every failing key, in sorted order, every time.
func TestRenderErrorsAreDeterministic(t *testing.T) {
	c, err := Compile(spec(map[string]string{"z": "{{ b64dec .AccessToken }}", "m": "ok", "a": "{{ len .ExpiresAt }}", "q": "{{ index .Scope 99 }}"}), false)
	if err != nil {
		t.Fatal(err)
	}
	want := `key "a" at 1:4: len: the value has no length; ` +
		`key "q" at 1:4: index: index out of range, or the value cannot be indexed; ` +
		`key "z" at 1:4: b64dec: the argument is not valid standard base64`
	for range 20 {
		if _, err := c.Render(fixture()); err == nil || err.Error() != want {
			t.Fatalf("Render = %v\nwant %s", err, want)
		}
	}
}

// kib1 is a variable of 1 KiB of spaces, made without a long template.
const kib1 = `{{ $k := printf "%1024s" "" }}`

func TestOutputLimits(t *testing.T) {
	key := func(kib int, extra string) string { return kib1 + strings.Repeat("{{ $k }}", kib) + extra }
	tests := []struct {
		name    string
		data    map[string]string
		wantErr string
	}{
		{"a key of exactly 64 KiB", map[string]string{"k": key(64, "")}, ""},
		{"a key over 64 KiB", map[string]string{"k": key(64, "x")}, `key "k": the value is over 64 KiB`},
		{"a key over 64 KiB in text", map[string]string{"k": kib1 + strings.Repeat("{{ $k }}.", 64)}, `key "k": the value is over 64 KiB`},
		{"keys of 504 KiB in all", keys(8, key(63, "")), ""},
		{"keys over 512 KiB in all", keys(9, key(63, "")), "the rendered data is 580626 bytes, over the limit of 524288 (512 KiB)"},
		{"a value doubled until too large", map[string]string{"k": "{{ $x := .AccessToken }}" + strings.Repeat("{{ $x = print $x $x }}", 30)}, `key "k" at 1:275: print: the result would be over 64 KiB`},
		{"printf of too much", map[string]string{"k": kib1 + `{{ printf "%s%s" ` + strings.Repeat("$k ", 70) + "}}"}, `printf: the result would be over 64 KiB`},
		{"b64enc of too much", map[string]string{"k": kib1 + "{{ $x := print" + strings.Repeat(" $k", 60) + " }}{{ b64enc $x }}"}, `b64enc: the result is over 64 KiB`},
		{"quote of too much", map[string]string{"k": `{{ $n := "\x00\x00\x00\x00\x00\x00\x00\x00" }}` + strings.Repeat("{{ $n = print $n $n }}", 11) + "{{ quote $n }}"}, `quote: the result is over 64 KiB`},
		{"too much work", map[string]string{"k": kib1 + "{{ $x := print" + strings.Repeat(" $k", 60) + " }}" + strings.Repeat("{{ $y := upper $x }}", 40)}, `upper: the templates compute more than 4 MiB of text in all`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compile(spec(tc.data), false)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			out, err := c.Render(fixture())
			if tc.wantErr == "" {
				if err != nil || len(out) != len(tc.data) {
					t.Fatalf("Render = %d keys, %v", len(out), err)
				}
				return
			}
			if out != nil || err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Render = %d keys, %v; want no data and %q", len(out), err, tc.wantErr)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("refusing took %s", d)
			}
		})
	}
}

// keys is n keys k0..k(n-1) with the same template.
func keys(n int, src string) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%d", i)] = src
	}
	return m
}

// TestNoValueInAnyError renders every failing case of this package's tables, and more made to
// provoke a value into an error, and looks for the secrets in the error text.
func TestNoValueInAnyError(t *testing.T) {
	srcs := []string{
		`{{ b64dec .AccessToken }}`, `{{ b64dec .AccessTokenSecret }}`, `{{ b64dec .RefreshToken }}`,
		`{{ b64dec (slice .AccessToken 5 11) }}`, `{{ b64dec (printf "%s!" .AccessTokenSecret) }}`,
		`{{ index .AccessToken 99 }}`, `{{ slice .RefreshToken 2 99 }}`, `{{ eq .AccessToken .ExpiresAt }}`,
		`{{ eq (slice .AccessToken 5 11) 1 }}`, `{{ lt .RefreshToken .ExpiresAt }}`, `{{ len .ExpiresAt }}`,
		`{{ rfc3339 .AccessToken }}`, `{{ unixEpoch (slice .AccessToken 5) }}`, `{{ upper .ExpiresAt }}`,
		`{{ with .AccessToken }}{{ .Scope }}{{ end }}`, `{{ with slice .RefreshToken 4 }}{{ .Provider }}{{ end }}`,
		`{{ printf "%2000s" .AccessToken }}`, `{{ printf "%*s" 5 .AccessToken }}`, `{{ default }}`, `{{ nil }}`,
		`{{ $x := .RefreshToken }}` + strings.Repeat("{{ $x = print $x $x }}", 30),
		kib1 + "{{ .AccessTokenSecret }}" + strings.Repeat("{{ $k }}", 64),
	}
	for _, tc := range funcCases {
		if tc.wantErr != "" {
			srcs = append(srcs, tc.src)
		}
	}
	for _, src := range srcs {
		c, err := Compile(spec(map[string]string{"k": src, "a": "{{ .AccessToken }}"}), true)
		if err != nil {
			t.Fatalf("Compile(%.40q): %v", src, err)
		}
		for _, in := range []Input{fixture(), withSecretsEverywhere()} {
			out, err := c.Render(in)
			if err == nil || out != nil {
				t.Fatalf("Render(%.40q) = %d keys, %v; want an error", src, len(out), err)
			}
			assertNoSecret(t, err.Error())
		}
	}
}

// withSecretsEverywhere puts secret values into the fields that are not secret, too: an error
// may name none of them.
func withSecretsEverywhere() Input {
	in := fixture()
	in.TokenType, in.Scope, in.Provider, in.Connection = in.AccessToken, in.RefreshToken, in.AccessTokenSecret, in.AccessToken
	return in
}

func TestRefreshTokenIsReadOnlyWhenIncluded(t *testing.T) {
	if got, err := render(t, "{{ .RefreshToken }}", fixture(), true); err != nil || got != fixture().RefreshToken {
		t.Fatalf("with includeRefreshToken: %q, %v", got, err)
	}
	// A Template made without the check still cannot read it.
	c := &Template{keys: []string{"k"}, sources: map[string]string{"k": "[{{ .RefreshToken }}]"}}
	if out, err := c.Render(fixture()); err != nil || string(out["k"]) != "[]" {
		t.Fatalf("without includeRefreshToken: %q, %v", out["k"], err)
	}
}

func TestInputIsRedacted(t *testing.T) {
	in := fixture()
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		got := fmt.Sprintf(format, in)
		assertNoSecret(t, got)
		if !strings.Contains(got, "redacted") || !strings.Contains(got, "github-main") {
			t.Errorf("%s renders %q: want the secrets redacted and the rest shown", format, got)
		}
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, string(b))
	got, err := render(t, `{{ . }} {{ print . }} {{ printf "%#v %+v %x" . . . }} {{ toJson . }}`, in, true)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, got)
}

func TestRenderIsSafeForConcurrentUse(t *testing.T) {
	c, err := Compile(spec(map[string]string{"a": `{{ printf "%s" .AccessToken | b64enc }}`, "b": "{{ .Scope }}"}), false)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			in := fixture()
			in.Scope = fmt.Sprint(i)
			for range 50 {
				if out, err := c.Render(in); err != nil || string(out["b"]) != in.Scope {
					t.Errorf("Render = %q, %v", out["b"], err)
					return
				}
			}
		})
	}
	wg.Wait()
}
