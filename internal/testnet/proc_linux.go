package testnet

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the child when the parent dies, so that a test run
// that is killed does not leave nodes behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
