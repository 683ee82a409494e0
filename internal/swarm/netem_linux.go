package swarm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// NetemLab is n network namespaces, each joined to the caller's by a veth
// pair whose two ends both delay packets by half a round trip (tc netem):
// a span server listening in namespace i is RTT away from a driver in the
// caller's namespace, as a server across a real network would be. It
// needs root (CAP_NET_ADMIN) and the ip and tc tools; `aitbc bench swarm
// --rtt` and its test create and remove one.
type NetemLab struct {
	prefix string
	subnet int
	names  []string
}

// NewNetemLab creates the namespaces; Close removes them (and with them
// the veth pairs).
func NewNetemLab(ctx context.Context, n int, rtt time.Duration) (*NetemLab, error) {
	if n < 1 || n > 16 {
		return nil, fmt.Errorf("swarm: a netem lab of %d namespaces (1 to 16)", n)
	}
	if rtt < 0 || rtt > 10*time.Second {
		return nil, fmt.Errorf("swarm: a round trip of %s (0 to 10 s)", rtt)
	}
	pid := os.Getpid()
	l := &NetemLab{prefix: fmt.Sprintf("aitbc%d", pid%100000), subnet: 20 + pid%200}
	half := fmt.Sprintf("%dus", rtt.Microseconds()/2)
	for i := range n {
		ns := fmt.Sprintf("%s-%d", l.prefix, i)
		host, peer := fmt.Sprintf("%sh%d", l.prefix, i), fmt.Sprintf("%sp%d", l.prefix, i) // at most 15 bytes
		steps := [][]string{
			{"ip", "netns", "add", ns},
			{"ip", "link", "add", host, "type", "veth", "peer", "name", peer},
			{"ip", "link", "set", peer, "netns", ns},
			{"ip", "addr", "add", l.hostIP(i) + "/30", "dev", host},
			{"ip", "link", "set", host, "up"},
			{"ip", "netns", "exec", ns, "ip", "addr", "add", l.IP(i) + "/30", "dev", peer},
			{"ip", "netns", "exec", ns, "ip", "link", "set", peer, "up"},
			{"ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"},
		}
		if rtt > 0 {
			steps = append(steps,
				[]string{"tc", "qdisc", "add", "dev", host, "root", "netem", "delay", half},
				[]string{"ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", peer, "root", "netem", "delay", half})
		}
		for j, s := range steps {
			if out, err := exec.CommandContext(ctx, s[0], s[1:]...).CombinedOutput(); err != nil {
				if j == 0 {
					_ = l.Close()
					return nil, fmt.Errorf("swarm: network namespaces need root and iproute2: %s: %v: %s", strings.Join(s, " "), err, out)
				}
				l.names = append(l.names, ns)
				_ = l.Close()
				return nil, fmt.Errorf("swarm: %s: %v: %s", strings.Join(s, " "), err, out)
			}
			if j == 0 {
				l.names = append(l.names, ns)
			}
		}
	}
	return l, nil
}

// IP is the address of namespace i's end.
func (l *NetemLab) IP(i int) string { return fmt.Sprintf("10.%d.%d.2", l.subnet, i) }

func (l *NetemLab) hostIP(i int) string { return fmt.Sprintf("10.%d.%d.1", l.subnet, i) }

// Listen opens a TCP listener inside namespace i, on its address. The
// socket stays in the namespace whatever thread later serves it; the
// thread that entered the namespace goes back before it is released (or,
// if it cannot, is never reused).
func (l *NetemLab) Listen(i int) (net.Listener, error) {
	if i < 0 || i >= len(l.names) {
		return nil, fmt.Errorf("swarm: no namespace %d", i)
	}
	type result struct {
		ln  net.Listener
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + l.names[i])
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		ln, lerr := net.Listen("tcp", l.IP(i)+":0")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Left locked: the runtime ends the thread with the goroutine.
			done <- result{ln, errors.Join(lerr, fmt.Errorf("setns back: %w", err))}
			return
		}
		runtime.UnlockOSThread()
		done <- result{ln, lerr}
	}()
	r := <-done
	return r.ln, r.err
}

// Close removes the namespaces.
func (l *NetemLab) Close() error {
	var errs []error
	for _, ns := range l.names {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("ip netns del %s: %v: %s", ns, err, out))
		}
	}
	l.names = nil
	return errors.Join(errs...)
}
