package poll

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestUntilHolds(t *testing.T) {
	var n atomic.Int32
	if err := Until(10*time.Second, func() bool { return n.Add(1) >= 3 }); err != nil {
		t.Fatal(err)
	}
	if got := n.Load(); got != 3 {
		t.Errorf("cond called %d times, want 3 (it held on the third)", got)
	}
}

func TestUntilGivesUp(t *testing.T) {
	start := time.Now()
	var n atomic.Int32
	err := Until(50*time.Millisecond, func() bool { n.Add(1); return false })
	if err == nil {
		t.Fatal("Until returned nil for a condition that never holds")
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("gave up after %v, before the timeout", waited)
	}
	if got := n.Load(); got < 2 || got > int32(50*time.Millisecond/Every)+3 {
		t.Errorf("cond called %d times in 50ms, want a bounded poll", got)
	}
}
