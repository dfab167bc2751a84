//go:build !unix

package main

import (
	"os/exec"
	"syscall"
)

func ownGroup(cmd *exec.Cmd) {}

// signalGroup kills cmd's process: there are no Unix process groups here.
func signalGroup(cmd *exec.Cmd, sig syscall.Signal) error { return cmd.Process.Kill() }
