//go:build !linux

// Package deadpeer makes a listener whose connections find a vanished
// peer; only Linux has the means (TCP_USER_TIMEOUT).
package deadpeer

import (
	"net"
	"time"
)

// Listen returns ln as it is: TCP_USER_TIMEOUT is Linux's. Dead peers are
// then found when the kernel gives up retransmitting.
func Listen(ln net.Listener, _ time.Duration) net.Listener { return ln }
