// Package redis shares sign-outs between headcount instances through a
// Redis stream, so a session revoked on one instance is refused, and its
// streams ended, on every other within moments. It is the adapter in front
// of auth.Revocations, which stays the one list every check reads: Redis
// is only the way revocations travel, never asked on a request's path.
package redis

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/headcount/headcount/auth"
	streamredis "github.com/headcount/headcount/stream/redis"
)

// Defaults for the zero values of Options.
const (
	// DefaultPrefix starts the stream's key, as it starts the shared
	// count's keys (stream/redis), so one prefix is one deployment.
	DefaultPrefix = streamredis.DefaultPrefix
	// retryEvery is how soon a revocation Redis refused is offered again,
	// and how soon the reader tries again after an error.
	retryEvery = 250 * time.Millisecond
	// blockFor bounds one blocking read, so Close is never kept waiting
	// longer than that.
	blockFor = time.Second
	// pageSize is how many entries one read takes.
	pageSize = 500
	// checkEvery is how often the reader makes sure Redis still holds the
	// stream: a restart can go unnoticed when go-redis' own retries hide
	// the broken connection.
	checkEvery = 3 * time.Second
)

// Options tunes Revocations; the zero value of every field but Secret is
// usable.
type Options struct {
	// Prefix starts the stream's key ("{<prefix>}:revocations", as the
	// count's keys start with "{<prefix>}"); empty means DefaultPrefix.
	Prefix string
	// Secret is the session secret. Every entry carries an HMAC under a key
	// derived from it, so whoever can write to the Redis but does not hold
	// the secret (another tenant) cannot sign anyone out.
	Secret []byte
	// Logger receives Redis trouble and recovery; nil discards it.
	Logger *slog.Logger
}

