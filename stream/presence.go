package stream

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"
)

// presence knows who is online: per person, their streams on this
// instance and (through a Roster, or alone) everywhere, the people count,
// and the online set in arrival order. The broadcaster drives it with one
// call per cycle, cycle, which answers the transitions since the previous
// cycle's online set; join and leave only record local changes.
type presence struct {
	roster Roster // nil: this instance's people are everyone
	grace  time.Duration

	// Local state, touched by every Serve.
	mu      sync.Mutex
	local   map[string]*PersonStreams // people holding streams here
	changed map[string]struct{}       // ids whose local count changed since the roster was told
	sendAll bool                      // the roster must be told every local person

	// Global state, touched only by the broadcaster.
	version   uint64                   // of the roster's last answer
	online    map[string]*onlinePerson // everyone online, or leaving within grace
	leaving   map[string]struct{}      // ids in online that hold no stream
	nextSince int64                    // arrival numbers when there is no roster

	// view is online in arrival order, for readers of the presence list.
	viewMu sync.RWMutex
	view   []PersonStreams
}

// onlinePerson is someone in the online set.
type onlinePerson struct {
	PersonStreams
	// goneAt is when their global stream count fell to zero; zero while
	// they hold streams. Within grace of it they still count as online, so
	// a person who reloads a page or moves to another instance is not
	// announced as leaving.
	goneAt time.Time
}

// transition is a person coming online or going offline.
type transition struct {
	PersonStreams
	Connected bool
}

// presenceCycle is what one cycle found.
type presenceCycle struct {
	people      int           // the people count
	transitions []transition  // since the previous cycle, in arrival order
	recheck     time.Duration // run again this soon for someone leaving; 0 if nobody is
}

func newPresence(roster Roster, grace time.Duration) *presence {
	return &presence{
		roster:  roster,
		grace:   grace,
		local:   make(map[string]*PersonStreams),
		changed: make(map[string]struct{}),
		sendAll: true,
		online:  make(map[string]*onlinePerson),
		leaving: make(map[string]struct{}),
	}
}

// join records one more local stream of p; the latest profile wins.
func (p *presence) join(who Person) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ps := p.local[who.ID]
	if ps == nil {
		ps = &PersonStreams{}
		p.local[who.ID] = ps
	}
	ps.Person = who
	ps.Streams++
	p.changed[who.ID] = struct{}{}
}

// leave records that one local stream of the person id ended.
func (p *presence) leave(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ps := p.local[id]; ps != nil {
		if ps.Streams--; ps.Streams <= 0 {
			delete(p.local, id)
		}
	}
	p.changed[id] = struct{}{}
}

// changes are local counts the roster has not been told yet.
type changes struct {
	people []PersonStreams
	all    bool // people is every local person
}

// take returns the local counts the roster has not been told. The hub
// calls it under its own lock, with the local stream count, so the
// people it tells of are exactly those of the streams it counts.
func (p *presence) take() changes {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ch changes
	ch.all = p.sendAll
	if ch.all {
		for _, ps := range p.local {
			ch.people = append(ch.people, *ps)
		}
	} else {
		for id := range p.changed {
			if ps := p.local[id]; ps != nil {
				ch.people = append(ch.people, *ps)
			} else {
				ch.people = append(ch.people, PersonStreams{Person: Person{ID: id}})
			}
		}
	}
	clear(p.changed)
	p.sendAll = false
	return ch
}

// untake marks changes the roster did not record as still to be told.
func (p *presence) untake(ch changes) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ps := range ch.people {
		p.changed[ps.ID] = struct{}{}
	}
	p.sendAll = p.sendAll || ch.all
}

// cycle tells the roster the changes taken, applies the global changes it
// answers and returns the transitions from the previous online set. On an
// error nothing changed: the local changes are told next time.
func (p *presence) cycle(ctx context.Context, ch changes, now time.Time) (presenceCycle, error) {
	updates, full := ch.people, false
	if p.roster != nil {
		answer, err := p.roster.StorePeople(ctx, ch.people, ch.all, p.version)
		if err == nil && answer.Resend {
			p.untake(changes{people: ch.people, all: true})
			ch = p.take()
			answer, err = p.roster.StorePeople(ctx, ch.people, ch.all, p.version)
			if err == nil && answer.Resend {
				err = errRosterResend
			}
		}
		if err != nil {
			p.untake(ch)
			return presenceCycle{people: len(p.online)}, err
		}
		p.version = answer.Version
		updates, full = answer.People, answer.Full
	}
	return p.apply(updates, full, now), nil
}

// apply brings the online set up to date with updates (global counts) and
// returns what changed. With full, anyone not in updates is offline.
func (p *presence) apply(updates []PersonStreams, full bool, now time.Time) presenceCycle {
	var res presenceCycle
	dirty := false
	if full {
		in := make(map[string]bool, len(updates))
		for _, u := range updates {
			in[u.ID] = u.Streams > 0
		}
		for id, op := range p.online {
			if !in[id] && op.goneAt.IsZero() {
				updates = append(updates, PersonStreams{Person: op.Person})
			}
		}
	}
	for _, u := range updates {
		op := p.online[u.ID]
		switch {
		case u.Streams > 0 && op == nil:
			op = &onlinePerson{PersonStreams: u}
			if p.roster == nil || op.Since == 0 {
				p.nextSince++
				op.Since = p.nextSince
			}
			p.online[u.ID] = op
			res.transitions = append(res.transitions, transition{PersonStreams: op.PersonStreams, Connected: true})
		case u.Streams > 0:
			if u.Login != "" {
				op.Person = u.Person
			}
			op.Streams = u.Streams
			op.goneAt = time.Time{}
			delete(p.leaving, u.ID)
		case op != nil && op.goneAt.IsZero():
			op.Streams = 0
			op.goneAt = now
			p.leaving[u.ID] = struct{}{}
		default:
			continue // came and went unseen, or already leaving
		}
		dirty = true
	}
	for id := range p.leaving {
		op := p.online[id]
		if wait := p.grace - now.Sub(op.goneAt); wait > 0 {
			if res.recheck == 0 || wait < res.recheck {
				res.recheck = wait
			}
			continue
		}
		delete(p.leaving, id)
		delete(p.online, id)
		res.transitions = append(res.transitions, transition{PersonStreams: op.PersonStreams})
		dirty = true
	}
	slices.SortFunc(res.transitions, func(a, b transition) int { return bySince(a.PersonStreams, b.PersonStreams) })
	res.people = len(p.online)
	if dirty {
		view := make([]PersonStreams, 0, len(p.online))
		for _, op := range p.online {
			view = append(view, op.PersonStreams)
		}
		slices.SortFunc(view, bySince)
		p.viewMu.Lock()
		p.view = view
		p.viewMu.Unlock()
	}
	return res
}

// bySince orders people by arrival, then by id.
func bySince(a, b PersonStreams) int {
	if c := cmp.Compare(a.Since, b.Since); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
}

// list returns the first limit people online in arrival order (all with
// limit < 0) and how many there are.
func (p *presence) list(limit int) ([]PersonStreams, int) {
	p.viewMu.RLock()
	defer p.viewMu.RUnlock()
	n := len(p.view)
	if limit < 0 || limit > n {
		limit = n
	}
	return slices.Clone(p.view[:limit]), n
}
