package stream

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/r3labs/sse/v2"
)

// The SSE event types, fixed by the contract.
const (
	countEventName  = "user count"
	peopleEventName = "people count"
	userEventName   = "user"
	// stateEventName says whether the counts are exact: "partial" while
	// the shared count is unavailable and they are this instance's best
	// knowledge, "exact" once it is back. Sent when that changes, and
	// after a new stream's first counts while they are partial.
	stateEventName = "count state"
)

// heartbeatComment is the text of the keep-alive comment (": heartbeat").
const heartbeatComment = "heartbeat"

// eventFields is what one event says, field by field of the SSE wire; an
// empty field is left out. The id, name and retry go only with data.
type eventFields struct {
	id      uint64 // "id:", greater than the last on the stream
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
		ev.ID = strconv.AppendUint(nil, f.id, 10)
		ev.Event = []byte(f.name)
		ev.Data = []byte(f.data)
		ev.Retry = []byte(f.retry)
	}
	return ev
}

// countFields is the event telling a subscriber the global count at
// version. retry, when positive, adds the reconnection hint sent with a
// subscriber's first event.
func countFields(version uint64, global int, retry time.Duration) eventFields {
	hint := ""
	if retry > 0 {
		hint = strconv.FormatInt(retry.Milliseconds(), 10)
	}
	return eventFields{
		id:    version,
		name:  countEventName,
		data:  strconv.Itoa(global),
		retry: hint,
	}
}

// heartbeatEvent is the keep-alive comment; r3labs writes it as ": heartbeat".
func heartbeatEvent() *sse.Event {
	return newEvent(eventFields{comment: heartbeatComment})
}

// stateFields tells a subscriber whether the counts are partial.
func stateFields(id uint64, partial bool) eventFields {
	data := "exact"
	if partial {
		data = "partial"
	}
	return eventFields{id: id, name: stateEventName, data: data}
}

// peopleFields tells a subscriber the number of people online.
func peopleFields(id uint64, people int) eventFields {
	return eventFields{id: id, name: peopleEventName, data: strconv.Itoa(people)}
}

// userPayload is the data of a user event, as the contract spells it.
type userPayload struct {
	Login       string `json:"login"`
	Name        string `json:"name"`
	AvatarURL   string `json:"avatar_url"`
	Connected   bool   `json:"connected"`
	UserCount   int    `json:"user_count"`
	PeopleCount int    `json:"people_count"`
}

// userFields announces that someone came online or went offline, with the
// counts of the same cycle. JSON escapes every newline, so the data stays
// one line.
func userFields(id uint64, t transition, users, people int) eventFields {
	data, _ := json.Marshal(userPayload{
		Login:       t.Login,
		Name:        t.Name,
		AvatarURL:   t.AvatarURL,
		Connected:   t.Connected,
		UserCount:   users,
		PeopleCount: people,
	})
	return eventFields{id: id, name: userEventName, data: string(data)}
}

// cycleEvent is one r3labs event that puts every event of parts on the
// wire, in order, each with its own id: a subscriber's channel holds
// r3labs events (see broadcast.go), so a cycle takes one slot however
// many people it announces. r3labs writes an event as "id:", "data:", "event:",
// "retry:" lines and a blank line; the data of the first part goes on to
// the first part's own name and retry, a blank line, and every further
// part but the last whole, ending with the last part's id and data, whose
// name and retry r3labs then writes. Every value is one line (numbers,
// JSON), so nothing in them can start a field. The first id is the
// r3labs event's, which is what a subscriber's filter reads.
func cycleEvent(parts []eventFields) *sse.Event {
	if len(parts) == 1 {
		return newEvent(parts[0])
	}
	data := []byte(parts[0].data) // after r3labs' "id:" and "data: "
	for i, f := range parts[1:] {
		data = appendNameRetry(data, parts[i])
		data = appendIDData(append(data, "\n\n"...), f)
	}
	last := parts[len(parts)-1]
	return newEvent(eventFields{id: parts[0].id, name: last.name, data: string(data), retry: last.retry})
}

// withNewcomers adds the newcomers' first events, parts, to ev, a cycle's
// event for everyone already streaming, so the cycle takes one r3labs
// event and every subscriber is woken for it once (as two, every
// subscriber's goroutine was woken for the newcomers' event only to drop
// it: at 10,000 streams, a few per cent of a join's fan-out; during a
// ramp, a wake of everyone registered per cycle). They travel as its
// comment, which r3labs writes last, as ": " and the comment, before the
// blank line that ends the event: the comment is the parts' own wire
// text, every field of every part, which a newcomer writes without the
// ": " and everyone else drops (subscriber.Write). Every value is one
// line (numbers, JSON), so nothing in them can start a field.
func withNewcomers(ev *sse.Event, parts []eventFields) *sse.Event {
	var b []byte
	for i, f := range parts {
		if i > 0 {
			b = append(b, "\n\n"...)
		}
		b = appendNameRetry(appendIDData(b, f), f)
	}
	ev.Comment = b
	return ev
}

// appendIDData and appendNameRetry append a part's fields as SSE lines,
// in r3labs' order: "id:" and "data:", then "event:" and any "retry:",
// each but the last ended.
func appendIDData(b []byte, f eventFields) []byte {
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, f.id, 10)
	b = append(b, "\ndata: "...)
	return append(b, f.data...)
}

func appendNameRetry(b []byte, f eventFields) []byte {
	b = append(b, "\nevent: "...)
	b = append(b, f.name...)
	if f.retry != "" {
		b = append(b, "\nretry: "...)
		b = append(b, f.retry...)
	}
	return b
}
