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

// eventFields is what one event says, field by field of the SSE wire; an
// empty field is left out. The id, name and retry go only with data.
type eventFields struct {
	id      string // "id:", the version of a count
	name    string // "event:", the event type
	data    string // "data:"
	comment string // ": ..."
	retry   string // "retry:", in milliseconds
}

// newEvent is the one place events are built. r3labs/sse ends a stream when
// it meets an event with neither Data nor Comment, so such an event is never
// built: a programming error here degrades to a harmless comment instead of
// disconnecting everyone.
func newEvent(f eventFields) *sse.Event {
	if f.data == "" && f.comment == "" {
		f.comment = heartbeatComment
	}
	ev := &sse.Event{Comment: []byte(f.comment)}
	if f.data != "" {
		ev.ID = []byte(f.id)
		ev.Event = []byte(f.name)
		ev.Data = []byte(f.data)
		ev.Retry = []byte(f.retry)
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
	return newEvent(eventFields{
		id:    strconv.FormatUint(version, 10),
		name:  countEventName,
		data:  strconv.Itoa(global),
		retry: hint,
	})
}

// heartbeatEvent is the keep-alive comment; r3labs writes it as ": heartbeat".
func heartbeatEvent() *sse.Event {
	return newEvent(eventFields{comment: heartbeatComment})
}
