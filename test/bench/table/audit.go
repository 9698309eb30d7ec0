package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
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

type auditEvent struct {
	Verb      string                    `json:"verb"`
	User      struct{ Username string } `json:"user"`
	ObjectRef *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
	ResponseStatus *struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// requestCounts counts the manager's requests by "verb resource[/subresource] code".
type requestCounts map[string]int

// auditLog reads the audit log from where the last read stopped.
type auditLog struct {
	path   string
	offset int64
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
		out[fmt.Sprintf("%s %s %d", e.Verb, res, code)]++
	}
	return out, nil
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

func (c requestCounts) count(verb, resource string) int {
	n := 0
	for k, v := range c {
		if f := strings.Fields(k); len(f) == 3 && f[0] == verb && f[1] == resource {
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
