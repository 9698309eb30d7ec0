// Package secrettemplate renders spec.secret.template.data: each key of the Secret is a Go
// text/template over the token (Input), with a fixed function set that has no side effects
// and no access to the environment, files or the network. It is pure: Compile checks a
// template once (Ready=False InvalidTemplate when it fails), Render writes all keys or none.
//
// # Data
//
// .AccessToken, .ExpiresAt (a time.Time, zero when the expiry is unknown), .TokenType, .Scope,
// .AccessTokenSecret, .Provider, .Connection, and .RefreshToken only when the binding sets
// includeRefreshToken: true (Compile refuses it otherwise). Fields are read one level deep:
// .ExpiresAt.Unix is refused, use the functions. {{ . }} and any printing or JSON encoding of
// the whole data show the token values redacted.
//
// # Functions
//
//	b64enc     standard base64 of a string        {{ b64enc "user:pass" }} → dXNlcjpwYXNz
//	b64dec     the string standard base64 encodes; fails on invalid input
//	                                              {{ b64dec "aGVsbG8=" }} → hello
//	toJson     JSON of any value, a time as its rfc3339 string, without HTML escaping
//	                                              {{ toJson .AccessToken }} → "ya29.a0…"
//	quote      a Go double-quoted string with escapes, like sprig's quote
//	                                              {{ quote "a\"b" }} → "a\"b"
//	upper      upper case                         {{ upper .TokenType }} → BEARER
//	lower      lower case                         {{ lower .TokenType }} → bearer
//	trim       without leading and trailing space {{ trim " x " }} → x
//	default    VALUE unless empty (nil, "", 0, false, the zero time), else DEFAULT; sprig's
//	           argument order, DEFAULT first      {{ .TokenType | default "Bearer" }} → Bearer
//	rfc3339    a time as RFC 3339 in UTC, "" for the zero time
//	                                              {{ rfc3339 .ExpiresAt }} → 2030-01-02T03:04:05Z
//	unixEpoch  a time in decimal seconds since 1970, "" for the zero time
//	                                              {{ unixEpoch .ExpiresAt }} → 1893553445
//
// Of text/template's builtins, and, or, not, eq, ne, lt, le, gt, ge, len, index, slice, print
// and printf are available (print and printf bounded; printf without * widths or argument
// indexes, and widths at most 1024); call, html, js, urlquery and println are not, nor range,
// define, template and block, so that a template runs in time proportional to its length.
//
// # Limits
//
// A key renders to at most MaxKeyBytes, and so does every value a function computes; all keys
// together to at most MaxDataBytes; the functions of one Render read and produce at most
// 4 MiB in all.
//
// # Errors
//
// Errors name the key, the position ("line:column", both from 1; the line alone for a parse
// error) and the function that failed, keys in sorted order. They never hold a value of the
// data: text/template's own messages are replaced by fixed texts, and what is left is scrubbed
// of the secrets with safetext.Scrub.
package secrettemplate
