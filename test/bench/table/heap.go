package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// freeLocalAddr returns a loopback address with a port nothing listens on now, for the
// manager's --pprof-bind-address.
func freeLocalAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// withPprof adds --pprof-bind-address to the manager's arguments unless they have one, and
// returns the address the profiles are served on.
func withPprof(args []string) ([]string, string, error) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--pprof-bind-address="); ok {
			return args, v, nil
		}
	}
	addr, err := freeLocalAddr()
	if err != nil {
		return args, "", err
	}
	return append(append([]string(nil), args...), "--pprof-bind-address="+addr), addr, nil
}

// heapSample is the manager's heap after a garbage collection, and its goroutines.
type heapSample struct {
	live       uint64 // bytes: HeapAlloc right after a GC, the bytes of live objects
	goroutines int
}

// liveHeap asks the manager to collect garbage and returns its heap then, from its pprof
// endpoint. The binary heap profile of the same moment is saved as name in dir, for `go tool
// pprof` (a heap profile is as of the last GC but one: three GCs run before it is taken).
func liveHeap(ctx context.Context, addr, dir, name string) (heapSample, error) {
	var hs heapSample
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	get := func(query string) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/heap?"+query, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			_ = resp.Body.Close()
			return nil, fmt.Errorf("pprof heap: %s", resp.Status)
		}
		return resp.Body, nil
	}
	// Two collections with the binary profile (small; read to its end so that no handler is
	// still busy when the next one collects), then a third that reports the heap.
	for range 2 {
		body, err := get("gc=1")
		if err != nil {
			return hs, err
		}
		_, _ = io.Copy(io.Discard, body)
		_ = body.Close()
	}
	body, err := get("gc=1&debug=1")
	if err != nil {
		return hs, err
	}
	hs.live, err = parseHeapAlloc(body)
	_, _ = io.Copy(io.Discard, body)
	_ = body.Close()
	if err != nil {
		return hs, err
	}
	if g, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/debug/pprof/goroutine?debug=1", nil); err == nil {
		if resp, err := http.DefaultClient.Do(g); err == nil {
			hs.goroutines = parseGoroutines(resp.Body)
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
		}
	}
	if profile, err := get("gc=0"); err == nil {
		if f, err := os.Create(filepath.Join(dir, name)); err == nil {
			_, _ = io.Copy(f, profile)
			_ = f.Close()
		}
		_ = profile.Close()
	}
	return hs, nil
}

// parseGoroutines reads N from "goroutine profile: total N", the first line of a text
// goroutine profile; 0 when absent.
func parseGoroutines(r io.Reader) int {
	sc := bufio.NewScanner(r)
	if sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "goroutine profile: total "); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// parseHeapAlloc reads "# HeapAlloc = N" from a text heap profile (debug=1).
func parseHeapAlloc(r io.Reader) (uint64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("pprof heap: no HeapAlloc line")
}
