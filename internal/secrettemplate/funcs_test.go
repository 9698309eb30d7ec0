package secrettemplate

import (
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"
)

// funcCases cover every function, with its errors. wantErr is a part of the error.
var funcCases = []struct {
	name, src, want, wantErr string
	in                       func(*Input)
}{
	{name: "b64enc", src: `{{ b64enc "user:pass" }}`, want: "dXNlcjpwYXNz"},
	{name: "b64enc then b64dec", src: `{{ .AccessToken | b64enc | b64dec }}`, want: "ya29.S3KR1T-access-xyzzy"},
	{name: "b64enc of a time", src: `{{ b64enc .ExpiresAt }}`, wantErr: `at 1:11: wrong type for value; expected string; got time.Time`},
	{name: "b64enc of the data", src: `{{ b64enc . }}`, wantErr: `at 1:11: wrong type for value; expected string; got the template data (.)`},
	{name: "b64enc with two arguments", src: `{{ b64enc .Scope .AccessToken }}`, wantErr: "wrong number of args for b64enc: want 1 got 2"},
	{name: "b64dec", src: `{{ b64dec "aGVsbG8=" }}`, want: "hello"},
	{name: "b64dec of invalid base64", src: `{{ b64dec .AccessToken }}`, wantErr: `key "k" at 1:4: b64dec: the argument is not valid standard base64`},
	{name: "b64dec of unpadded base64", src: `{{ b64dec "aGVsbG8" }}`, wantErr: "not valid standard base64"},
	{name: "b64dec of a secret fragment", src: `{{ b64dec (slice .AccessToken 5 11) }}`, wantErr: "b64dec: the argument is not valid"},
	{name: "toJson of a string", src: `{{ toJson "a\"<b>&\n" }}`, want: `"a\"<b>&\n"`},
	{name: "toJson of a time, in UTC", src: `{{ toJson .ExpiresAt }}`, want: `"2030-01-02T02:04:05Z"`},
	{name: "toJson of an unknown expiry", src: `{{ toJson .ExpiresAt }}`, want: `""`, in: func(in *Input) { in.ExpiresAt = time.Time{} }},
	{name: "toJson of a number", src: `{{ toJson 42 }}`, want: `42`},
	{name: "toJson of nil", src: `{{ toJson nil }}`, want: `null`},
	{name: "toJson of the data is redacted", src: `{{ toJson . }}`, want: `{"AccessToken":"<redacted>","TokenType":"Bearer","Scope":"repo read:org","AccessTokenSecret":"<redacted>","Provider":"github","Connection":"github-main","RefreshToken":"","ExpiresAt":"2030-01-02T02:04:05Z"}`},
	{name: "quote", src: `{{ quote "a\"b\n" }}`, want: `"a\"b\n"`},
	{name: "quote of a time", src: `{{ quote .ExpiresAt }}`, wantErr: "expected string; got time.Time"},
	{name: "upper", src: `{{ upper .TokenType }}`, want: "BEARER"},
	{name: "lower", src: `{{ .TokenType | lower }}`, want: "bearer"},
	{name: "trim", src: `{{ trim "  x y \n" }}`, want: "x y"},
	{name: "default keeps a value", src: `{{ .TokenType | default "bearer" }}`, want: "Bearer"},
	{name: "default for an empty string", src: `{{ .TokenType | default "bearer" }}`, want: "bearer", in: func(in *Input) { in.TokenType = "" }},
	{name: "default for zero", src: `{{ default 7 0 }}`, want: "7"},
	{name: "default for false", src: `{{ default "no" false }}`, want: "no"},
	{name: "default for nil", src: `{{ default "none" nil }}`, want: "none"},
	{name: "default for the zero time", src: `{{ .ExpiresAt | default "unknown" }}`, want: "unknown", in: func(in *Input) { in.ExpiresAt = time.Time{} }},
	{name: "default of an unknown expiry", src: `{{ rfc3339 .ExpiresAt | default "unknown" }}`, want: "unknown", in: func(in *Input) { in.ExpiresAt = time.Time{} }},
	{name: "default without arguments", src: `{{ default }}`, wantErr: "wrong number of args for default: want at least 1 got 0"},
	{name: "rfc3339, in UTC", src: `{{ rfc3339 .ExpiresAt }}`, want: "2030-01-02T02:04:05Z"},
	{name: "rfc3339 of an unknown expiry", src: `{{ rfc3339 .ExpiresAt }}`, want: "", in: func(in *Input) { in.ExpiresAt = time.Time{} }},
	{name: "rfc3339 of a string", src: `{{ rfc3339 .AccessToken }}`, wantErr: "expected time.Time; got string"},
	{name: "unixEpoch", src: `{{ unixEpoch .ExpiresAt }}`, want: strconv.FormatInt(expiry.Unix(), 10)},
	{name: "unixEpoch of an unknown expiry", src: `{{ unixEpoch .ExpiresAt }}`, want: "", in: func(in *Input) { in.ExpiresAt = time.Time{} }},
	{name: "printf", src: `{{ printf "%s:%d" .Provider 3 }}`, want: "github:3"},
	{name: "printf width over 1024", src: `{{ printf "%2000d" 1 }}`, wantErr: "printf: a width or precision is over 1024"},
	{name: "printf precision over 1024", src: `{{ printf "%.99999999f" 1.5 }}`, wantErr: "printf: a width or precision is over 1024"},
	{name: "printf * width", src: `{{ printf "%*d" 999999999 1 }}`, wantErr: "printf: * widths are not available"},
	{name: "printf argument index", src: `{{ printf "%[1]s%[1]s" .AccessToken }}`, wantErr: "printf: argument indexes are not available"},
	{name: "print", src: `{{ print .Provider "/" .Connection }}`, want: "github/github-main"},
	{name: "eq and if", src: `{{ if eq .TokenType "Bearer" }}yes{{ else }}no{{ end }}`, want: "yes"},
	{name: "eq of a string and a time", src: `{{ eq .AccessToken .ExpiresAt }}`, wantErr: "eq: the values cannot be compared"},
	{name: "lt of a string and a number", src: `{{ lt .AccessToken 1 }}`, wantErr: "lt: the values cannot be compared"},
	{name: "and, or, not", src: `{{ and .Scope .TokenType }} {{ or .AccessTokenSecret "x" }} {{ not .Scope }}`, want: "Bearer S3KR1T-ats-plugh false"},
	{name: "len", src: `{{ len .AccessToken }}`, want: "24"},
	{name: "len of a time", src: `{{ len .ExpiresAt }}`, wantErr: "len: the value has no length"},
	{name: "index", src: `{{ index .AccessToken 0 }}`, want: "121"},
	{name: "index out of range", src: `{{ index .AccessToken 99 }}`, wantErr: "index: index out of range"},
	{name: "slice", src: `{{ slice .AccessToken 0 4 }}`, want: "ya29"},
	{name: "slice out of range", src: `{{ slice .AccessToken 3 99 }}`, wantErr: "slice: slice bounds out of range"},
	{name: "a field of a string in with", src: `{{ with .TokenType }}{{ .Scope }}{{ end }}`, wantErr: "at 1:25: can't evaluate field Scope in type string"},
	{name: "nil is not a command", src: `{{ nil }}`, wantErr: `key "k" at 1:4: the template cannot be executed for this token`},
	{name: "an empty field", src: `[{{ .Scope }}]`, want: "[]", in: func(in *Input) { in.Scope = "" }},
	{name: "an empty template", src: ``, want: ""},
}

