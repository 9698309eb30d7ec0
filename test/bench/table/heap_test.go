package main

import (
	"strings"
	"testing"
)

func TestParseHeapAllocReadsTheRuntimesFigure(t *testing.T) {
	text := "heap profile: 3: 4096 [9: 8192] @ heap/1048576\n1: 4096 [1: 4096] @ 0x1 0x2\n\n# runtime.MemStats\n# Alloc = 123\n# TotalAlloc = 999\n# HeapAlloc = 41943040\n# HeapSys = 1\n"
	got, err := parseHeapAlloc(strings.NewReader(text))
	if err != nil || got != 41943040 {
		t.Fatalf("parseHeapAlloc = %d, %v; want 41943040", got, err)
	}
	if _, err := parseHeapAlloc(strings.NewReader("# Alloc = 1\n")); err == nil {
		t.Fatal("a profile without HeapAlloc was read without an error")
	}
}

func TestParseGoroutinesReadsTheTotal(t *testing.T) {
	if n := parseGoroutines(strings.NewReader("goroutine profile: total 812\n3 @ 0x1\n")); n != 812 {
		t.Fatalf("parseGoroutines = %d, want 812", n)
	}
	if n := parseGoroutines(strings.NewReader("something else\n")); n != 0 {
		t.Fatalf("parseGoroutines = %d, want 0", n)
	}
}

func TestWithPprofKeepsAnAddressTheUserGave(t *testing.T) {
	args, addr, err := withPprof([]string{"--zap-log-level=info", "--pprof-bind-address=127.0.0.1:7777"})
	if err != nil || addr != "127.0.0.1:7777" || len(args) != 2 {
		t.Fatalf("withPprof = %v, %q, %v", args, addr, err)
	}
	args, addr, err = withPprof([]string{"--zap-log-level=info"})
	if err != nil || !strings.HasPrefix(addr, "127.0.0.1:") || args[len(args)-1] != "--pprof-bind-address="+addr {
		t.Fatalf("withPprof = %v, %q, %v", args, addr, err)
	}
}

// The table's live heap is the one taken once the row's work was over; the one taken when all
// were Ready stands in only when the later one is missing.
func TestTheTablesLiveHeapIsTheSettledOne(t *testing.T) {
	r := &result{heapReady: heapSample{live: 89 << 20}, heapSettled: heapSample{live: 44 << 20}}
	if got := r.liveHeap(); got != 44<<20 {
		t.Errorf("live heap %d MiB, want the settled 44 MiB", got>>20)
	}
	r.heapSettled = heapSample{}
	if got := r.liveHeap(); got != 89<<20 {
		t.Errorf("live heap %d MiB without a settled sample, want the one at Ready (89 MiB)", got>>20)
	}
}
