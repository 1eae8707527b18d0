package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/headcount/headcount/stream"
)

// purgeAfter is how long someone whose last stream ended anywhere keeps
// their place in the arrival order (and their profile) in Redis: far
// longer than any instance takes to read that they left.
const purgeAfter = 30 * time.Second

// peopleKeys are the KEYS of peopleScript, this instance's hash last.
func peopleKeys(prefix, instance string) []string {
	p := prefix + ":people"
	return []string{p, p + ":profiles", p + ":since", p + ":log", p + ":gone", p + ":meta", p + ":instances", prefix + ":deadlines", p + ":at:" + instance}
}

// StorePeople makes Counter a stream.Roster: it records this instance's
// per-person stream counts in Redis, takes the people of dead instances
// out, and answers every person whose global count changed since the
// version since (or everyone, when the instance knows too old a version).
//
// During an outage it fails at once, like Store, so the hub's cycle (and a
// new stream's first events) never waits for a Redis that does not answer.
func (c *Counter) StorePeople(ctx context.Context, changed []stream.PersonStreams, all bool, since uint64) (stream.PeopleChanges, error) {
	if outage := c.outageErr(); outage != nil {
		return stream.PeopleChanges{}, outage
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	select {
	case c.psem <- struct{}{}:
	case <-ctx.Done():
		// Queued behind a burst of joins: no sign of Redis failing, so
		// the hub just tries again.
		return stream.PeopleChanges{}, fmt.Errorf("redis: waiting for the previous people script: %w", ctx.Err())
	}
	defer func() { <-c.psem }()
	if c.closed.Load() {
		return stream.PeopleChanges{}, ErrClosed
	}
	changed = c.limits.truth(changed, all)
	args := c.peopleArgs("store", all, since, 3*len(changed))
	for _, ps := range changed {
		prof, err := profileJSON(ps.Person)
		if err != nil {
			return stream.PeopleChanges{}, err
		}
		args = append(args, ps.ID, ps.Streams, prof)
	}
	reply, err := c.people.Run(ctx, c.client, c.peopleKeys, args...).Slice()
	if err != nil {
		err = fmt.Errorf("redis: storing who is online: %w", err)
		c.fail(err)
		return stream.PeopleChanges{}, err
	}
	return parsePeople(reply)
}

// peopleArgs starts the ARGV of peopleScript, with room for extra more.
func (c *Counter) peopleArgs(mode string, all bool, since uint64, extra int) []any {
	flag := "0"
	if all {
		flag = "1"
	}
	sharded := "0"
	if c.sharded {
		sharded = "1"
	}
	args := make([]any, 0, 9+extra)
	return append(args, mode, c.opts.InstanceID, flag, strconv.FormatUint(since, 10),
		c.prefix+":people:at:", c.ttlMS, purgeAfter.Milliseconds(), c.channel, sharded)
}

// refreshPeople renews this instance's share of the people and takes dead
// instances' people out (mode "refresh"), or takes this instance's people
// out (mode "leave"); it reports whether that changed anyone's count. The
// caller holds psem or has stopped every other script (Close).
func (c *Counter) refreshPeople(ctx context.Context, mode string) (bool, error) {
	reply, err := c.people.Run(ctx, c.client, c.peopleKeys, c.peopleArgs(mode, false, 0, 0)...).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("redis: refreshing who is online: %w", err)
	}
	return len(reply) == 2 && reply[1] == 1, nil
}

// parsePeople reads a store reply of peopleScript.
func parsePeople(reply []any) (stream.PeopleChanges, error) {
	bad := func(what string) (stream.PeopleChanges, error) {
		return stream.PeopleChanges{}, fmt.Errorf("redis: the people script answered a bad %s", what)
	}
	if len(reply) < 3 || (len(reply)-3)%4 != 0 {
		return bad("reply length")
	}
	version, ok1 := reply[0].(int64)
	full, ok2 := reply[1].(int64)
	resend, ok3 := reply[2].(int64)
	if !ok1 || !ok2 || !ok3 || version < 0 {
		return bad("header")
	}
	out := stream.PeopleChanges{Version: uint64(version), Full: full == 1, Resend: resend == 1}
	for i := 3; i < len(reply); i += 4 {
		id, ok1 := reply[i].(string)
		n, ok2 := reply[i+1].(int64)
		order, ok3 := reply[i+2].(int64)
		prof, ok4 := reply[i+3].(string)
		if !ok1 || !ok2 || !ok3 || !ok4 {
			return bad("person")
		}
		ps := stream.PersonStreams{Person: stream.Person{ID: id}, Streams: int(n), Since: order}
		if prof != "" {
			var p [3]string
			if err := json.Unmarshal([]byte(prof), &p); err != nil {
				return bad("profile")
			}
			ps.Login, ps.Name, ps.AvatarURL = p[0], p[1], p[2]
		}
		out.People = append(out.People, ps)
	}
	return out, nil
}
