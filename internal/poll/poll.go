// Package poll waits for a condition that nothing announces (a server's
// numbers, a log line), for tests: it checks every few milliseconds and
// gives up at a deadline, so a wait is bounded in time and in count and
// never a sleep that hopes.
package poll

import (
	"fmt"
	"time"
)

// Every is how often Until checks.
const Every = 5 * time.Millisecond

// Until checks cond now and every Every until it holds or timeout passes;
// the error says how long it waited.
func Until(timeout time.Duration, cond func() bool) error {
	if cond() {
		return nil
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(Every)
	defer tick.Stop()
	for range int(timeout/Every) + 1 {
		select {
		case <-deadline.C:
			if cond() {
				return nil
			}
			return fmt.Errorf("still not so after %v", timeout)
		case <-tick.C:
			if cond() {
				return nil
			}
		}
	}
	if cond() {
		return nil
	}
	return fmt.Errorf("still not so after %v", timeout)
}
