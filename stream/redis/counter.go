// Package redis is the shared back end of the count: a stream.Counter that
// lets every headcount instance on one Redis (and one key prefix) report
// the same global number of subscribers, a stream.Roster that makes who is
// online (per person, their streams on every instance) global, and a
// stream.Limiter that holds the per-user stream limit across instances.
// One Redis, a Sentinel-managed master and a Redis Cluster all work,
// through go-redis' UniversalClient.
//
// Each instance keeps its local count in Redis under a deadline it renews
// every Refresh, and holds a subscription to a liveness channel of its
// own. Every Check, each instance runs a script that drops the others that
// are dead: an instance whose connection closed (its process died: the
// kernel closes its sockets at once) is dropped once its liveness channel
// has had no subscriber for Grace, within about two seconds; one that
// froze or lost its network keeps its connection open on Redis' side and
// is dropped when its deadline passes, within InstanceTTL + Check. Every
// change of the sum is published, so the other instances re-broadcast at
// once; because Pub/Sub may lose messages while a connection is down,
// every resubscription is followed by a fresh read of the sum, and each
// instance compares the sum it reads at every refresh with the last one it
// knew.
//
// While Redis cannot be reached or refuses writes (a replica's READONLY,
// maxmemory's OOM), Store answers at once with this instance's best
// knowledge (the last global count corrected by the local changes since)
// and an error that wraps stream.ErrPartial; Ping reports the outage, and
// the counter probes Redis every outageProbe until it answers again.
package redis

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/headcount/headcount/stream"
)

// ErrClosed is returned by Store and Ping after Close, so a caller can tell
// a counter that was shut down from a Redis that is unreachable.
var ErrClosed = errors.New("redis: counter closed")

const (
	// confirmTimeout bounds how long New waits for Redis to confirm the
	// subscriptions.
	confirmTimeout = 5 * time.Second
	// closeTimeout bounds the removal of this instance's count in Close
	// (waiting for a script in flight included), so Close returns when
	// Redis hangs. The program's stop has one budget of its own
	// (config.ShutdownTimeout), which also bounds its wait for Close.
	closeTimeout = 1500 * time.Millisecond
	// resubscribeMin is the first pause before the subscriptions are made
	// again after they broke; the pause doubles up to Refresh.
	resubscribeMin = 50 * time.Millisecond
	// storeTimeout bounds one Store's wait and script: past it, Redis is
	// taken for unreachable and the hub gets this instance's best
	// knowledge, so a new stream has its first count within a second.
	storeTimeout = 500 * time.Millisecond
	// pingTimeout bounds Ping, so /readyz answers within a second.
	pingTimeout = 700 * time.Millisecond
	// keepTimeout bounds one script of the keeper goroutine.
	keepTimeout = time.Second
	// outageProbe is how often the keeper tries Redis during an outage,
	// so that everyone converges soon after Redis answers again.
	outageProbe = 250 * time.Millisecond
)

