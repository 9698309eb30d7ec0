package auth0events

import (
	"encoding/json"
	"time"
)

// Event types the operator subscribes to by default.
const (
	TypeUserUpdated       = "user.updated"
	TypeUserDeleted       = "user.deleted"
	TypeConnectionUpdated = "connection.updated"
)

// DefaultTypes is the event_type filter used when Config.Types is empty.
var DefaultTypes = []string{TypeUserUpdated, TypeUserDeleted, TypeConnectionUpdated}

// eventError names the terminal error frame.
const eventError = "error"

// maxIDLen bounds the identifiers kept from an event; a longer one makes the event Incomplete
// rather than being cut, because a cut user ID names another user.
const maxIDLen = 512

// Event is one Auth0 event, reduced to what the operator acts on. The rest of the payload
// (profile data, metadata) is never kept.
type Event struct {
	// ID is the CloudEvent id ("evt_…"); a redelivered event has the same ID.
	ID string
	// Type is the event type, e.g. "user.updated".
	Type string
	// Time is when the event happened, by Auth0's clock; zero when the payload had none.
	Time time.Time
	// UserID is data.object.user_id of a user.* event.
	UserID string
	// ConnectionID and ConnectionName are data.object.id and .name of a connection.* event.
	ConnectionID, ConnectionName string
	// Offset is the stream position of the event (its SSE id). Persist Subscribe's checkpoint,
	// not this: with reordering, an event's offset can be ahead of events not yet handled.
	Offset string
	// Incomplete is set when the payload was too large or could not be read: only Type and
	// Offset are known, so the caller cannot tell whom the event is about.
	Incomplete bool

	// seq is the arrival order, for stable ordering and checkpoints.
	seq uint64
}

// message is the JSON of a data line: an event, an offset-only marker or an error. Only the
// fields used are declared, so nothing else of the payload is decoded or kept.
type message struct {
	Offset string `json:"offset"`
	Event  *struct {
		ID   string `json:"id"`
		Type string `json:"type"`
		Time string `json:"time"`
		Data struct {
			Object struct {
				UserID string `json:"user_id"`
				ID     string `json:"id"`
				Name   string `json:"name"`
			} `json:"object"`
		} `json:"data"`
	} `json:"event"`
	Error *streamError `json:"error"`
}

// streamError is the payload of an "event: error" frame.
type streamError struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Offset  *string `json:"offset"`
}

// parseEvent turns a frame into an Event. The SSE event field names the type (as the SDK reads
// it); the payload's type is the fallback. A payload that does not decode, or holds an
// over-long identifier, gives an Incomplete event. A payload without an event object (an
// offset-only frame, or a marker under another name) is no event: marker is set and only
// Offset is filled in.
func parseEvent(f frame) (ev Event, marker bool) {
	ev = Event{Type: clipType(f.event), Offset: f.id}
	if f.tooLarge {
		ev.Incomplete = true
		return ev, false
	}
	var m message
	if f.data == "" {
		return ev, true
	}
	if json.Unmarshal([]byte(f.data), &m) != nil {
		ev.Incomplete = true
		return ev, false
	}
	if m.Event == nil {
		if ev.Offset == "" && len(m.Offset) <= maxIDLen {
			ev.Offset = m.Offset
		}
		return Event{Offset: ev.Offset}, true
	}
	e := m.Event
	if ev.Type == "" || ev.Type == "message" {
		ev.Type = e.Type
	}
	if ev.Offset == "" {
		ev.Offset = m.Offset
	}
	obj := e.Data.Object
	ev.ID, ev.UserID, ev.ConnectionID, ev.ConnectionName = e.ID, obj.UserID, obj.ID, obj.Name
	for _, s := range []string{ev.ID, ev.UserID, ev.ConnectionID, ev.ConnectionName, ev.Type} {
		if len(s) > maxIDLen {
			return Event{Type: clipType(ev.Type), Offset: ev.Offset, Incomplete: true}, false
		}
	}
	if t, err := time.Parse(time.RFC3339Nano, e.Time); err == nil {
		ev.Time = t
	}
	return ev, false
}

func clipType(t string) string {
	if len(t) > maxIDLen {
		return t[:maxIDLen]
	}
	return t
}

// parseError reads an error frame's payload; one that does not decode is an error with no code.
func parseError(data string) streamError {
	var m message
	if json.Unmarshal([]byte(data), &m) != nil || m.Error == nil {
		return streamError{}
	}
	return *m.Error
}
