package ssetest

import (
	"strings"
	"testing"
)

func TestParser(t *testing.T) {
	stream := "id: 1\ndata: 3\nevent: user count\nretry: 2000\n\n" +
		": heartbeat\n" +
		"data: a\ndata: b\n\n" +
		"\n" + // a blank line with no fields dispatches nothing
		"id: 9\n\n" // fields but no data: dispatched, so a test sees it
	var p Parser
	var got []Event
	var comments []string
	for _, line := range strings.Split(strings.TrimSuffix(stream, "\n"), "\n") {
		if c, ok := Comment(line); ok {
			comments = append(comments, c)
			continue
		}
		if ev, ok := p.Line(line); ok {
			got = append(got, ev)
		}
	}
	want := []Event{
		{ID: "1", Event: "user count", Data: "3", Retry: "2000"},
		{Data: "a\nb"},
		{ID: "9"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if len(comments) != 1 || comments[0] != "heartbeat" {
		t.Errorf("comments %q, want [heartbeat]", comments)
	}
}