// Counter is a stream.Counter whose global count is the sum of the local
// counts of every live instance sharing a Redis and a prefix. Its methods
// are safe for concurrent use. Close it to stop its goroutines and take
// this instance's count out at once.
type Counter struct {
	opts   Options
	client goredis.UniversalClient
	topo   topology
	// keys are the prelude's KEYS; args its ARGV (see script.go).
	keys    []string
	args    []any
	channel string // the change channel
	alive   string // this instance's liveness channel
	prefix  string // Options.Prefix as a hash tag
	sharded bool   // SSUBSCRIBE and SPUBLISH rather than SUBSCRIBE and PUBLISH
	store   *goredis.Script
	reap    *goredis.Script
	remove  *goredis.Script
	// people and peopleKeys keep who is online (people.go).
	people     *goredis.Script
	peopleKeys []string
	ttlMS      int64

	// changes has one slot: a pending signal that the global count may
	// have changed elsewhere.
	changes chan struct{}

	// sem has one slot, held by whoever runs a count script for this
	// instance, so that they never overlap and a slow one delays the next
	// rather than racing it. psem is the same for the people scripts
	// (StorePeople, Acquire, their refresh): a burst of joins queues there,
	// never in front of the hub's Store.
	sem  chan struct{}
	psem chan struct{}

	mu          sync.Mutex
	local       int   // the latest local count from Store
	global      int   // the sum returned by the latest script
	globalLocal int   // the local count that sum included
	known       bool  // global holds a value
	outage      error // why Redis cannot be used now, or nil
	// unwritten: local may differ from what Redis holds (a script failed
	// since the last store), so the keeper stores next.
	unwritten bool

	// limits is this instance's side of the per-user limit (limiter.go).
	limits limits

	// closed is set when Close begins: Store, refreshes and Ping are refused.
	closed atomic.Bool

	// ctx ends the keeper and the subscriber; cancel is called by Close.
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup

	subMu    sync.Mutex
	pubsub   *goredis.PubSub // the subscriber's current subscription
	stopping bool            // Close has begun: no new subscription
	// isSubscribed: Redis confirmed the current subscription, not broken since.
	isSubscribed bool

	closeOnce sync.Once
	closeErr  error
}

// New connects to the Redis that rawURL names (see the README for the
// forms: redis://, rediss://, unix://, redis+sentinel://, redis+cluster://),
// checks that it answers, subscribes to the change channel and this
// instance's liveness channel, and starts the goroutines that keep this
// instance alive and listen for changes. ctx bounds only the start. A
// Redis that does not answer is an error, so a misconfigured instance
// stops at start instead of serving a count nobody shares.
func New(ctx context.Context, rawURL string, opts Options) (*Counter, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	topo, err := dial(rawURL, "headcount-"+opts.InstanceID)
	if err != nil {
		return nil, err
	}
	client := topo.client
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: cannot reach %s %s: %w", topo.kind, topo.where, err)
	}

	p := tagged(opts.Prefix)
	c := &Counter{
		opts:       opts,
		client:     client,
		topo:       topo,
		keys:       []string{p + ":counts", p + ":deadlines", p + ":absent"},
		channel:    p + ":changes",
		alive:      p + ":alive:" + opts.InstanceID,
		prefix:     p,
		sharded:    !opts.plainPubSub && hasShardedPubSub(ctx, client),
		store:      goredis.NewScript(storeScript),
		reap:       goredis.NewScript(reapScript),
		remove:     goredis.NewScript(removeScript),
		people:     goredis.NewScript(peopleScript),
		peopleKeys: peopleKeys(p, opts.InstanceID),
		ttlMS:      opts.InstanceTTL.Milliseconds(),
		changes:    make(chan struct{}, 1),
		sem:        make(chan struct{}, 1),
		psem:       make(chan struct{}, 1),
	}
	sharded := "0"
	if c.sharded {
		sharded = "1"
	}
	c.args = []any{opts.InstanceID, c.channel, p + ":alive:", sharded, opts.Grace.Milliseconds()}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	// Subscribed before New returns and before this instance's first
	// count: no change published after that is missed, and the others
	// never see this instance counted without its liveness channel.
	ps := c.newPubSub()
	if err := c.confirm(ctx, ps); err != nil {
		c.cancel()
		return nil, errors.Join(fmt.Errorf("redis: subscribing to %s: %w", c.channel, err), ps.Close(), client.Close())
	}

	// Counted (with nothing yet) and under a deadline from the start, so
	// the others never take this instance's people for a dead one's.
	if _, _, err := c.runStore(ctx); err != nil {
		c.cancel()
		return nil, errors.Join(fmt.Errorf("redis: writing this instance's count to %s %s: %w", topo.kind, topo.where, err), ps.Close(), client.Close())
	}

	c.workers.Add(2)
	go c.runKeeper()
	go c.runSubscriber(ps)
	return c, nil
}

