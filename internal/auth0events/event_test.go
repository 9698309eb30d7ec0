package auth0events

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseEvent(t *testing.T) {
	at := time.Date(2025, 6, 1, 12, 5, 0, 0, time.UTC)
	tests := map[string]struct {
		in     frame
		want   Event
		marker bool
	}{
		"user.updated as Auth0 documents it": {
			in: frame{event: "user.updated", id: "NTY3", data: `{"offset":"NTY3","event":{"id":"evt_def456","type":"user.updated",` +
				`"time":"2025-06-01T12:05:00Z","data":{"object":{"user_id":"auth0|123","email":"jane@example.com",` +
				`"identities":[{"connection":"github","user_id":1}],"app_metadata":{"k":"v"}}}}}`},
			want: Event{ID: "evt_def456", Type: "user.updated", Time: at, UserID: "auth0|123", Offset: "NTY3"},
		},
		"connection.updated": {
			in: frame{event: "connection.updated", id: "o2", data: `{"offset":"o2","event":{"id":"evt_c","type":"connection.updated",` +
				`"time":"2025-06-01T12:05:00.123Z","data":{"object":{"id":"con_abc","name":"github","strategy":"github"}}}}`},
			want: Event{ID: "evt_c", Type: "connection.updated", Time: at.Add(123 * time.Millisecond),
				ConnectionID: "con_abc", ConnectionName: "github", Offset: "o2"},
		},
		"type and offset from the payload when the frame has none": {
			in:   frame{data: `{"offset":"o3","event":{"id":"evt_d","type":"user.deleted","data":{"object":{"user_id":"github|9"}}}}`},
			want: Event{ID: "evt_d", Type: "user.deleted", UserID: "github|9", Offset: "o3"},
		},
		"a bad time is left zero": {
			in:   frame{event: "user.updated", id: "o", data: `{"event":{"id":"evt_e","time":"yesterday","data":{"object":{"user_id":"u"}}}}`},
			want: Event{ID: "evt_e", Type: "user.updated", UserID: "u", Offset: "o"},
		},
		"a payload that does not decode": {
			in:   frame{event: "user.updated", id: "o", data: `{"event":{"id":7}}`},
			want: Event{Type: "user.updated", Offset: "o", Incomplete: true},
		},
		"no event object is a marker": {
			in:     frame{event: "offset-only", data: `{"offset":"o"}`},
			want:   Event{Offset: "o"},
			marker: true,
		},
		"no data is a marker": {
			in:     frame{id: "o", hasID: true},
			want:   Event{Offset: "o"},
			marker: true,
		},
		"too large": {
			in:   frame{event: "user.updated", id: "o", tooLarge: true},
			want: Event{Type: "user.updated", Offset: "o", Incomplete: true},
		},
		"an over-long user id is not cut into another user's": {
			in:   frame{event: "user.updated", id: "o", data: `{"event":{"id":"evt_f","data":{"object":{"user_id":"` + strings.Repeat("u", maxIDLen+1) + `"}}}}`},
			want: Event{Type: "user.updated", Offset: "o", Incomplete: true},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got, marker := parseEvent(tc.in); !reflect.DeepEqual(got, tc.want) || marker != tc.marker {
				t.Errorf("got  %+v, marker %v\nwant %+v, marker %v", got, marker, tc.want, tc.marker)
			}
		})
	}
}

func TestParseError(t *testing.T) {
	off := "o9"
	tests := map[string]struct {
		data string
		want streamError
	}{
		"cursor_expired with offset": {
			data: `{"error":{"code":"cursor_expired","message":"gone","offset":"o9"}}`,
			want: streamError{Code: "cursor_expired", Message: "gone", Offset: &off},
		},
		"not JSON":  {data: `oops`, want: streamError{}},
		"no error":  {data: `{"offset":"o"}`, want: streamError{}},
		"bad types": {data: `{"error":{"code":5}}`, want: streamError{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := parseError(tc.data); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
