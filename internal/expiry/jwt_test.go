package expiry

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestJWTExpiry(t *testing.T) {
	enc := base64.RawURLEncoding.EncodeToString
	padded := base64.URLEncoding.EncodeToString
	exp := time.Unix(1_750_000_000, 0).UTC()
	tests := []struct {
		name    string
		token   string
		wantOK  bool
		wantExp time.Time
		wantIat time.Time
	}{
		{name: "integer exp and iat", token: jwt(`{"exp":1750000000,"iat":1749996400}`), wantOK: true, wantExp: exp, wantIat: exp.Add(-time.Hour)},
		{name: "exp only", token: jwt(`{"exp":1750000000}`), wantOK: true, wantExp: exp},
		{name: "float exp", token: jwt(`{"exp":1750000000.25}`), wantOK: true, wantExp: exp.Add(250 * time.Millisecond)},
		{name: "exponent notation", token: jwt(`{"exp":1.75e9}`), wantOK: true, wantExp: exp},
		{name: "padded segments", token: padded([]byte(`{"alg":"none"}`)) + "." + padded([]byte(`{"exp":1750000000,"x":"ab"}`)) + ".", wantOK: true, wantExp: exp},
		{name: "invalid iat is ignored", token: jwt(`{"exp":1750000000,"iat":"yesterday"}`), wantOK: true, wantExp: exp},
		{name: "whitespace in payload", token: jwt(" \n{ \"exp\" : 1750000000 }\n"), wantOK: true, wantExp: exp},
		{name: "exp as string", token: jwt(`{"exp":"1750000000"}`)},
		{name: "exp missing", token: jwt(`{"iat":1750000000}`)},
		{name: "exp null", token: jwt(`{"exp":null}`)},
		{name: "exp zero", token: jwt(`{"exp":0}`)},
		{name: "exp negative", token: jwt(`{"exp":-5}`)},
		{name: "exp after year 9999", token: jwt(`{"exp":253402300800}`)},
		{name: "exp huge float", token: jwt(`{"exp":1e300}`)},
		{name: "claim names are case-sensitive", token: jwt(`{"EXP":1750000000}`)},
		{name: "payload not an object", token: jwt(`[1750000000]`)},
		{name: "payload not JSON", token: jwt(`exp=1750000000`)},
		{name: "header not JSON", token: enc([]byte("hello")) + "." + enc([]byte(`{"exp":1750000000}`)) + ".sig"},
		{name: "bad base64", token: "eyJhbGciOiJub25lIn0.!!!.sig"},
		{name: "two segments", token: "eyJhbGciOiJub25lIn0.eyJleHAiOjE3NTAwMDAwMDB9"},
		{name: "JWE has five segments", token: jwt(`{"exp":1750000000}`) + ".a.b"},
		{name: "opaque Google token", token: "ya29.a0AfH6SMBx-SECRET"},
		{name: "empty", token: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			gotExp, gotIat, ok := JWTExpiry(tc.token)
			if ok != tc.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tc.wantOK)
			}
			if !gotExp.Equal(tc.wantExp) || !gotIat.Equal(tc.wantIat) {
				t.Errorf("exp, iat = %v, %v; want %v, %v", gotExp, gotIat, tc.wantExp, tc.wantIat)
			}
		})
	}
}

// FuzzJWTExpiry feeds arbitrary strings; the seeds steer it towards
// JWT-shaped input.
func FuzzJWTExpiry(f *testing.F) {
	for _, s := range []string{
		jwt(`{"exp":1750000000,"iat":1749996400}`), jwt(`{"exp":1.5}`), jwt(`{"exp":"1"}`), jwt(`{"exp":1e999}`),
		jwt(`{"exp":-1,"iat":2}`), jwt(`{}`), "a.b.c", "..", "=.=.=", "", "ya29.opaque",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		exp, iat, ok := JWTExpiry(token)
		checkClaimTimes(t, exp, iat, ok)
		if ok && strings.Count(token, ".") != 2 {
			t.Fatal("accepted a token without exactly three segments")
		}
	})
}

// FuzzJWTExpiryClaims fuzzes the decoded payload, so the fuzzer explores
// JSON rather than base64, and cross-checks against encoding/json.
func FuzzJWTExpiryClaims(f *testing.F) {
	for _, s := range []string{
		`{"exp":1750000000,"iat":1749996400}`, `{"exp":1750000000.999999999}`, `{"exp":1E9}`, `{"exp":"1"}`,
		`{"exp":0.000000001}`, `{"exp":9223372036854775807}`, `{"exp":-0}`, `{"Exp":1}`, `{"exp":1,"exp":2}`, `[]`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		exp, iat, ok := JWTExpiry(jwt(string(payload)))
		checkClaimTimes(t, exp, iat, ok)

		var claims map[string]json.RawMessage
		if json.Unmarshal(payload, &claims) != nil {
			if ok {
				t.Fatal("accepted a payload encoding/json rejects")
			}
			return
		}
		var n json.Number
		if json.Unmarshal(claims["exp"], &n) == nil && claims["exp"][0] != '"' {
			if i, err := n.Int64(); err == nil && i > 0 && i <= maxNumericDate {
				if !ok || exp.Unix() != i || exp.Nanosecond() != 0 {
					t.Fatalf("integer exp %d gave %v, %v", i, exp, ok)
				}
			}
		}
	})
}

func checkClaimTimes(t *testing.T, exp, iat time.Time, ok bool) {
	t.Helper()
	epoch := time.Unix(0, 0)
	if !ok {
		if !exp.IsZero() || !iat.IsZero() {
			t.Fatal("returned times with ok=false")
		}
		return
	}
	if !exp.After(epoch) || exp.Unix() > maxNumericDate || exp.Location() != time.UTC {
		t.Fatalf("exp %v out of range", exp)
	}
	if !iat.IsZero() && (!iat.After(epoch) || iat.Unix() > maxNumericDate) {
		t.Fatalf("iat %v out of range", iat)
	}
}

// jwt builds an unsigned compact JWS with the given payload.
func jwt(payload string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2lnbmF0dXJl"
}