// tagged returns prefix as a Redis Cluster hash tag ("{headcount}"), so
// every name built on it lands in one slot, unless the operator's prefix
// already holds a tag of its own.
func tagged(prefix string) string {
	if i := indexTag(prefix); i >= 0 {
		return prefix
	}
	return "{" + prefix + "}"
}

// indexTag returns where a non-empty {...} hash tag starts in s, or -1.
func indexTag(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		for j := i + 1; j < len(s); j++ {
			if s[j] == '}' {
				if j > i+1 {
					return i
				}
				return -1
			}
		}
		return -1
	}
	return -1
}

// hasShardedPubSub reports whether the server knows SPUBLISH (Redis 7 and
// later, Valkey). COMMAND INFO answers nil for a command it does not know.
func hasShardedPubSub(ctx context.Context, client goredis.UniversalClient) bool {
	v, err := client.Do(ctx, "COMMAND", "INFO", "SPUBLISH").Slice()
	return err == nil && len(v) == 1 && v[0] != nil
}

// Where says which Redis the counter uses, without any password: the
// topology ("redis", "sentinel" or "cluster") and its addresses.
func (c *Counter) Where() string { return c.topo.kind + " " + c.topo.where }

// Store records that this instance holds local subscribers, drops the
// counts of dead instances and returns the global count, all in one
// atomic script. While Redis cannot be used it answers at once with this
// instance's best knowledge and an error wrapping stream.ErrPartial; the
// counter writes local as soon as Redis answers again.
func (c *Counter) Store(ctx context.Context, local int) (int, error) {
	if local < 0 {
		return 0, fmt.Errorf("redis: local count %d is negative", local)
	}
	if c.closed.Load() {
		return 0, ErrClosed
	}
	c.mu.Lock()
	c.local = local
	outage := c.outage
	c.mu.Unlock()
	if outage != nil {
		return c.estimate(), fmt.Errorf("%w: %w", stream.ErrPartial, outage)
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	global, _, err := c.runStore(ctx)
	if errors.Is(err, ErrClosed) {
		return 0, err
	}
	if err != nil {
		return c.estimate(), fmt.Errorf("%w: %w", stream.ErrPartial, err)
	}
	return global, nil
}

// estimate is this instance's best knowledge of the global count: the
// last one Redis told, corrected by the local changes since. It is never
// below the local count, so never negative.
func (c *Counter) estimate() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known {
		return c.local
	}
	return max(c.local, c.global+c.local-c.globalLocal)
}

// Changes signals when the global count may have changed through another
// instance: one that stored a new count, left, or was found dead, or Redis
// answering again after an outage. It is the same channel for the life of
// the Counter, with one slot, so a burst of changes costs the hub one
// cycle.
func (c *Counter) Changes() <-chan struct{} { return c.changes }

// Ping reports whether the shared count can be kept: Redis answers and
// takes writes (a replica's READONLY or maxmemory's OOM is an outage as
// much as a dead network). It answers within pingTimeout, so /readyz can
// refuse traffic while the count is partial.
func (c *Counter) Ping(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if outage := c.outageErr(); outage != nil {
		return outage
	}
	ctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	_, _, err := c.runStore(ctx)
	return err
}

// Close stops the keeper and the subscriber, takes this instance's count
// out of the global count and publishes the change, so the other
// instances tell their subscribers at once instead of after InstanceTTL,
// and closes the Redis client. It takes at most about closeTimeout: when
// Redis does not answer, the removal fails (the error says so) and the
// others drop this instance when its connection or its deadline is gone.
// Later calls return the first one's result.
func (c *Counter) Close() error { return c.shutdown(true) }

// shutdown stops the counter. With leave false it does everything but
// remove this instance's count, which is what a crash looks like to the
// other instances: tests use it to kill an instance.
func (c *Counter) shutdown(leave bool) error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.cancel()
		c.subMu.Lock()
		c.stopping = true
		if c.pubsub != nil {
			// Unblocks the subscriber's read.
			_ = c.pubsub.Close()
		}
		c.subMu.Unlock()
		c.workers.Wait()

		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		var err error
		if leave {
			err = c.leave(ctx)
		}
		c.closeErr = errors.Join(err, c.client.Close())
	})
	return c.closeErr
}

