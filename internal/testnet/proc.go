package testnet

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aitbc/aitbc/internal/rpc"
)

// Proc is a node running in its own OS process, `aitbc node start
// --home HOME`, with its output appended to HOME/node.log.
type Proc struct {
	Home    string
	LogPath string
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{}
	err     error
}

// StartProc starts bin (the aitbc binary) as a node in home. extra
// arguments go after `node start --home HOME`. AITBC_* variables of this
// process are not passed on, so that the node runs from its own config.
// On Linux the child is killed if this process dies.
func StartProc(bin, home string, extra ...string) (*Proc, error) {
	logPath := filepath.Join(home, "node.log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testnet: %w", err)
	}
	fmt.Fprintf(f, "--- start %s ---\n", time.Now().Format(time.RFC3339Nano))
	args := append([]string{"node", "start", "--home", home}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AITBC_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("testnet: start %s: %w", bin, err)
	}
	p := &Proc{Home: home, LogPath: logPath, cmd: cmd, log: f, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has ended.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is the process's exit error once it has ended.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Kill sends SIGKILL (no clean shutdown: the node's next start must
// recover) and waits for the process to end.
func (p *Proc) Kill() {
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop asks the node to stop (SIGTERM), and kills it if it has not ended
// within grace.
func (p *Proc) Stop(grace time.Duration) error {
	if p.Exited() {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(grace):
		p.Kill()
		return fmt.Errorf("testnet: node in %s did not stop within %s; killed", p.Home, grace)
	}
}

// WaitREST waits until the node's REST API at url answers, or ctx ends or
// the process exits.
func (p *Proc) WaitREST(ctx context.Context, url string) error {
	c := rpc.NewClient(url)
	c.HTTP.Timeout = 2 * time.Second
	for {
		if _, err := c.Health(ctx); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testnet: node in %s: REST API %s not up: %w", p.Home, url, ctx.Err())
		case <-p.done:
			return fmt.Errorf("testnet: node in %s exited (%v) before its REST API came up; see %s", p.Home, p.err, p.LogPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// LogTail returns the last n bytes of the node's log.
func (p *Proc) LogTail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := st.Size() - n
	if off < 0 {
		off = 0
	}
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, os.ErrClosed) {
		return string(b)
	}
	return string(b)
}
