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

package auth0sim_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// sseFrame is one frame of an event stream, as a test reads it.
type sseFrame struct {
	event, id, data string
	comments        []string
	retry           string
}

// sseMessage is the data of an event frame.
type sseMessage struct {
	Offset string `json:"offset"`
	Event  struct {
		ID          string `json:"id"`
		Type        string `json:"type"`
		Time        string `json:"time"`
		Source      string `json:"source"`
		SpecVersion string `json:"specversion"`
		Data        struct {
			Object map[string]any `json:"object"`
		} `json:"data"`
	} `json:"event"`
	Error *struct {
		Code, Message, Offset string
	} `json:"error"`
}

func (f sseFrame) message(t *testing.T) sseMessage {
	t.Helper()
	var m sseMessage
	if err := json.Unmarshal([]byte(f.data), &m); err != nil {
		t.Fatalf("frame data is not JSON: %v: %.300s", err, f.data)
	}
	return m
}

// eventStream is an open GET /api/v2/events.
type eventStream struct {
	resp   *http.Response
	frames chan sseFrame
	cancel context.CancelFunc
}

// openEvents opens the stream; query and header may be nil. A non-200 answer is returned with
// its body read and no stream.
func openEvents(t *testing.T, s *auth0sim.Server, c *http.Client, tok string, query url.Values, header http.Header) (*eventStream, response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/api/v2/events?"+query.Encode(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET /api/v2/events: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer cancel()
		var b strings.Builder
		_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
		_ = resp.Body.Close()
		return nil, response{status: resp.StatusCode, header: resp.Header, body: []byte(b.String())}
	}
	es := &eventStream{resp: resp, frames: make(chan sseFrame, 1000), cancel: cancel}
	go es.read()
	t.Cleanup(es.close)
	return es, response{status: resp.StatusCode, header: resp.Header}
}

func (es *eventStream) close() {
	es.cancel()
	_ = es.resp.Body.Close()
}

// read parses frames until the body ends; then it closes frames.
func (es *eventStream) read() {
	defer close(es.frames)
	sc := bufio.NewScanner(es.resp.Body)
	sc.Buffer(nil, 1<<20)
	var f sseFrame
	empty := true
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if !empty {
				es.frames <- f
			}
			f, empty = sseFrame{}, true
			continue
		}
		empty = false
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			f.comments = append(f.comments, value)
		case "event":
			f.event = value
		case "id":
			f.id = value
		case "data":
			f.data = value
		case "retry":
			f.retry = value
		}
	}
}

// next returns the next frame that satisfies keep, failing after 5 s; ok is false when
// the stream ended first.
func (es *eventStream) next(t *testing.T, keep func(sseFrame) bool) (sseFrame, bool) {
	const timeout = 5 * time.Second
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case f, ok := <-es.frames:
			if !ok {
				return sseFrame{}, false
			}
			if keep(f) {
				return f, true
			}
		case <-deadline:
			t.Fatalf("no frame within %v", timeout)
		}
	}
}

// nextEvent returns the next frame that is an event (not a comment, retry or offset-only).
func (es *eventStream) nextEvent(t *testing.T) sseFrame {
	t.Helper()
	f, ok := es.next(t, func(f sseFrame) bool { return f.event != "" && f.event != "offset-only" })
	if !ok {
		t.Fatal("the stream ended")
	}
	return f
}

// ended waits for the stream to end.
func (es *eventStream) ended(t *testing.T, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case _, ok := <-es.frames:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatalf("the stream did not end within %v", timeout)
		}
	}
}

// eventsToken returns a token with read:events (plus extra scopes).
func eventsToken(t *testing.T, s *auth0sim.Server, c *http.Client, extra ...string) string {
	t.Helper()
	return m2mToken(t, s, c, append([]string{auth0sim.ScopeReadEvents}, extra...)...)
}
