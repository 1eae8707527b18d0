package handlers

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/headcount/headcount/internal/logbuf"
)

// TestTakenOverStreamLineIsTheStreamsToWrite: once the hub has taken a
// stream's connection over, the request line is written when the stream
// ends, even while the handler has not returned: the shutdown waits for
// the streams to end, not for handlers whose connection was hijacked, and
// a line left to the handler's return could come after the process has
// stopped (TestRunRequestLog missed one so under load). It is written once,
// with the status the hub wrote and how long the stream was held.
func TestTakenOverStreamLineIsTheStreamsToWrite(t *testing.T) {
	var buf logbuf.Buffer
	e := echo.New()
	e.Use(logRequests(slog.New(slog.NewTextHandler(&buf, nil)), nil))
	var atEnd string
	e.GET("/events", func(c echo.Context) error {
		line, _ := c.Get(streamLineKey).(*streamLine)
		line.takeOver() // as the hub calls Lifetime.TakenOver
		line.ended(time.Now())
		atEnd = buf.String() // before the handler returns
		return nil
	})
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/events", nil))

	if !strings.Contains(atEnd, "route=/events") {
		t.Fatalf("no request line when the stream ended, before its handler returned; the log then: %q", atEnd)
	}
	got := buf.String()
	if n := strings.Count(got, "msg=request"); n != 1 {
		t.Fatalf("%d request lines, want 1: %q", n, got)
	}
	for _, want := range []string{"status=200", "stream_duration="} {
		if !strings.Contains(got, want) {
			t.Errorf("the stream's line lacks %s: %q", want, got)
		}
	}
}