func TestFunctions(t *testing.T) {
	for _, tc := range funcCases {
		t.Run(tc.name, func(t *testing.T) {
			in := fixture()
			if tc.in != nil {
				tc.in(&in)
			}
			got, err := render(t, tc.src, in, false)
			if tc.wantErr != "" || tc.want == "" && err != nil {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Render(%q) = %q, %v; want an error with %q", tc.src, got, err, tc.wantErr)
				}
				assertNoSecret(t, err.Error())
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Render(%q) = %q, %v; want %q", tc.src, got, err, tc.want)
			}
		})
	}
}

// TestCallReachesNothing: call is refused at compile time, and even run past the check it only
// fails: Input has no function-valued field (see TestFieldsAreInputs) for it to call.
func TestCallReachesNothing(t *testing.T) {
	for _, src := range []string{`{{ call .AccessToken }}`, `{{ call .ExpiresAt }}`, `{{ call "x" }}`} {
		if _, err := Compile(spec(map[string]string{"k": src}), true); err == nil || !strings.Contains(err.Error(), `function "call" is not available`) {
			t.Errorf("Compile(%q) = %v, want call refused", src, err)
		}
		tmpl := template.Must(newTemplate("k", src, funcMap(&meter{})))
		var out strings.Builder
		if err := tmpl.Execute(&out, fixture()); err == nil || !strings.Contains(err.Error(), "call: is not available") || out.Len() > 0 {
			t.Errorf("%s run past the check wrote %q, %v; want call refused", src, out.String(), err)
		}
	}
}

func TestCheckFormat(t *testing.T) {
	for format, want := range map[string]int{
		"x-access-token:%s": 0, "%%d": 0, "%5.2f|%-10s": 17, "%1024d": 1024, "%": 0, "%0-+# 3v": 3,
	} {
		if got, err := checkFormat(format); err != nil || got != want {
			t.Errorf("checkFormat(%q) = %d, %v; want %d", format, got, err, want)
		}
	}
	for _, format := range []string{"%1025d", "%.1025f", "%99999999999999999999d", "%*d", "%[2]*d", "%-*d", "%[1]s"} {
		if _, err := checkFormat(format); err == nil {
			t.Errorf("checkFormat(%q) must refuse", format)
		}
	}
}
