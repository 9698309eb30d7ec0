package secrettemplate

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompileRefuses(t *testing.T) {
	tooMany := map[string]string{}
	for i := range maxKeys + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "x"
	}
	tests := []struct {
		name    string
		data    map[string]string
		rt      bool
		wantErr string
	}{
		{"an unknown field", map[string]string{"k": "a {{ .Foo }}"}, false, `key "k" at 1:6: unknown field .Foo; the fields are .AccessToken, .AccessTokenSecret, .Connection, .ExpiresAt, .Provider, .RefreshToken, .Scope, .TokenType`},
		{"an unknown field through $", map[string]string{"k": "{{ $.Foo }}"}, false, `key "k" at 1:5: unknown field .Foo`},
		{"an unknown field in a pipeline", map[string]string{"k": "{{ .AccessToken | .Bar }}"}, false, `at 1:19: unknown field .Bar`},
		{"an unknown field in with", map[string]string{"k": "{{ with .ExpiresAt }}{{ .Unix }}{{ end }}"}, false, `at 1:25: unknown field .Unix`},
		{"a method of the data", map[string]string{"k": "{{ .String }}"}, false, `unknown field .String`},
		{"a field of a field", map[string]string{"k": "{{ .ExpiresAt.Unix }}"}, false, `at 1:14: .ExpiresAt.Unix: fields of .ExpiresAt are not available`},
		{"a field of a variable", map[string]string{"k": "{{ $t := .ExpiresAt }}{{ $t.Unix }}"}, false, `at 1:28: $t.Unix: fields of a variable are not available`},
		{"a field of a value", map[string]string{"k": "{{ (.ExpiresAt).Format `x` }}"}, false, `(.ExpiresAt).Format: fields of a value are not available`},
		{".RefreshToken without includeRefreshToken", map[string]string{"k": "{{ .RefreshToken }}"}, false, `key "k" at 1:4: .RefreshToken needs spec.secret.includeRefreshToken: true`},
		{"$.RefreshToken without includeRefreshToken", map[string]string{"k": "{{ b64enc $.RefreshToken }}"}, false, `at 1:12: .RefreshToken needs`},
		{".RefreshToken in else", map[string]string{"k": "{{ if .Scope }}{{ else }}{{ .RefreshToken }}{{ end }}"}, false, `.RefreshToken needs`},
		{"an unknown function", map[string]string{"k": "{{ sha256 .AccessToken }}"}, false, `key "k" at line 1: function "sha256" not defined`},
		{"an unknown function on line 2", map[string]string{"k": "a\n{{ env `HOME` }}"}, false, `key "k" at line 2: function "env" not defined`},
		{"call", map[string]string{"k": "{{ call .AccessToken }}"}, false, `at 1:4: function "call" is not available`},
		{"html", map[string]string{"k": "{{ html .AccessToken }}"}, false, `function "html" is not available`},
		{"js", map[string]string{"k": "{{ .AccessToken | js }}"}, false, `at 1:19: function "js" is not available`},
		{"urlquery", map[string]string{"k": "{{ urlquery .AccessToken }}"}, false, `function "urlquery" is not available`},
		{"println", map[string]string{"k": "{{ println .AccessToken }}"}, false, `function "println" is not available`},
		{"range", map[string]string{"k": "{{ range 1000000000 }}x{{ end }}"}, false, `at 1:10: range is not available`},
		{"template", map[string]string{"k": `{{ define "a" }}x{{ end }}{{ template "a" }}`}, false, `template and block are not available`},
		{"block", map[string]string{"k": `{{ block "a" . }}x{{ end }}`}, false, `template and block are not available`},
		{"define", map[string]string{"k": `{{ define "a" }}{{ template "a" }}{{ end }}`}, false, `key "k": define and block are not available`},
		{"a parse error", map[string]string{"k": "{{ .AccessToken "}, false, `key "k" at line 1: unclosed action`},
		{"a parse error on line 3", map[string]string{"k": "a\nb\n{{ end }}"}, false, `key "k" at line 3: unexpected {{end}}`},
		{"an invalid key", map[string]string{"a/b": "x"}, false, `key "a/b" is not a valid Secret key`},
		{"the key ..", map[string]string{"..": "x"}, false, `key ".." is not a valid Secret key`},
		{"a template over 8192 characters", map[string]string{"k": strings.Repeat("é", 8193)}, false, `key "k": the template is over 8192 characters`},
		{"no keys", map[string]string{}, false, "the template has no data keys"},
		{"too many keys", tooMany, false, "the template has 33 data keys, over the limit of 32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compile(spec(tc.data), tc.rt)
			if err == nil || c != nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Compile = %v, %v; want an error with %q", c, err, tc.wantErr)
			}
		})
	}
	if _, err := Compile(nil, true); err == nil {
		t.Error("Compile(nil) must fail")
	}
}

