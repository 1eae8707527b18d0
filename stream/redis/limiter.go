package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/headcount/headcount/stream"
)

// limits is this instance's side of the per-user limit across instances:
// how many streams each person holds here, as Acquire and Release left
// it. Once the hub uses the Counter as a stream.Limiter, these numbers
// are what StorePeople writes for a person, not the hub's snapshot: the
// snapshot of a cycle that began before a join would otherwise overwrite
// the reservation Acquire just made, and another instance could admit one
// stream too many.
type limits struct {
	mu     sync.Mutex
	active bool // Acquire has been called: these numbers are the truth
	held   map[string]*heldStreams
}

// heldStreams is one person's streams on this instance.
type heldStreams struct {
	person stream.Person
	n      int
}

// add changes p's streams here by delta and returns the new number.
func (l *limits) add(p stream.Person, delta int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.active = true
	if l.held == nil {
		l.held = make(map[string]*heldStreams)
	}
	h := l.held[p.ID]
	if h == nil {
		h = &heldStreams{}
		l.held[p.ID] = h
	}
	h.person = p
	h.n = max(0, h.n+delta)
	n := h.n
	if n == 0 {
		delete(l.held, p.ID)
	}
	return n
}

// of returns p's streams here, or -1 while the limits are not in use.
func (l *limits) of(id string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.active {
		return -1
	}
	if h := l.held[id]; h != nil {
		return h.n
	}
	return 0
}

// everyone returns every person with streams here (for a full resend).
func (l *limits) everyone() []stream.PersonStreams {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]stream.PersonStreams, 0, len(l.held))
	for _, h := range l.held {
		out = append(out, stream.PersonStreams{Person: h.person, Streams: h.n})
	}
	return out
}

// truth rewrites changed with this instance's own numbers once the limits
// are in use (and, for a full resend, adds anyone the hub's snapshot
// missed). The caller holds psem, so no Acquire runs meanwhile.
func (l *limits) truth(changed []stream.PersonStreams, all bool) []stream.PersonStreams {
	if l.of("") < 0 {
		return changed
	}
	out := make([]stream.PersonStreams, 0, len(changed))
	seen := make(map[string]bool, len(changed))
	for _, ps := range changed {
		ps.Streams = l.of(ps.ID)
		seen[ps.ID] = true
		out = append(out, ps)
	}
	if all {
		for _, ps := range l.everyone() {
			if !seen[ps.ID] {
				out = append(out, ps)
			}
		}
	}
	return out
}

// Acquire makes Counter a stream.Limiter: in one script it checks that p
// holds fewer than max streams on every live instance together (the dead
// ones' streams are taken out first) and records the new one here. It
// returns stream.ErrUserLimit when p is at the limit, and another error
// when Redis cannot tell (during an outage it answers at once); the hub
// then holds to its local limit, and the stream is counted here all the
// same.
func (c *Counter) Acquire(ctx context.Context, p stream.Person, limit int) error {
	if outage := c.outageErr(); outage != nil {
		c.limits.add(p, 1)
		return outage
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	select {
	case c.psem <- struct{}{}:
	case <-ctx.Done():
		// Queued behind a burst of joins: this one is let in on the
		// hub's local limit; Redis is not failing for all that.
		c.limits.add(p, 1)
		return fmt.Errorf("redis: waiting for the previous people script: %w", ctx.Err())
	}
	defer func() { <-c.psem }()
	if c.closed.Load() {
		c.limits.add(p, 1)
		return ErrClosed
	}
	admitted, err := c.acquire(ctx, p, limit, false)
	if err == nil && admitted == 2 {
		// This instance's share is not in Redis (new, or taken for
		// dead): send it whole, then check.
		admitted, err = c.acquire(ctx, p, limit, true)
	}
	if err == nil && admitted != 0 && admitted != 1 {
		err = fmt.Errorf("redis: the people script answered %d to acquire", admitted)
	}
	if err != nil {
		err = fmt.Errorf("redis: checking the per-user limit: %w", err)
		c.fail(err)
		c.limits.add(p, 1)
		return err
	}
	if admitted == 0 {
		return stream.ErrUserLimit
	}
	c.limits.add(p, 1)
	return nil
}

// acquire runs the people script's acquire for one new stream of p; with
// all, this instance's whole share goes along. The caller holds psem.
func (c *Counter) acquire(ctx context.Context, p stream.Person, limit int, all bool) (int64, error) {
	prof, err := profileJSON(p)
	if err != nil {
		return 0, err
	}
	var share []stream.PersonStreams
	if all {
		share = c.limits.everyone()
	}
	args := append(c.peopleArgs("acquire", all, 0, 4+3*len(share)), limit, p.ID, c.limits.add(p, 0)+1, prof)
	for _, ps := range share {
		pj, err := profileJSON(ps.Person)
		if err != nil {
			return 0, err
		}
		args = append(args, ps.ID, ps.Streams, pj)
	}
	reply, err := c.people.Run(ctx, c.client, c.peopleKeys, args...).Int64Slice()
	if err != nil {
		return 0, err
	}
	if len(reply) != 2 {
		return 0, fmt.Errorf("redis: the people script answered %v to acquire", reply)
	}
	return reply[1], nil
}

// Release gives back a stream Acquire let in. It only lowers this
// instance's number: the leave makes the hub run a cycle within its
// coalescing gap, and that cycle's StorePeople writes the number, so a
// burst of leaves costs one script, not one each. Until then the other
// instances count the stream a moment longer, which can only refuse, never
// admit, one too many.
func (c *Counter) Release(p stream.Person) {
	c.limits.add(p, -1)
}

// profileJSON is how a profile is kept in Redis: [login, name, avatar URL].
func profileJSON(p stream.Person) (string, error) {
	b, err := json.Marshal([3]string{p.Login, p.Name, p.AvatarURL})
	return string(b), err
}
