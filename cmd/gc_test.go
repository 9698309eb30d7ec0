package main

import (
	"runtime/debug"
	"testing"
)

func TestTheManagerCollectsAtHalfGrowthUnlessGOGCIsSet(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	if v, env := setGCPercent(func(string) (string, bool) { return "200", true }); v != "200" || !env {
		t.Fatalf("GOGC=200 in the environment: got %q, fromEnv %v", v, env)
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Fatalf("GOGC set in the environment, and the manager changed the GC percent to %d", got)
	}
	if v, env := setGCPercent(func(string) (string, bool) { return "", false }); v != "50" || env {
		t.Fatalf("no GOGC: got %q, fromEnv %v", v, env)
	}
	if got := debug.SetGCPercent(100); got != defaultGCPercent {
		t.Fatalf("no GOGC: the GC percent is %d, want %d", got, defaultGCPercent)
	}
}
