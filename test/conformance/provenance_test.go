package conformance

import (
	"encoding/base64"
	"encoding/json"
	"mime"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// repoSource is owner/repo@<40-hex commit>:path.
var repoSource = regexp.MustCompile(`^[\w.-]+/[\w.-]+@[0-9a-f]{40}:\S+`)

func validSource(s string) bool {
	return strings.HasPrefix(s, "https://") || repoSource.MatchString(s)
}

// TestFixturesHaveProvenance: every fixture names a public source it came from, when it was
// retrieved, notes on what was kept, and a request and answer the replay server can serve.
func TestFixturesHaveProvenance(t *testing.T) {
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			f, err := readFixture(name)
			if err != nil {
				t.Fatal(err)
			}
			p := f.Provenance
			if !validSource(p.Source) {
				t.Errorf("source %q is neither an https URL nor owner/repo@commit:path", p.Source)
			}
			if _, err := time.Parse(retrievedLayout, p.Retrieved); err != nil {
				t.Errorf("retrieved %q is not a date (%s)", p.Retrieved, retrievedLayout)
			}
			if strings.TrimSpace(p.Notes) == "" {
				t.Error("no notes")
			}
			for _, a := range p.Also {
				if !validSource(a.Source) || a.Part == "" {
					t.Errorf("also %+v: needs a valid source and the part it gives", a)
				}
			}
			if f.Request.Method == "" || !strings.HasPrefix(f.Request.Path, "/") {
				t.Errorf("request %+v: needs a method and an absolute path", f.Request)
			}
			if len(f.Response.Body) > 0 && f.Response.BodyText != nil {
				t.Error("both body and body_text")
			}
			checkRedacted(t, f)
		})
	}
}

// tokenFields are the members that hold credentials in the answers kept here.
var tokenFields = []string{"access_token", "refresh_token", "id_token", "access_token_secret", "admin_access_token", "admin_refresh_token"}

// sourcePlaceholders are token values the sources themselves had already replaced.
var sourcePlaceholders = []string{"XXXXXX", "XXXXX", "ACCESS_TOKEN", "REFRESH_TOKEN", "test-access-token"}

// checkRedacted: every token in a fixture is obviously fake (the source's own placeholder, or
// one of ours, marked FAKE or fake), and a fixture where the suite replaced values says so.
func checkRedacted(t *testing.T, f *fixture) {
	t.Helper()
	ours := false
	for _, v := range tokenValues(t, f) {
		switch {
		case slices.Contains(sourcePlaceholders, v):
		case isFake(v):
			ours = true
		default:
			t.Errorf("token value of %d characters is not obviously fake", len(v))
		}
	}
	if ours && !strings.Contains(strings.ToLower(f.Provenance.Notes), "redacted") {
		t.Error("values were replaced but the notes do not say 'redacted'")
	}
}

func isFake(v string) bool {
	if strings.Contains(v, "FAKE") || strings.Contains(v, "deadbeef") {
		return true
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var claims map[string]any
	return err == nil && json.Unmarshal(payload, &claims) == nil && claims["fake"] != nil
}

// tokenValues collects the token members of a fixture's body, at any depth, and of a
// form-encoded body_text and request form.
func tokenValues(t *testing.T, f *fixture) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if s, ok := e.(string); ok && slices.Contains(tokenFields, k) && s != "" {
					out = append(out, s)
				}
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	if len(f.Response.Body) > 0 {
		var v any
		if err := json.Unmarshal(f.Response.Body, &v); err != nil {
			t.Fatalf("body: %v", err)
		}
		walk(v)
	}
	if f.Response.BodyText != nil {
		var v any
		if json.Unmarshal([]byte(*f.Response.BodyText), &v) == nil {
			walk(v)
		} else if form, err := url.ParseQuery(*f.Response.BodyText); err == nil {
			for _, k := range tokenFields {
				if s := form.Get(k); s != "" {
					out = append(out, s)
				}
			}
		}
	}
	for _, k := range tokenFields {
		if s := f.Request.Form[k]; s != "" {
			out = append(out, s)
		}
	}
	return out
}

// TestEveryFixtureIsReplayed: no fixture is left out of the tables, and every table row names
// a fixture that exists.
func TestEveryFixtureIsReplayed(t *testing.T) {
	used := map[string]bool{m2mFixture: true}
	for _, rows := range [][]auth0Row{auth0UserRows, auth0ConnectionRows, auth0TokenRows} {
		for _, r := range rows {
			used[r.fixture] = true
		}
	}
	for _, r := range refreshRows {
		used[r.fixture] = true
	}
	for _, r := range vaultRows {
		used[r.fixture] = true
	}
	for _, n := range discoveryRows {
		used[n] = true
	}
	names := fixtureNames(t)
	for _, n := range names {
		if !used[n] {
			t.Errorf("testdata/%s.json is replayed by no test", n)
		}
	}
	for n := range used {
		if !slices.Contains(names, n) {
			t.Errorf("a row names %s, which is not in testdata", n)
		}
	}
}

// TestFixtureContentTypes: a Content-Type a fixture gives parses, so the replay never sends
// a header the source could not have.
func TestFixtureContentTypes(t *testing.T) {
	for _, name := range fixtureNames(t) {
		f := loadFixture(t, name)
		for k, v := range f.Response.Headers {
			if strings.EqualFold(k, "Content-Type") {
				if _, _, err := mime.ParseMediaType(strings.Join(v, ",")); err != nil {
					t.Errorf("%s: Content-Type %q: %v", name, v, err)
				}
			}
		}
	}
}
