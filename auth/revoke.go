package auth

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrRevoked is the cause of a context Watch cancels: the session was
// signed out.
var ErrRevoked = errors.New("the session was signed out")

// Revocation ends one session, or every session of one GitHub account
// that began up to a moment ("sign out everywhere").
type Revocation struct {
	// Session is the revoked session's id; empty for a user-wide one.
	Session string `json:"s,omitempty"`
	// User, for a user-wide revocation, is the GitHub id whose sessions
	// end.
	User string `json:"u,omitempty"`
	// Before, for a user-wide revocation, is in Unix milliseconds: every
	// session of User that began at or before it ends.
	Before int64 `json:"b,omitempty"`
	// Expires is in Unix milliseconds: when every session it ends would
	// have expired anyway, so it can be forgotten.
	Expires int64 `json:"e"`
}

// RevokeSession is the revocation of sess alone.
func RevokeSession(sess Session) Revocation {
	return Revocation{Session: sess.ID, Expires: sess.Expires().UnixMilli()}
}

// RevokeUser is the revocation of every session of user that began at or
// before at.
func RevokeUser(user string, at time.Time) Revocation {
	return Revocation{User: user, Before: at.UnixMilli(), Expires: at.Add(SessionLifetime).UnixMilli()}
}

// Valid reports whether r says what it ends: exactly one of a session or
// a user, and when it may be forgotten.
func (r Revocation) Valid() bool {
	switch {
	case r.Expires <= 0:
		return false
	case r.Session != "":
		return r.User == "" && r.Before == 0 && len(r.Session) == sessionIDLen
	default:
		return r.User != "" && r.Before > 0
	}
}

// Revoker is where a sign-out goes: Revocations on one instance, a shared
// store (auth/redis) in front of it on several.
type Revoker interface {
	// Revoke ends what r names at once on this instance and, where
	// instances share a store, on every other as soon as it can reach it.
	Revoke(ctx context.Context, r Revocation) error
}

// Revocations is this instance's list of revoked sessions, each kept until
// the sessions it names would have expired, and the streams that hold
// them, ended the moment their session is revoked. It is a Revoker for a
// single instance. Safe for concurrent use.
type Revocations struct {
	now func() time.Time

	mu        sync.Mutex
	sessions  map[string]int64      // session id → expiry
	users     map[string]Revocation // user id → the latest user-wide revocation
	watchers  map[string]map[*watch]struct{}
	lastSweep time.Time
}

// watch is one holder of a session (an open stream) waiting to be told.
type watch struct {
	sess   Session
	cancel context.CancelCauseFunc
}

// sweepEvery is how often Learn forgets expired revocations.
const sweepEvery = time.Minute

// NewRevocations returns an empty list.
func NewRevocations() *Revocations { return newRevocations(time.Now) }

func newRevocations(now func() time.Time) *Revocations {
	return &Revocations{
		now:      now,
		sessions: map[string]int64{},
		users:    map[string]Revocation{},
		watchers: map[string]map[*watch]struct{}{},
	}
}

// Revoke records r; it never fails.
func (l *Revocations) Revoke(_ context.Context, r Revocation) error {
	l.Learn(r)
	return nil
}

// Learn records r, wherever it was made, and ends the watched streams it
// names. It reports whether r was news. An invalid or expired r is
// ignored.
func (l *Revocations) Learn(r Revocation) bool {
	if !r.Valid() {
		return false
	}
	now := l.now()
	if r.Expires <= now.UnixMilli() {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > sweepEvery {
		l.sweepLocked(now.UnixMilli())
		l.lastSweep = now
	}
	if r.Session != "" {
		if _, ok := l.sessions[r.Session]; ok {
			return false
		}
		l.sessions[r.Session] = r.Expires
	} else {
		if old, ok := l.users[r.User]; ok && old.Before >= r.Before {
			return false
		}
		l.users[r.User] = r
	}
	l.endLocked(r)
	return true
}

// endLocked cancels the watches r ends.
func (l *Revocations) endLocked(r Revocation) {
	key := watchKey(r.Session, r.User)
	for w := range l.watchers[key] {
		if r.Session != "" || w.sess.Start <= r.Before {
			w.cancel(ErrRevoked)
		}
	}
}

// watchKey is where watches wait: under their session id for a
// session's revocation and under their user for a user-wide one.
func watchKey(session, user string) string {
	if session != "" {
		return "s:" + session
	}
	return "u:" + user
}

func (l *Revocations) sweepLocked(now int64) {
	for id, exp := range l.sessions {
		if exp <= now {
			delete(l.sessions, id)
		}
	}
	for u, r := range l.users {
		if r.Expires <= now {
			delete(l.users, u)
		}
	}
}

// Revoked reports whether sess was signed out.
func (l *Revocations) Revoked(sess Session) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.revokedLocked(sess)
}

func (l *Revocations) revokedLocked(sess Session) bool {
	if _, ok := l.sessions[sess.ID]; ok {
		return true
	}
	r, ok := l.users[sess.User.ID]
	return ok && sess.Start <= r.Before
}

// All returns every revocation still in force, so an instance can hand
// them to a shared store that lost them.
func (l *Revocations) All() []Revocation {
	now := l.now().UnixMilli()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]Revocation, 0, len(l.sessions)+len(l.users))
	for id, exp := range l.sessions {
		if exp > now {
			out = append(out, Revocation{Session: id, Expires: exp})
		}
	}
	for _, r := range l.users {
		if r.Expires > now {
			out = append(out, r)
		}
	}
	return out
}

// Len is how many revocations the list holds (tests read it).
func (l *Revocations) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.sessions) + len(l.users)
}

// Watch returns a context derived from ctx that is cancelled, with cause
// ErrRevoked, the moment sess is revoked (at once if it already is), and
// the function that stops watching, which the caller must call.
func (l *Revocations) Watch(ctx context.Context, sess Session) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	w := &watch{sess: sess, cancel: cancel}
	keys := []string{watchKey(sess.ID, ""), watchKey("", sess.User.ID)}
	l.mu.Lock()
	if l.revokedLocked(sess) {
		cancel(ErrRevoked)
	}
	for _, k := range keys {
		if l.watchers[k] == nil {
			l.watchers[k] = map[*watch]struct{}{}
		}
		l.watchers[k][w] = struct{}{}
	}
	l.mu.Unlock()
	return ctx, func() {
		l.mu.Lock()
		for _, k := range keys {
			delete(l.watchers[k], w)
			if len(l.watchers[k]) == 0 {
				delete(l.watchers, k)
			}
		}
		l.mu.Unlock()
		cancel(context.Canceled)
	}
}

// Watching is how many watch entries are held (a watch holds one under
// its session and one under its user), for tests: it must fall back to
// zero once every stream has ended, with no entry left behind.
func (l *Revocations) Watching() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ws := range l.watchers {
		n += len(ws)
	}
	return n
}
