//go:build !linux

package stream

import "syscall"

// congested cannot ask the kernel here: a long write is taken as stuck.
func congested(syscall.RawConn) bool { return true }
