//go:build !linux

package stream

// hangups has no epoll here: every hijacked connection has a readConn of
// its own.
type hangups struct{}

func newHangups() *hangups              { return nil }
func (*hangups) watch(*subscriber) bool { return false }
func (*hangups) forget(*subscriber)     {}
func (*hangups) stop()                  {}