// leave removes this instance's count. It first waits for a script in
// flight, so that none can write the count back after the removal; every
// later Store is refused, as closed is set. Should that script outlast
// half of ctx's time, the removal goes ahead anyway.
func (c *Counter) leave(ctx context.Context) error {
	wait := closeTimeout / 2
	if deadline, ok := ctx.Deadline(); ok {
		wait = time.Until(deadline) / 2
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-timer.C:
	}
	if err := c.remove.Run(ctx, c.client, c.keys, c.args...).Err(); err != nil {
		return fmt.Errorf("redis: removing this instance's count: %w", err)
	}
	if _, err := c.refreshPeople(ctx, "leave"); err != nil {
		return fmt.Errorf("redis: removing this instance's people: %w", err)
	}
	return nil
}

// scriptReply is what every script but remove answers (see script.go).
type scriptReply struct {
	sum        int
	present    bool // this instance was in the count
	subscribed bool // this instance's liveness channel has a subscriber
	dropped    []string
}

// runStore runs the store script with the latest local count. It returns
// the global count and the script's reply.
func (c *Counter) runStore(ctx context.Context) (int, scriptReply, error) {
	return c.runScript(ctx, c.store, true)
}

// runReap runs the reap script.
func (c *Counter) runReap(ctx context.Context) (int, scriptReply, error) {
	return c.runScript(ctx, c.reap, false)
}

// runScript runs s (store when writesLocal) under sem, records the global
// count it answers, or the outage its failure means, and signals Changes
// when the sum differs from the last one this instance knew or Redis
// answers after an outage.
func (c *Counter) runScript(ctx context.Context, s *goredis.Script, writesLocal bool) (int, scriptReply, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		err := fmt.Errorf("redis: waiting for the previous script: %w", ctx.Err())
		c.fail(err)
		return 0, scriptReply{}, err
	}
	defer func() { <-c.sem }()
	if c.closed.Load() {
		return 0, scriptReply{}, ErrClosed
	}
	c.mu.Lock()
	local := c.local
	c.mu.Unlock()

	args := c.args
	if writesLocal {
		args = append(args[:len(args):len(args)], local, c.ttlMS)
	}
	raw, err := s.Run(ctx, c.client, c.keys, args...).Slice()
	if err != nil {
		err = fmt.Errorf("redis: %w", err)
		c.fail(err)
		return 0, scriptReply{}, err
	}
	r, err := parseReply(raw)
	if err != nil {
		c.fail(err)
		return 0, scriptReply{}, err
	}
	for _, d := range r.dropped {
		c.opts.Logger.Info("redis: dropped a dead instance's count", "instance", d)
	}

	c.mu.Lock()
	changed := !c.known || r.sum != c.global
	wasKnown := c.known
	c.global, c.known = r.sum, true
	if writesLocal {
		c.globalLocal = local
		c.unwritten = c.local != local
	}
	recovered := c.outage
	c.outage = nil
	c.mu.Unlock()

	if writesLocal && wasKnown && !r.present {
		c.opts.Logger.Warn("redis: this instance had been dropped from the count (Redis unreachable, its connection broken or the process stalled); its count is back", "instance", c.opts.InstanceID, "ttl", c.opts.InstanceTTL)
	}
	if recovered != nil {
		c.opts.Logger.Info("redis: the shared count works again", "global", r.sum)
	}
	if changed || recovered != nil {
		c.notify()
	}
	return r.sum, r, nil
}

func parseReply(raw []any) (scriptReply, error) {
	var r scriptReply
	if len(raw) < 3 {
		return r, fmt.Errorf("redis: a script answered %d values, want at least 3", len(raw))
	}
	sum, ok1 := raw[0].(int64)
	present, ok2 := raw[1].(int64)
	subscribed, ok3 := raw[2].(int64)
	if !ok1 || !ok2 || !ok3 {
		return r, fmt.Errorf("redis: a script answered %v, not counts", raw[:3])
	}
	r.sum, r.present, r.subscribed = int(sum), present == 1, subscribed == 1
	for _, v := range raw[3:] {
		s, _ := v.(string)
		r.dropped = append(r.dropped, s)
	}
	return r, nil
}

