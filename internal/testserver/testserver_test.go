package testserver

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/headcount/headcount/config"
	"github.com/headcount/headcount/internal/fdlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestStreamLimitIsTheBinarys checks that a test server, like the binary,
// runs with the instance stream limit derived from the open-file limit,
// not without a limit.
func TestStreamLimitIsTheBinarys(t *testing.T) {
	nofile, err := fdlimit.Current()
	if err != nil {
		t.Fatal(err)
	}
	srv := Start(t, nil, Options{})
	if got, want := srv.Config().MaxStreams, config.StreamLimitFor(nofile); got != want || got <= 0 {
		t.Errorf("MaxStreams = %d, want %d (derived from the open-file limit %d)", got, want, nofile)
	}
}
