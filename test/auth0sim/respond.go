/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// apiError is the Management API error body.
type apiError struct {
	StatusCode int    `json:"statusCode"`
	Error      string `json:"error"`
	Message    string `json:"message"`
	ErrorCode  string `json:"errorCode,omitempty"`
}

// oauthError is the RFC 6749 §5.2 error body used by /oauth/token and the
// IdP token endpoints.
type oauthError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
	ErrorURI         string `json:"error_uri,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, v, "")
}

// writeJSONAs writes v as JSON labelled with contentType ("" is application/json).
func writeJSONAs(w http.ResponseWriter, status int, v any, contentType string) {
	body, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"server_error"}`)
	}
	if contentType == "" {
		contentType = "application/json; charset=utf-8"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeAPIError(w http.ResponseWriter, status int, message, errorCode string) {
	writeJSON(w, status, apiError{StatusCode: status, Error: http.StatusText(status), Message: message, ErrorCode: errorCode})
}

// noStore marks a token endpoint response as not cacheable (RFC 6749 §5.1).
func noStore(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
}

// readParams reads a POST body that is either application/json (an object
// of strings) or application/x-www-form-urlencoded (the default).
func readParams(w http.ResponseWriter, r *http.Request) (map[string]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
	params := map[string]string{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/json" {
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return nil, errors.New("the request body is not a valid JSON object")
		}
		for k, v := range raw {
			switch v := v.(type) {
			case string:
				params[k] = v
			case nil:
			default:
				return nil, fmt.Errorf("parameter %q must be a string", k)
			}
		}
		return params, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, errors.New("the request body is not a valid form")
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			// RFC 6749 §3.2: parameters MUST NOT be included more than once.
			return nil, fmt.Errorf("parameter %q is repeated", k)
		}
		params[k] = v[0]
	}
	return params, nil
}

// basicAuth returns the HTTP Basic credentials, form-decoded as RFC 6749
// §2.3.1 requires (falling back to the raw values when they do not decode).
func basicAuth(r *http.Request) (id, secret string, ok bool) {
	auth := r.Header.Get("Authorization")
	const prefix = "basic "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(auth[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	id, secret, ok = strings.Cut(string(raw), ":")
	if !ok {
		return "", "", false
	}
	if v, err := url.QueryUnescape(id); err == nil {
		id = v
	}
	if v, err := url.QueryUnescape(secret); err == nil {
		secret = v
	}
	return id, secret, true
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int64 {
	sec := int64(math.Ceil(d.Seconds()))
	if sec < 1 {
		sec = 1
	}
	return sec
}
