// Package conformance replays real answers of Auth0 and of the IdPs behind it, each kept in
// testdata with where it was found, through the operator's own HTTP clients over HTTPS, and
// checks what DESIGN.md says the operator makes of them. See README.md.
package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// retrievedLayout is the form of provenance.retrieved.
const retrievedLayout = "2006-01-02"

// fixture is one answer, as testdata/<name>.json holds it.
type fixture struct {
	Name       string          `json:"-"`
	Provenance provenance      `json:"provenance"`
	Request    fixtureRequest  `json:"request"`
	Response   fixtureResponse `json:"response"`
}

// provenance says where the answer was found. Source is a URL or owner/repo@commit:path.
type provenance struct {
	Source    string `json:"source"`
	Retrieved string `json:"retrieved"`
	Notes     string `json:"notes"`
	// Also names further sources for parts of the answer the main one does not show.
	Also []struct {
		Source string `json:"source"`
		Part   string `json:"part"`
	} `json:"also"`
}

// fixtureRequest is the request the answer was given to, as far as the source shows it.
type fixtureRequest struct {
	Method string `json:"method"`
	// Path is unescaped; the replay server serves the answer there.
	Path  string            `json:"path"`
	Query map[string]string `json:"query"`
	Form  map[string]string `json:"form"`
}

// fixtureResponse is the answer. Only what the source shows is kept: no status, headers or
// body where it shows none.
type fixtureResponse struct {
	// Status absent: replayed as 400 when the body is a JSON object with an "error" member
	// (RFC 6749 §5.2), else 200.
	Status  *int                   `json:"status"`
	Headers map[string]headerValue `json:"headers"`
	// Body is a JSON answer; BodyText an answer kept byte for byte.
	Body     json.RawMessage `json:"body"`
	BodyText *string         `json:"body_text"`
	// Fragment "identity": Body is one identity of a user; see replay.serveFragment.
	Fragment string `json:"fragment"`
}

// headerValue is a header's values: a JSON string or an array of strings.
type headerValue []string

// UnmarshalJSON implements json.Unmarshaler.
func (h *headerValue) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*h = headerValue{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("a header value is neither a string nor an array of strings")
	}
	*h = many
	return nil
}

// loadFixture reads testdata/<name>.json, refusing unknown fields so that a typo in a fixture
// cannot silently drop part of an answer.
func loadFixture(t testing.TB, name string) *fixture {
	t.Helper()
	f, err := readFixture(name)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readFixture(name string) (*fixture, error) {
	raw, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	f := &fixture{Name: name}
	if err := dec.Decode(f); err != nil {
		return nil, fmt.Errorf("fixture %s: %w", name, err)
	}
	return f, nil
}

// fixtureNames lists testdata/*.json without the extension.
func fixtureNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(paths))
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".json"))
	}
	return names
}

// status is the status the answer is replayed with.
func (f *fixture) status() int {
	if f.Response.Status != nil {
		return *f.Response.Status
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(f.Response.Body, &obj) == nil {
		if _, isError := obj["error"]; isError {
			return 400
		}
	}
	return 200
}

// body is the answer's body as sent: BodyText as it is, Body compacted, else nothing.
func (f *fixture) body() []byte {
	if f.Response.BodyText != nil {
		return []byte(*f.Response.BodyText)
	}
	if len(f.Response.Body) == 0 {
		return nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, f.Response.Body); err != nil {
		panic(fmt.Sprintf("fixture %s: body: %v", f.Name, err))
	}
	return b.Bytes()
}

// field returns a string member of the JSON body, e.g. the access_token a test expects back.
func (f *fixture) field(t testing.TB, name string) string {
	t.Helper()
	var obj map[string]any
	if err := json.Unmarshal(f.Response.Body, &obj); err != nil {
		t.Fatalf("fixture %s: body is not a JSON object: %v", f.Name, err)
	}
	s, ok := obj[name].(string)
	if !ok {
		t.Fatalf("fixture %s: body has no string %q", f.Name, name)
	}
	return s
}

// epochHeader reads an epoch-seconds header of the answer, such as X-RateLimit-Reset.
func (f *fixture) epochHeader(t testing.TB, name string) time.Time {
	t.Helper()
	for k, v := range f.Response.Headers {
		if strings.EqualFold(k, name) && len(v) == 1 {
			var secs int64
			if _, err := fmt.Sscan(v[0], &secs); err == nil {
				return time.Unix(secs, 0)
			}
		}
	}
	t.Fatalf("fixture %s: no epoch header %s", f.Name, name)
	return time.Time{}
}
