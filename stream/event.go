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
	id      string // "id:", greater than the last on the stream
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

// stateEvent tells a subscriber whether the counts are partial.
func stateEvent(id uint64, partial bool) *sse.Event {
	data := "exact"
	if partial {
		data = "partial"
	}
	return newEvent(eventFields{id: strconv.FormatUint(id, 10), name: stateEventName, data: data})
}

// peopleEvent tells a subscriber the number of people online.
func peopleEvent(id uint64, people int) *sse.Event {
	return newEvent(eventFields{id: strconv.FormatUint(id, 10), name: peopleEventName, data: strconv.Itoa(people)})
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

// userEvent announces that someone came online or went offline, with the
// counts of the same cycle. JSON escapes every newline, so the data stays
// one line.
func userEvent(id uint64, t transition, users, people int) *sse.Event {
	data, _ := json.Marshal(userPayload{
		Login:       t.Login,
		Name:        t.Name,
		AvatarURL:   t.AvatarURL,
		Connected:   t.Connected,
		UserCount:   users,
		PeopleCount: people,
	})
	return newEvent(eventFields{id: strconv.FormatUint(id, 10), name: userEventName, data: string(data)})
}