// Revocations is an auth.Revoker for instances that share a Redis. Revoke
// records a revocation in the local list at once (so it holds where it was
// made even while Redis is unreachable) and queues it for the stream; a
// reader learns every other instance's revocations from the stream. Close
// stops both.
type Revocations struct {
	local  *auth.Revocations
	client goredis.UniversalClient
	key    string
	// epochKey holds a random value set when the stream is first made: a
	// Redis that lost its data (a restart without persistence, a flush)
	// has lost it too. The deployment's hash tag keeps both keys on the
	// count's Cluster slot.
	epochKey string
	mac      []byte
	log      *slog.Logger

	mu      sync.Mutex
	pending []auth.Revocation
	kick    chan struct{}
	// flushing lets one flush run at a time (the writer's, or Close's).
	flushing sync.Mutex

	// lastID and epoch are the reader's own (New sets them before it
	// starts): the last entry read, and the epoch it was read under.
	lastID string
	epoch  string
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

// New connects to the Redis at rawURL (any form of HEADCOUNT_REDIS_URL),
// learns every revocation the stream holds into local, and starts sharing.
func New(ctx context.Context, rawURL string, local *auth.Revocations, opts Options) (*Revocations, error) {
	if len(opts.Secret) == 0 {
		return nil, errors.New("redis revocations: no secret")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	client, err := streamredis.Dial(rawURL, "headcount-revocations")
	if err != nil {
		return nil, err
	}
	mac := auth.DeriveKey(opts.Secret, "revocation mac", 32)
	key := streamredis.KeyPrefix(opts.Prefix) + ":revocations"
	r := &Revocations{
		local:    local,
		client:   client,
		key:      key,
		epochKey: key + ":epoch",
		mac:      mac,
		log:      opts.Logger,
		kick:     make(chan struct{}, 1),
		lastID:   "0-0",
	}
	if r.epoch, err = r.currentEpoch(ctx); err == nil {
		err = r.catchUp(ctx)
	}
	if err != nil {
		_ = r.client.Close()
		return nil, fmt.Errorf("redis revocations: cannot read %s: %w", r.key, err)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.done.Add(2)
	go r.read()
	go r.write()
	return r, nil
}

// Revoke ends rv on this instance now and queues it for the others; it
// fails only for an invalid revocation. While Redis is unreachable the
// queue waits, and is written the moment Redis answers again.
func (r *Revocations) Revoke(_ context.Context, rv auth.Revocation) error {
	if !rv.Valid() {
		return errors.New("redis revocations: invalid revocation")
	}
	r.local.Learn(rv)
	r.mu.Lock()
	r.pending = append(r.pending, rv)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return nil
}

// Pending is how many revocations wait for Redis: the retry loop and its
// log read it, and tests.
func (r *Revocations) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Close stops sharing. Revocations still queued get one last try, bounded
// by ctx: past it they hold on this instance only until it stops. Then the
// client is closed, which also ends a read blocked on a Redis that does
// not answer (frozen, or behind a network that drops packets), so Close
// never waits for one.
func (r *Revocations) Close(ctx context.Context) error {
	r.cancel()
	var err error
	if r.Pending() > 0 {
		// A flush error matters only if something stayed queued.
		if flushErr := r.flush(ctx); r.Pending() > 0 {
			err = errors.Join(flushErr, fmt.Errorf("redis revocations: %d sign-outs never reached Redis", r.Pending()))
		}
	}
	err = errors.Join(err, r.client.Close())
	r.done.Wait()
	return err
}

// write sends queued revocations to the stream, retrying while Redis
// refuses.
func (r *Revocations) write() {
	defer r.done.Done()
	retry := time.NewTicker(retryEvery)
	defer retry.Stop()
	failing := false
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-retry.C:
		}
		err := r.flush(r.ctx)
		switch {
		case err != nil && !failing && r.ctx.Err() == nil:
			failing = true
			r.log.Warn("sign-outs wait for Redis: they hold on this instance, the others learn them when Redis answers", "pending", r.Pending(), "err", err)
		case err == nil && failing:
			failing = false
			r.log.Info("queued sign-outs reached Redis")
		}
	}
}

// flush writes every queued revocation, in order, dropping each once
// Redis has it.
func (r *Revocations) flush(ctx context.Context) error {
	r.flushing.Lock()
	defer r.flushing.Unlock()
	for {
		r.mu.Lock()
		if len(r.pending) == 0 {
			r.mu.Unlock()
			return nil
		}
		rv := r.pending[0]
		r.mu.Unlock()
		if err := r.add(ctx, rv); err != nil {
			return err
		}
		// Removed by value: recover may have put entries in front
		// meanwhile.
		r.mu.Lock()
		if i := slices.Index(r.pending, rv); i >= 0 {
			r.pending = slices.Delete(r.pending, i, i+1)
		}
		r.mu.Unlock()
	}
}

// add appends one signed entry and trims entries older than a session's
// lifetime, which name only sessions that have expired anyway.
func (r *Revocations) add(ctx context.Context, rv auth.Revocation) error {
	body, err := json.Marshal(rv)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	minID := strconv.FormatInt(time.Now().Add(-auth.SessionLifetime).UnixMilli(), 10)
	return r.client.XAdd(ctx, &goredis.XAddArgs{
		Stream: r.key,
		MinID:  minID,
		Approx: true,
		Values: []string{"r", string(body), "m", r.sign(body)},
	}).Err()
}

func (r *Revocations) sign(body []byte) string { return entryMAC(r.mac, body) }

// entryMAC is an entry's HMAC of body under key, as it is stored.
func entryMAC(key, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(body)
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// read follows the stream, learning each revocation as it comes. After an
// error it first checks whether Redis lost the stream (a restart without
// persistence) and, if so, writes back everything this instance knows.
func (r *Revocations) read() {
	defer r.done.Done()
	failing := false
	checked := time.Now()
	for r.ctx.Err() == nil {
		if failing || time.Since(checked) > checkEvery {
			if err := r.recover(); err != nil {
				failing = true
				r.sleep(retryEvery)
				continue
			}
			checked = time.Now()
			if failing {
				failing = false
				r.log.Info("Redis answers again: following sign-outs")
			}
		}
		streams, err := r.client.XRead(r.ctx, &goredis.XReadArgs{
			Streams: []string{r.key, r.lastID},
			Count:   pageSize,
			Block:   blockFor,
		}).Result()
		switch {
		case errors.Is(err, goredis.Nil):
			continue // nothing new within blockFor
		case err != nil:
			if r.ctx.Err() == nil && !failing {
				r.log.Warn("cannot follow sign-outs in Redis; retrying", "err", err)
			}
			failing = true
			r.sleep(retryEvery)
			continue
		}
		for _, s := range streams {
			r.learn(s.Messages)
		}
	}
}

// recover runs once Redis answers after an error, and every checkEvery.
// If the epoch changed, Redis lost what it held (a restart without
// persistence, a flush), so every revocation in force here is written
// again; duplicates are harmless. What is new in the stream is the read
// loop's to read, from lastID.
func (r *Revocations) recover() error {
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	epoch, err := r.currentEpoch(ctx)
	if err != nil {
		return err
	}
	if epoch == r.epoch {
		return nil // the read loop's next XREAD, from lastID, catches up
	}
	r.epoch = epoch
	all := r.local.All()
	r.log.Warn("Redis lost the sign-out stream; writing back the sign-outs this instance knows", "count", len(all))
	r.mu.Lock()
	r.pending = append(all, r.pending...)
	r.mu.Unlock()
	r.lastID = "0-0"
	select {
	case r.kick <- struct{}{}:
	default:
	}
	return nil // the read loop reads the stream again from its start
}

// catchUp reads every entry after lastID without blocking.
func (r *Revocations) catchUp(ctx context.Context) error {
	for {
		msgs, err := r.client.XRangeN(ctx, r.key, "("+r.lastID, "+", pageSize).Result()
		if err != nil {
			return err
		}
		r.learn(msgs)
		if len(msgs) < pageSize {
			return nil
		}
	}
}

// learn hands each genuine entry to the local list; an entry that is
// malformed or not signed with our key is skipped (and said so).
func (r *Revocations) learn(msgs []goredis.XMessage) {
	for _, m := range msgs {
		r.lastID = m.ID
		rv, ok := r.parse(m.Values)
		if !ok {
			r.log.Warn("ignored a sign-out entry in Redis that this deployment did not sign", "id", m.ID)
			continue
		}
		r.local.Learn(rv)
	}
}

// parse checks an entry's signature and returns its revocation.
func (r *Revocations) parse(values map[string]any) (auth.Revocation, bool) {
	body, _ := values["r"].(string)
	mac, _ := values["m"].(string)
	return parseEntry(r.mac, body, mac)
}

// parseEntry returns the revocation in an entry's body if mac is its HMAC
// under key and it is valid.
func parseEntry(key []byte, body, mac string) (auth.Revocation, bool) {
	if len(body) > 1024 {
		return auth.Revocation{}, false
	}
	if !hmac.Equal([]byte(entryMAC(key, []byte(body))), []byte(mac)) {
		return auth.Revocation{}, false
	}
	var rv auth.Revocation
	if err := json.Unmarshal([]byte(body), &rv); err != nil || !rv.Valid() {
		return auth.Revocation{}, false
	}
	return rv, true
}

// currentEpoch returns the stream's epoch, making one if there is none
// (the first instance, or a Redis that lost it).
func (r *Revocations) currentEpoch(ctx context.Context) (string, error) {
	b := make([]byte, 16)
	rand.Read(b)
	// One round trip: set it if there is none, and read what is there.
	pipe := r.client.Pipeline()
	pipe.SetNX(ctx, r.epochKey, base64.RawURLEncoding.EncodeToString(b), 0)
	epoch := pipe.Get(ctx, r.epochKey)
	if _, err := pipe.Exec(ctx); err != nil {
		return "", err
	}
	return epoch.Val(), nil
}

func (r *Revocations) sleep(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-r.ctx.Done():
	case <-t.C:
	}
}
