package main

import (
	"runtime/debug"
	"strconv"
)

// defaultGCPercent is the manager's GOGC unless the environment sets one. Go's default (100) lets
// the heap grow to twice the live data before collecting; the manager's live data is its cache
// (about 5 KB per binding with its Secret), so at 10,000 bindings half its resident memory was
// garbage waiting. 50 keeps it to one and a half times, for a few percent more CPU (measured in
// the README's performance section). Prometheus makes the same trade with 75.
const defaultGCPercent = 50

// setGCPercent applies defaultGCPercent unless GOGC is set (lookup is os.LookupEnv), and says
// which applies.
func setGCPercent(lookup func(string) (string, bool)) (percent string, fromEnv bool) {
	if v, set := lookup("GOGC"); set {
		return v, true
	}
	debug.SetGCPercent(defaultGCPercent)
	return strconv.Itoa(defaultGCPercent), false
}
