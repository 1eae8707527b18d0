//go:build linux

package stream

import (
	"errors"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// hangups notices the clients of the hub's hijacked connections leaving
// (a close, a reset, the kernel giving up on a vanished peer): one epoll
// instance and one goroutine for all of them together, where readConn
// parks a goroutine (and its stack) per connection in a read that never
// returns data. A connection is watched for EPOLLRDHUP, EPOLLHUP and EPOLLERR, and
// EPOLLIN for bytes the client sends, which are read and dropped as
// readConn drops them; EPOLLONESHOT stops the watch after each event
// until the connection is watched again, so one event wakes the loop once.
//
// Every epoll_ctl on a connection's descriptor runs inside its RawConn's
// Control, which refuses a closed connection: a descriptor number reused
// by a newer connection is never touched. The event carries a key of the
// hangups' own, never reused, so an event for a connection forgotten
// meanwhile finds nothing.
type hangups struct {
	epfd int
	wake int // an eventfd: a write ends the loop
	done chan struct{}

	mu      sync.Mutex
	next    uint64
	subs    map[uint64]*subscriber
	stopped bool
}

// hangupWatch is what a watched connection waits for.
const hangupWatch = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// wakeKey is the key of the eventfd's event.
const wakeKey = 0

// newHangups starts the watch loop, or returns nil (every connection then
// has a readConn of its own) where epoll cannot be had.
func newHangups() *hangups {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, wake, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		unix.Close(wake)
		unix.Close(epfd)
		return nil
	}
	w := &hangups{epfd: epfd, wake: wake, done: make(chan struct{}), next: wakeKey, subs: make(map[uint64]*subscriber)}
	go w.run()
	return w
}

// watch starts watching sub's connection and reports whether it does: not
// after stop, nor for a connection that is not a plain TCP socket (TLS
// reads its own records, alerts and key updates among them, so those are
// left to readConn's reads through tls.Conn).
func (w *hangups) watch(sub *subscriber) bool {
	if w == nil {
		return false
	}
	raw := rawOf(sub.plain)
	if raw == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.next++
	key := w.next
	if !control(raw, w.epfd, unix.EPOLL_CTL_ADD, key) {
		return false
	}
	w.subs[key] = sub
	sub.hangupKey = key
	return true
}

// forget stops watching sub's connection, before it is closed: its key
// finds nothing from now on. The descriptor leaves the epoll set when the
// connection is closed, without an EPOLL_CTL_DEL: the kernel takes a file
// out of every epoll set once its last descriptor is closed, and nothing
// duplicates a hijacked connection's (the descriptors Go opens are
// close-on-exec). One system call less for every stream that ends.
func (w *hangups) forget(sub *subscriber) {
	if w == nil || sub.hangupKey == 0 {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs, sub.hangupKey)
}

// stop ends the loop and waits for it. Connections still watched are no
// longer: the hub has ended them all by then.
func (w *hangups) stop() {
	if w == nil {
		return
	}
	_, _ = unix.Write(w.wake, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	<-w.done
	// Under mu: watch uses the epoll descriptor under it, and finds it
	// stopped from now on.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	unix.Close(w.wake)
	unix.Close(w.epfd)
}

// run waits for events until stop: a connection that hung up, failed or
// hit EOF ends its stream; one whose client sent bytes has them dropped
// and is watched again.
func (w *hangups) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(w.epfd, events, -1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// epoll itself failed (it does not, short of a bug): end every
			// watched stream rather than keep streams nobody watches, and
			// leave new ones to a readConn each.
			w.mu.Lock()
			w.stopped = true
			for _, sub := range w.subs {
				sub.cancel()
			}
			w.mu.Unlock()
			return
		}
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if key == wakeKey {
				return
			}
			w.mu.Lock()
			sub := w.subs[key]
			w.mu.Unlock()
			if sub == nil {
				continue
			}
			switch raw := rawOf(sub.plain); {
			case ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 || !drain(raw):
				sub.clientLeft()
			case !control(raw, w.epfd, unix.EPOLL_CTL_MOD, key):
				// Closed meanwhile: its stream is ending already.
			}
		}
	}
}

// control runs epoll_ctl op for the descriptor under raw, with key as the
// event's data, and reports whether it did.
func control(raw syscall.RawConn, epfd, op int, key uint64) bool {
	var err error
	ctlErr := raw.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: hangupWatch, Fd: int32(uint32(key)), Pad: int32(uint32(key >> 32))}
		err = unix.EpollCtl(epfd, op, int(fd), &ev)
	})
	return ctlErr == nil && err == nil
}

// drainReads bounds the reads of one event; bytes still waiting after
// them are the next event's.
const drainReads = 8

// drain reads and drops what the client sent, without waiting for more
// (the socket is non-blocking), and reports false at end of file or on an
// error: the client has gone.
func drain(raw syscall.RawConn) bool {
	var buf [512]byte
	alive := true
	ctlErr := raw.Control(func(fd uintptr) {
		for range drainReads {
			n, err := unix.Read(int(fd), buf[:])
			switch {
			case errors.Is(err, unix.EAGAIN):
				return
			case err != nil || n == 0:
				alive = false
				return
			}
		}
	})
	return ctlErr == nil && alive
}
