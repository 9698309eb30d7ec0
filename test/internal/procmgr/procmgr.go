// Package procmgr runs the operator's manager binary as a child process of a test or benchmark,
// against an envtest control plane, so that it can be stopped, killed and started again like a
// pod's container.
package procmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Build compiles the manager (./cmd of the module at repoRoot, e.g. testenv.RepoRoot()) into out.
func Build(ctx context.Context, repoRoot, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./cmd")
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd: %w\n%s", err, b)
	}
	return nil
}

// WriteKubeconfig adds a user to the control plane, in group system:masters, and writes a
// kubeconfig for it at path.
func WriteKubeconfig(env *envtest.Environment, user, path string) error {
	u, err := env.AddUser(envtest.User{Name: user, Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("creating user %s: %w", user, err)
	}
	kc, err := u.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
}

// Process is one run of the manager binary.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// Start runs binary with --kubeconfig=kubeconfig, metrics and probes off, and the extra
// arguments, appending its output to logPath. The process is in a process group of its own
// and receives SIGTERM when this process dies.
func Start(binary, kubeconfig, logPath string, extra ...string) (*Process, error) {
	return StartEnv(nil, binary, kubeconfig, logPath, extra...)
}

// StartEnv is Start with env (KEY=VALUE) added to the environment this process passes on.
func StartEnv(env []string, binary, kubeconfig, logPath string, extra ...string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o750); err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"--kubeconfig=" + kubeconfig, "--metrics-bind-address=0", "--health-probe-bind-address=0"}, extra...)
	p := &Process{cmd: exec.Command(binary, args...), done: make(chan struct{})}
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := p.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", binary, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		_ = logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited returns an error saying how the process ended, or nil while it runs.
func (p *Process) Exited() error {
	select {
	case <-p.done:
		if p.err == nil {
			return errors.New("the manager exited")
		}
		return fmt.Errorf("the manager exited: %w", p.err)
	default:
		return nil
	}
}

// Stop sends SIGTERM and waits for the process to exit, killing it after grace.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		p.Kill()
	}
}

// Kill sends SIGKILL — no shutdown, no deferred work, like a node that loses power — and waits
// until the process is gone.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}