func TestCompileAccepts(t *testing.T) {
	for name, src := range map[string]string{
		"every field":                              "{{ .AccessToken }}{{ .ExpiresAt }}{{ .TokenType }}{{ .Scope }}{{ .AccessTokenSecret }}{{ .Provider }}{{ .Connection }}",
		"$ fields, variables, if, with and else":   "{{ $t := .TokenType }}{{ with $.Scope }}{{ . }}{{ else }}{{ $t }}{{ end }}{{ if not .Scope }}x{{ end }}",
		"every function":                           "{{ b64enc `a` | b64dec | toJson | quote | upper | lower | trim | default `x` }}{{ rfc3339 .ExpiresAt }}{{ unixEpoch .ExpiresAt }}",
		"the builtins":                             "{{ and 1 (or 0 1) (not 0) (eq 1 1) (ne 1 2) (lt 1 2) (le 1 1) (gt 2 1) (ge 1 1) (len `a`) (index `a` 0) (slice `ab` 1) (print 1) (printf `%d` 1) }}",
		"comments and trimming":                    "{{- /* a comment */ -}} x",
		"a Secret key with dots, dashes, and case": "x",
	} {
		if _, err := Compile(spec(map[string]string{"Some_key-1.json": src}), false); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Compile(spec(map[string]string{"rt": "{{ .RefreshToken }}"}), true); err != nil {
		t.Errorf(".RefreshToken with includeRefreshToken: %v", err)
	}
}

// TestCompileErrorsAreDeterministic: every failing key is named, in sorted order, every time.
func TestCompileErrorsAreDeterministic(t *testing.T) {
	data := map[string]string{"c": "{{ .C }}", "a": "{{ .A }}", "ok": "x", "b": "{{ .RefreshToken }}", "d": "{{"}
	want := `key "a" at 1:4: unknown field .A; the fields are .AccessToken, .AccessTokenSecret, .Connection, .ExpiresAt, .Provider, .RefreshToken, .Scope, .TokenType; ` +
		`key "b" at 1:4: .RefreshToken needs spec.secret.includeRefreshToken: true; ` +
		`key "c" at 1:4: unknown field .C; the fields are .AccessToken, .AccessTokenSecret, .Connection, .ExpiresAt, .Provider, .RefreshToken, .Scope, .TokenType; ` +
		`key "d" at line 1: unclosed action`
	for range 20 {
		if _, err := Compile(spec(data), false); err == nil || err.Error() != want {
			t.Fatalf("Compile = %v\nwant %s", err, want)
		}
	}
}

func TestKeysAreSorted(t *testing.T) {
	c, err := Compile(spec(map[string]string{"b": "x", "a": "y", ".netrc": "z"}), false)
	if err != nil {
		t.Fatal(err)
	}
	keys := c.Keys()
	if !slices.Equal(keys, []string{".netrc", "a", "b"}) {
		t.Fatalf("Keys() = %v", keys)
	}
	keys[0] = "changed"
	if c.Keys()[0] != ".netrc" {
		t.Error("Keys() must return a copy")
	}
}

// TestFieldsAreInputs: the fields Compile allows are exactly Input's, and none of them holds
// something a template could call or walk into.
func TestFieldsAreInputs(t *testing.T) {
	typ := reflect.TypeFor[Input]()
	var names []string
	for f := range typ.Fields() {
		names = append(names, f.Name)
		if f.Type.Kind() != reflect.String && f.Type != reflect.TypeFor[time.Time]() {
			t.Errorf("field %s is a %s: only strings and the expiry", f.Name, f.Type)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, fields) {
		t.Errorf("Input's fields %v, Compile allows %v", names, fields)
	}
}
