package connlimit

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

func TestHoldMovesAConnectionOutOfTheCap(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Listen(inner, 2)
	defer ln.Close()
	accept := func() net.Conn {
		t.Helper()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { client.Close() })
		c, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := accept(), accept()
	if ln.Other() != 2 {
		t.Fatalf("Other = %d, want 2", ln.Other())
	}
	// Two streams on one connection (HTTP/2) take it out once, and it
	// comes back when the last ends.
	ctx := ConnContext(context.Background(), a)
	end1, end2 := Hold(ctx), Hold(ctx)
	if ln.Other() != 1 {
		t.Fatalf("with streams on a: Other = %d, want 1", ln.Other())
	}
	end1()
	end1() // a second call changes nothing
	if ln.Other() != 1 {
		t.Fatalf("one of two streams ended: Other = %d, want 1", ln.Other())
	}
	end2()
	if ln.Other() != 2 {
		t.Fatalf("both streams ended: Other = %d, want 2", ln.Other())
	}
	// At the cap, the next connection is closed on arrival.
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	client.SetReadDeadline(time.Now().Add(5 * time.Second))
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	// Closed: the read ends with EOF or a reset, not by the deadline.
	if _, err := client.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection past the cap was kept (read: %v)", err)
	}
	if ln.Refused() != 1 {
		t.Errorf("Refused = %d, want 1", ln.Refused())
	}
	// Closing one makes room; a stream's end after its connection closed
	// does not count the closed connection again.
	end := Hold(ConnContext(context.Background(), b))
	b.Close()
	end()
	if ln.Other() != 1 {
		t.Fatalf("after closing b: Other = %d, want 1", ln.Other())
	}
	a.Close()
	ln.Close()
	if c := <-accepted; c != nil {
		c.Close()
	}
	if ln.Other() != 0 {
		t.Fatalf("every connection closed: Other = %d", ln.Other())
	}
	// A request on a connection the cap does not know holds nothing.
	Hold(context.Background())()
}
