package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// The API server's audit log is how the benchmark counts the manager's requests: every
// request of the manager's user that reaches the API server, as the API server saw it.

// managerUser is the user the manager's kubeconfig authenticates as.
const managerUser = "bench-manager"

// auditPolicy logs every request of the manager's user except watches, at Metadata level (no
// object bodies: no token passes through the log).
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  verbs: ["watch"]
- level: Metadata
  users: ["` + managerUser + `"]
- level: None
`

// detailedAuditPolicy is auditPolicy with the bodies of the manager's Event writes and binding
// status writes (neither holds a token), so that the log tells Events apart by reason and the
// Restarter's lastRolloutRestart patches from the reconciler's status writes.
const detailedAuditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: None
  verbs: ["watch"]
- level: Request
  users: ["` + managerUser + `"]
  verbs: ["create", "update", "patch"]
  resources:
  - group: ""
    resources: ["events"]
  - group: "events.k8s.io"
    resources: ["events"]
  - group: "auth.idptoken.dev"
    resources: ["idptokenbindings/status"]
- level: Metadata
  users: ["` + managerUser + `"]
- level: None
`

type auditEvent struct {
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
		Name        string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
	Received      time.Time       `json:"requestReceivedTimestamp"`
	RequestObject json.RawMessage `json:"requestObject"` // with detailedAuditPolicy only
}

// requestCounts counts the manager's requests by "verb resource[/subresource][[tag]] code". The
// tag is there only for a body that detailedAuditPolicy logs: an Event's "Kind/Reason" (the kind
// of the object it is about), or "lastRolloutRestart" for a status patch of that field alone.
type requestCounts map[string]int

// auditLog reads the audit log from where the last read stopped.
type auditLog struct {
	path   string
	offset int64
	// events: the tag of each Event the manager created, by name, for the patches that later
	// count it again (an Event series: only the count changes).
	events map[string]string
	// patched: when each successful Deployment patch of the manager was received, by name,
	// since the last takePatched.
	patched map[string][]time.Time
}

func (a *auditLog) read() (requestCounts, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	if _, err := f.Seek(a.offset, 0); err != nil {
		return nil, err
	}
	out := requestCounts{}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			break // a partial last line is read next time
		}
		a.offset += int64(len(line))
		var e auditEvent
		if json.Unmarshal(line, &e) != nil || e.User.Username != managerUser {
			continue
		}
		res := "-"
		if e.ObjectRef != nil {
			res = e.ObjectRef.Resource
			if e.ObjectRef.Subresource != "" {
				res += "/" + e.ObjectRef.Subresource
			}
		}
		code := 0
		if e.ResponseStatus != nil {
			code = e.ResponseStatus.Code
		}
		if tag := a.tag(&e, res); tag != "" {
			res += "[" + tag + "]"
		}
		if res == "deployments" && e.Verb == "patch" && code/100 == 2 {
			if a.patched == nil {
				a.patched = map[string][]time.Time{}
			}
			a.patched[e.ObjectRef.Name] = append(a.patched[e.ObjectRef.Name], e.Received)
		}
		out[fmt.Sprintf("%s %s %d", e.Verb, res, code)]++
	}
	return out, nil
}

// tag names what a write whose body the log holds was: an Event by the kind of its object and
// its reason, a status patch of lastRolloutRestart alone. "" without a body.
func (a *auditLog) tag(e *auditEvent, res string) string {
	if len(e.RequestObject) == 0 || e.ObjectRef == nil {
		return ""
	}
	switch res {
	case "events":
		var ev struct {
			Metadata  struct{ Name string }
			Reason    string
			Regarding struct{ Kind string } // events.k8s.io/v1
			Involved  struct{ Kind string } `json:"involvedObject"` // v1
		}
		if json.Unmarshal(e.RequestObject, &ev) != nil {
			return ""
		}
		if ev.Reason == "" { // a patch of a series: the Event created before
			if t, ok := a.events[e.ObjectRef.Name]; ok {
				return t
			}
			return "?"
		}
		t := cmp.Or(ev.Regarding.Kind, ev.Involved.Kind, "?") + "/" + ev.Reason
		if a.events == nil {
			a.events = map[string]string{}
		}
		a.events[cmp.Or(ev.Metadata.Name, e.ObjectRef.Name)] = t
		return t
	case "idptokenbindings/status":
		var patch map[string]map[string]json.RawMessage
		if json.Unmarshal(e.RequestObject, &patch) != nil {
			return ""
		}
		if _, ok := patch["status"]["lastRolloutRestart"]; ok && len(patch) == 1 && len(patch["status"]) == 1 {
			return tagLastRestart
		}
	}
	return ""
}

// tagLastRestart tags the Restarter's status patches of lastRolloutRestart alone.
const tagLastRestart = "lastRolloutRestart"

// takePatched returns the times of the Deployment patches read since the last take, by name.
func (a *auditLog) takePatched() map[string][]time.Time {
	p := a.patched
	a.patched = nil
	return p
}

// baseResource is res without its tag.
func baseResource(res string) string {
	base, _, _ := strings.Cut(res, "[")
	return base
}

// tagOf is res's tag, "" without one.
func tagOf(res string) string {
	_, tag, ok := strings.Cut(res, "[")
	if !ok {
		return ""
	}
	return strings.TrimSuffix(tag, "]")
}

func isWrite(verb string) bool {
	switch verb {
	case "create", "update", "patch", "delete", "deletecollection":
		return true
	}
	return false
}

// writes sums the write requests whose resource satisfies match (failed ones included:
// the API server did the work of refusing them).
func (c requestCounts) writes(match func(resource string) bool) int {
	n := 0
	for k, v := range c {
		f := strings.Fields(k)
		if len(f) == 3 && isWrite(f[0]) && match(f[1]) {
			n += v
		}
	}
	return n
}

// gets counts the GETs of resource (uncached reads: the manager's cache lists and watches).
func (c requestCounts) gets(resource string) int {
	n := 0
	for k, v := range c {
		if f := strings.Fields(k); len(f) == 3 && f[0] == "get" && baseResource(f[1]) == resource {
			n += v
		}
	}
	return n
}

func (c requestCounts) String() string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s: %d", k, c[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
