package stream

import (
	"strconv"
	"time"

	"github.com/r3labs/sse/v2"
)

// countEventName is the SSE event type of a count, fixed by the contract.
const countEventName = "user count"

// heartbeatComment is the text of the keep-alive comment (": heartbeat").
const heartbeatComment = "heartbeat"

// newEvent is the one place events are built. r3labs/sse ends a stream when
// it meets an event with neither Data nor Comment, so such an event is never
// built: a programming error here degrades to a harmless comment instead of
// disconnecting everyone.
func newEvent(id, name, data, comment, retry string) *sse.Event {
	if data == "" && comment == "" {
		comment = heartbeatComment
	}
	ev := &sse.Event{Comment: []byte(comment)}
	if data != "" {
		ev.ID = []byte(id)
		ev.Event = []byte(name)
		ev.Data = []byte(data)
		ev.Retry = []byte(retry)
	}
	return ev
}

// countEvent is the event telling a subscriber the global count at version.
// retry, when positive, adds the reconnection hint sent with a subscriber's
// first event.
func countEvent(version uint64, global int, retry time.Duration) *sse.Event {
	hint := ""
	if retry > 0 {
		hint = strconv.FormatInt(retry.Milliseconds(), 10)
	}
	return newEvent(strconv.FormatUint(version, 10), countEventName, strconv.Itoa(global), "", hint)
}

// heartbeatEvent is the keep-alive comment; r3labs writes it as ": heartbeat".
func heartbeatEvent() *sse.Event {
	return newEvent("", "", "", heartbeatComment, "")
}
