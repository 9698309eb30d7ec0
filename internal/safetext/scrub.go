package safetext

import (
	"cmp"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
	"unicode/utf8"
)

// Redaction is what Scrub and ScrubCode put where they removed a secret or a token-shaped run.
const Redaction = "[redacted]"

// MinTokenRun is the length from which a run of the token alphabet (A–Z a–z 0–9 - _ . of
// base64url and JWTs, + / = of standard base64) counts as token-shaped. Random tokens, secrets
// and JWTs are longer than this; the words and codes of an error description are shorter.
const MinTokenRun = 20

// Scrub makes text a server sent (an OAuth2 error_description, a Management API message) fit
// for an error, and through it for a condition or an Event, which anyone allowed to view the
// object can read. A hostile or buggy server may echo what it received, so Scrub
//
//   - replaces every occurrence of each non-empty secret in secrets with Redaction, also in the
//     forms a server echoes a request in: URL-encoded (form bodies, query strings) and
//     JSON-escaped. Matching ignores ASCII case, because escapes come back with either case of
//     hex digit and header values come back lowercased;
//   - replaces every token-shaped run (MinTokenRun or more characters of the token alphabet)
//     with Redaction, for the tokens the caller does not know, such as one the server minted;
//   - then applies Clip's rules (valid UTF-8, no control characters, trimmed, at most limit
//     runes), without ever cutting through a Redaction.
//
// Callers pass every secret sent or held for the request: a secret shorter than MinTokenRun is
// only removed because it is named. All replacements are found in the same text and overlapping
// or adjacent ones become a single Redaction, so two secrets that overlap in the text are both
// gone whatever their order, and no part of a longer secret is left behind because a shorter
// one matched first.
func Scrub(text string, limit int, secrets ...string) string {
	return scrub(text, limit, secrets, func(string) bool { return true })
}

// ScrubCode is Scrub for an OAuth2 error code or an Auth0 errorCode. It differs in one way: a
// run made only of lowercase ASCII letters and underscores is kept, because that is the shape
// of every such code ("temporarily_unavailable", "incorrect_client_credentials") and conditions
// should still name the code, while a random token of MinTokenRun characters is all lowercase
// letters and underscores with negligible probability. Named secrets are removed as in Scrub.
func ScrubCode(code string, limit int, secrets ...string) string {
	return scrub(code, limit, secrets, func(run string) bool { return !isCodeWord(run) })
}

// span is the byte range [start, end) of text to replace.
type span struct{ start, end int }

func scrub(text string, limit int, secrets []string, cutRun func(string) bool) string {
	// Normalize first: turning a control character into a space could otherwise complete a
	// secret that was not there when the secrets were looked for.
	s := normalize(text)
	spans := secretSpans(s, secrets)
	spans = appendTokenRuns(spans, s, cutRun)
	s = strings.TrimSpace(replaceSpans(s, spans))
	if i := cutIndex(s, limit); i >= 0 {
		return s[:outsideRedaction(s, i)] + ellipsis
	}
	return s
}

// secretSpans finds every occurrence of every form of every secret in s, ignoring ASCII case.
// Spans are widened to whole runes, so that a secret that is not valid UTF-8 and matches inside
// a character cannot leave half a character behind.
func secretSpans(s string, secrets []string) []span {
	var spans []span
	lower := asciiLower(s)
	for _, p := range secretForms(secrets) {
		p = asciiLower(p)
		for from := 0; from <= len(lower)-len(p); {
			i := strings.Index(lower[from:], p)
			if i < 0 {
				break
			}
			sp := span{from + i, from + i + len(p)}
			for sp.start > 0 && !utf8.RuneStart(s[sp.start]) {
				sp.start--
			}
			for sp.end < len(s) && !utf8.RuneStart(s[sp.end]) {
				sp.end++
			}
			spans = append(spans, sp)
			from = sp.end
		}
	}
	return spans
}

// secretForms lists the non-empty secrets together with the forms a server may echo them in:
// as normalize leaves them (a secret with a control character), URL query and path escaped,
// and JSON-escaped with and without HTML escaping and with "/" escaped or not.
func secretForms(secrets []string) []string {
	var forms []string
	add := func(f string) {
		if f != "" && !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		add(secret)
		add(normalize(secret))
		add(url.QueryEscape(secret))
		add(url.PathEscape(secret))
		for _, html := range []bool{true, false} {
			j := jsonEscaped(secret, html)
			add(j)
			add(strings.ReplaceAll(j, "/", `\/`))
		}
	}
	// Longest first: with overlapping spans merged the order does not change the result, but it
	// keeps the work proportional to the text when many forms match at the same place.
	slices.SortStableFunc(forms, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	return forms
}

// jsonEscaped is s as it appears between the quotes of a JSON string.
func jsonEscaped(s string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if enc.Encode(s) != nil {
		return ""
	}
	q := strings.TrimSuffix(b.String(), "\n")
	return q[1 : len(q)-1]
}

// appendTokenRuns adds the runs of the token alphabet that are MinTokenRun or more bytes long
// and that cutRun wants cut. The alphabet is ASCII, so bytes and characters coincide.
func appendTokenRuns(spans []span, s string, cutRun func(string) bool) []span {
	for i := 0; i < len(s); {
		if !isTokenByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		if j-i >= MinTokenRun && cutRun(s[i:j]) {
			spans = append(spans, span{i, j})
		}
		i = j
	}
	return spans
}

// replaceSpans replaces each group of overlapping or adjacent spans with one Redaction.
func replaceSpans(s string, spans []span) string {
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	var b strings.Builder
	b.Grow(len(s))
	done := 0 // s[:done] is written
	cur := spans[0]
	flush := func() {
		b.WriteString(s[done:cur.start])
		b.WriteString(Redaction)
		done = cur.end
	}
	for _, sp := range spans[1:] {
		if sp.start <= cur.end {
			cur.end = max(cur.end, sp.end)
			continue
		}
		flush()
		cur = sp
	}
	flush()
	b.WriteString(s[done:])
	return b.String()
}

// outsideRedaction moves a cut at byte i back to the start of a Redaction it would split, so
// that a cut never leaves a fragment such as "[reda" that reads as server text.
func outsideRedaction(s string, i int) int {
	for j := i - 1; j >= 0 && j > i-len(Redaction); j-- {
		if strings.HasPrefix(s[j:], Redaction) {
			return j
		}
	}
	return i
}

func isTokenByte(c byte) bool {
	switch {
	case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("-_.+/=", c) >= 0
}

// isCodeWord reports whether run has the shape of an OAuth2 or Auth0 error code.
func isCodeWord(run string) bool {
	for i := 0; i < len(run); i++ {
		if c := run[i]; c != '_' && (c < 'a' || c > 'z') {
			return false
		}
	}
	return true
}

// asciiLower lowercases ASCII letters only, so that byte offsets in the result are those of s.
func asciiLower(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return 'A' <= r && r <= 'Z' })
	if i < 0 {
		return s
	}
	b := []byte(s)
	for ; i < len(b); i++ {
		if 'A' <= b[i] && b[i] <= 'Z' {
			b[i] += 'a' - 'A'
		}
	}
	return string(b)
}
