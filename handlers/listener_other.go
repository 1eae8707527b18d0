//go:build !linux

package handlers

import (
	"net"
	"time"
)

// detectDeadPeers returns ln as it is: TCP_USER_TIMEOUT is Linux's. Dead
// peers are then found when the kernel gives up retransmitting.
func detectDeadPeers(ln net.Listener, _ time.Duration) net.Listener { return ln }
