package demo

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// checkLoopback refuses listen addresses that are not on the loopback interface.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("listen address %q is not a loopback address (use 127.0.0.1:<port>)", addr)
}

// A proc identifies one process across pid reuse: its pid plus its start time (clock ticks
// since boot, field 22 of /proc/<pid>/stat).
type proc struct {
	PID   int
	Start uint64
	Name  string
}

func (p proc) String() string { return fmt.Sprintf("%d %d %s", p.PID, p.Start, p.Name) }

// procStat reads a process's parent pid, start time and command name from /proc.
func procStat(pid int) (ppid int, start uint64, name string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", err
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return 0, 0, "", errors.New("malformed stat")
	}
	name = s[open+1 : end]
	fields := strings.Fields(s[end+1:]) // fields[0] is field 3 (state)
	if len(fields) < 20 {
		return 0, 0, "", errors.New("short stat")
	}
	ppid, _ = strconv.Atoi(fields[1])
	start, _ = strconv.ParseUint(fields[19], 10, 64)
	return ppid, start, name, nil
}

// self describes this process.
func self() proc {
	_, start, name, _ := procStat(os.Getpid())
	return proc{PID: os.Getpid(), Start: start, Name: name}
}

// children lists this process's direct children (the control plane and the manager).
func children() []proc {
	entries, _ := os.ReadDir("/proc")
	me := os.Getpid()
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, start, name, err := procStat(pid)
		if err == nil && ppid == me {
			out = append(out, proc{PID: pid, Start: start, Name: name})
		}
	}
	return out
}

// alive tells whether p still runs (same pid and start time, not a zombie).
func (p proc) alive() bool {
	_, start, _, err := procStat(p.PID)
	if err != nil || start != p.Start {
		return false
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
	if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && b[i+2] == 'Z' {
		return false
	}
	return true
}

// pidFile records the driver and the processes it started, so that a run whose driver was
// killed (SIGKILL) cannot leave them behind: the next run stops exactly those processes.
type pidFile struct{ path string }

func (f pidFile) write(driver proc, kids []proc) error {
	var b strings.Builder
	_, _ = fmt.Fprintf(&b, "driver %s\n", driver)
	for _, k := range kids {
		_, _ = fmt.Fprintf(&b, "child %s\n", k)
	}
	return os.WriteFile(f.path, []byte(b.String()), 0o600)
}

func (f pidFile) remove() { _ = os.Remove(f.path) }

// reclaim stops the processes a previous, killed run left behind. It fails when that run's
// driver is still alive: two demos must not share a state directory.
func (f pidFile) reclaim(logf func(string, ...any)) error {
	file, err := os.Open(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	var driver proc
	var kids []proc
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		var kind string
		var p proc
		if n, _ := fmt.Sscanf(sc.Text(), "%s %d %d %s", &kind, &p.PID, &p.Start, &p.Name); n < 3 {
			continue
		}
		if kind == "driver" {
			driver = p
		} else {
			kids = append(kids, p)
		}
	}
	_ = file.Close()
	if driver.PID != 0 && driver.alive() {
		return fmt.Errorf("another demo (pid %d) is running with state directory %s; stop it first", driver.PID, filepath.Dir(f.path))
	}
	// Reverse order of start: the manager, then kube-apiserver, then etcd.
	for i := len(kids) - 1; i >= 0; i-- {
		k := kids[i]
		if !k.alive() {
			continue
		}
		logf("Stopping %s (pid %d) left behind by a previous run", k.Name, k.PID)
		_ = syscall.Kill(k.PID, syscall.SIGTERM)
		deadline := time.Now().Add(10 * time.Second)
		for k.alive() && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
		if k.alive() {
			_ = syscall.Kill(k.PID, syscall.SIGKILL)
		}
	}
	f.remove()
	return nil
}

// Reclaim stops the processes (control plane, manager) that a demo run with this state
// directory left behind because it was killed before it could clean up. It is a no-op when
// the run ended normally, and fails when that run is still going.
func Reclaim(stateDir string, logf func(format string, args ...any)) error {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	return pidFile{path: filepath.Join(stateDir, "pids")}.reclaim(logf)
}