// fail records that Redis cannot be used, logging the first failure of an
// outage. Store then answers from memory until a script works again.
func (c *Counter) fail(err error) {
	if c.closed.Load() || errors.Is(err, context.Canceled) {
		// A caller that gave up (the hub closing) says nothing of Redis.
		return
	}
	c.mu.Lock()
	first := c.outage == nil
	c.outage = err
	c.unwritten = true
	c.mu.Unlock()
	if first {
		// The hub's next Store is partial: it tells its streams so.
		c.notify()
		c.opts.Logger.Warn("redis: the shared count is unavailable (Redis unreachable, too slow or refusing writes); serving this instance's best knowledge until it answers", "redis", c.Where(), "err", err)
	}
}

// outageErr is the outage in progress, or nil.
func (c *Counter) outageErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outage
}

// down reports whether an outage is in progress.
func (c *Counter) down() bool { return c.outageErr() != nil }

// mustWrite reports whether Redis may hold an older local count than
// this instance's (during or after an outage).
func (c *Counter) mustWrite() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.outage != nil || c.unwritten
}

// notify signals Changes without ever waiting: one pending signal covers
// any number of changes.
func (c *Counter) notify() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// keepPeople runs the people script's refresh under psem, recording an
// outage if it fails.
func (c *Counter) keepPeople(ctx context.Context) (bool, error) {
	select {
	case c.psem <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-c.psem }()
	if c.closed.Load() {
		return false, ErrClosed
	}
	gone, err := c.refreshPeople(ctx, "refresh")
	if err != nil {
		c.fail(err)
	}
	return gone, err
}

// runKeeper keeps this instance in the count until Close. Every Check it
// drops dead instances (the reap script); every Refresh, and whenever it
// finds this instance missing from the count, it renews this instance's
// count and deadline (the store script); during an outage it tries the
// store script every outageProbe. When this instance's own liveness
// channel has no subscriber on the node that holds the count while the
// subscriber believes it is subscribed (after a Sentinel failover the
// subscription can be left on the demoted master), it makes the
// subscriber subscribe again at once, within the others' Grace.
func (c *Counter) runKeeper() {
	defer c.workers.Done()
	timer := time.NewTimer(c.opts.Check)
	defer timer.Stop()
	lastStore, lastPeople := time.Now(), time.Time{}
	needStore := false
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-timer.C:
		}
		var r scriptReply
		var err error
		ctx, cancel := context.WithTimeout(c.ctx, keepTimeout)
		if needStore || c.mustWrite() || time.Since(lastStore) >= c.opts.Refresh-c.opts.Check/2 {
			_, r, err = c.runStore(ctx)
			if err == nil {
				lastStore, needStore = time.Now(), false
			}
		} else {
			_, r, err = c.runReap(ctx)
			needStore = err == nil && !r.present
		}
		if err == nil && (len(r.dropped) > 0 || time.Since(lastPeople) >= c.opts.Refresh-c.opts.Check/2) {
			// Renews this instance's people and takes those of the
			// instances just dropped out, so they leave even where nobody
			// joins.
			var gone bool
			if gone, err = c.keepPeople(ctx); err == nil {
				lastPeople = time.Now()
				if gone {
					c.notify()
				}
			}
		}
		cancel()
		if c.ctx.Err() != nil {
			return
		}
		if err == nil && !r.subscribed && c.subscribed() {
			c.opts.Logger.Warn("redis: this instance's liveness channel has no subscriber on the node that holds the count; subscribing again")
			c.breakSubscription()
		}
		next := c.opts.Check
		if c.down() {
			next = min(next, outageProbe)
		}
		timer.Reset(next)
	}
}
