// Package redis is the shared back end of the count: a stream.Counter that
// lets every headcount instance on one Redis (and one key prefix) report
// the same global number of subscribers, and a stream.Roster that makes
// who is online (per person, their streams on every instance) global.
//
// Each instance keeps its local count in Redis under a deadline it renews
// every Refresh. An instance that stops renewing (it crashed, or lost
// Redis) is dropped from the sum by the first live instance that runs a
// script after the deadline, so a dead instance's subscribers leave the
// count at most InstanceTTL + Refresh after its last renewal. Every change
// of the sum is published, so the other instances re-broadcast at once;
// because Pub/Sub may lose messages while a connection is down, each
// instance also compares the sum it reads at every refresh with the last
// one it knew, which bounds a missed change to one Refresh.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// ErrClosed is returned by Store and Ping after Close, so a caller can tell
// a counter that was shut down from a Redis that is unreachable.
var ErrClosed = errors.New("redis: counter closed")

const (
	// confirmTimeout bounds how long New waits for Redis to confirm the
	// change subscription.
	confirmTimeout = 5 * time.Second
	// closeTimeout bounds the removal of this instance's count in Close
	// (waiting for a Store in flight included), so Close returns when
	// Redis hangs. The program's stop has one budget of its own
	// (config.ShutdownTimeout), which also bounds its wait for Close.
	closeTimeout = 2 * time.Second
	// resubscribeMin is the first pause before the change subscription is
	// made again after it broke; the pause doubles up to Refresh.
	resubscribeMin = 50 * time.Millisecond
)

// Counter is a stream.Counter whose global count is the sum of the local
// counts of every live instance sharing a Redis and a prefix. Its methods
// are safe for concurrent use. Close it to stop its goroutines and take
// this instance's count out at once.
type Counter struct {
	opts    Options
	client  *goredis.Client
	keys    []string // counts hash, deadlines sorted set
	channel string
	store   *goredis.Script
	remove  *goredis.Script
	// people and peopleKeys keep who is online (people.go).
	people     *goredis.Script
	peopleKeys []string
	ttlMS      int64

	// changes has one slot: a pending signal that the global count may
	// have changed elsewhere.
	changes chan struct{}

	// sem has one slot, held by whoever runs a script for this instance,
	// so a refresh can never write an older local count over a newer one.
	sem    chan struct{}
	local  int  // the latest local count from Store; guarded by sem
	global int  // the sum returned by the latest script; guarded by sem
	known  bool // global holds a value; guarded by sem

	// closed is set when Close begins: Store, refreshes and Ping are refused.
	closed atomic.Bool

	// ctx ends the refresher and the subscriber; cancel is called by Close.
	ctx     context.Context
	cancel  context.CancelFunc
	workers sync.WaitGroup

	subMu    sync.Mutex
	pubsub   *goredis.PubSub // the subscriber's current subscription
	stopping bool            // Close has begun: no new subscription

	closeOnce sync.Once
	closeErr  error
}

// New connects to the Redis at rawURL (redis://, rediss:// or unix://, as
// go-redis' ParseURL reads them), checks that it answers, subscribes to
// the change channel and starts the goroutines that keep this instance
// alive and listen for changes. ctx bounds only the start. A Redis that
// does not answer is an error, so a misconfigured instance stops at start
// instead of serving a count nobody shares.
func New(ctx context.Context, rawURL string, opts Options) (*Counter, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ropts, err := goredis.ParseURL(rawURL)
	if err != nil {
		// url.Error repeats the URL, password included: keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("redis: bad URL: %w", err)
	}
	client := goredis.NewClient(ropts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("redis: cannot reach %s: %w", ropts.Addr, err)
	}

	c := &Counter{
		opts:       opts,
		client:     client,
		keys:       []string{opts.Prefix + ":counts", opts.Prefix + ":deadlines"},
		channel:    opts.Prefix + ":changes",
		store:      goredis.NewScript(storeScript),
		remove:     goredis.NewScript(removeScript),
		people:     goredis.NewScript(peopleScript),
		peopleKeys: peopleKeys(opts.Prefix, opts.InstanceID),
		ttlMS:      opts.InstanceTTL.Milliseconds(),
		changes:    make(chan struct{}, 1),
		sem:        make(chan struct{}, 1),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	// Subscribed before New returns: no change published after that is missed.
	ps := client.Subscribe(ctx)
	c.pubsub = ps
	if err := c.confirm(ctx, ps); err != nil {
		c.cancel()
		return nil, errors.Join(fmt.Errorf("redis: subscribing to %s: %w", c.channel, err), ps.Close(), client.Close())
	}

	c.workers.Add(2)
	go c.runRefresher()
	go c.runSubscriber(ps)
	return c, nil
}

// Store records that this instance holds local subscribers, drops the
// counts of dead instances and returns the global count, all in one
// atomic script. When Redis cannot be reached it returns an error, and the
// refresher writes local again as soon as Redis is back.
func (c *Counter) Store(ctx context.Context, local int) (int, error) {
	if local < 0 {
		return 0, fmt.Errorf("redis: local count %d is negative", local)
	}
	global, _, err := c.run(ctx, &local)
	return global, err
}

// Changes signals when the global count may have changed through another
// instance: one that stored a new count, left, or was found dead. It is
// the same channel for the life of the Counter, with one slot, so a burst
// of changes costs the hub one cycle.
func (c *Counter) Changes() <-chan struct{} { return c.changes }

// Ping reports whether Redis answers, so /readyz can refuse traffic while
// the shared count cannot be kept.
func (c *Counter) Ping(ctx context.Context) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := c.client.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: ping: %w", err)
	}
	return nil
}

// Close stops the refresher and the subscriber, takes this instance's
// count out of the global count and publishes the change, so the other
// instances tell their subscribers at once instead of after InstanceTTL,
// and closes the Redis client. Later calls return the first one's result.
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

// leave removes this instance's count. It first waits for a Store in
// flight, so that none can write the count back after the removal; every
// later Store is refused, as closed is set. Should that Store outlast half
// of ctx's time, the removal goes ahead anyway: at worst the count then
// lingers for InstanceTTL.
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
	if err := c.remove.Run(ctx, c.client, c.keys, c.opts.InstanceID, c.channel).Err(); err != nil {
		return fmt.Errorf("redis: removing this instance's count: %w", err)
	}
	if _, err := c.refreshPeople(ctx, "leave"); err != nil {
		return fmt.Errorf("redis: removing this instance's people: %w", err)
	}
	return nil
}

// run runs the store script with *local as the new local count, or with
// the last one when local is nil (a refresh). It returns the global count
// and whether it differs from the one the previous script returned.
func (c *Counter) run(ctx context.Context, local *int) (global int, changed bool, err error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return 0, false, ctx.Err()
	}
	defer func() { <-c.sem }()
	if c.closed.Load() {
		return 0, false, ErrClosed
	}
	if local != nil {
		// Kept even if the script fails: it is what the refresher restores.
		c.local = *local
	}

	reply, err := c.store.Run(ctx, c.client, c.keys, c.opts.InstanceID, c.local, c.ttlMS, c.channel).Slice()
	if err != nil {
		return 0, false, fmt.Errorf("redis: storing the count: %w", err)
	}
	sum, ok := reply[0].(int64)
	if !ok {
		return 0, false, fmt.Errorf("redis: the store script answered %T, not a count", reply[0])
	}
	for _, v := range reply[1:] {
		id, _ := v.(string)
		if id == c.opts.InstanceID {
			c.opts.Logger.Warn("redis: this instance had expired (Redis unreachable or the process stalled for longer than InstanceTTL); its count is back", "instance", id, "ttl", c.opts.InstanceTTL)
			continue
		}
		c.opts.Logger.Info("redis: dropped the count of an instance that stopped refreshing", "instance", id)
	}

	global = int(sum)
	changed = !c.known || global != c.global
	c.global, c.known = global, true
	return global, changed, nil
}

// notify signals Changes without ever waiting: one pending signal covers
// any number of changes.
func (c *Counter) notify() {
	select {
	case c.changes <- struct{}{}:
	default:
	}
}

// runRefresher renews this instance's count every Refresh until Close, so
// it stays in the global count, and on the way drops dead instances. When
// the sum it reads differs from the last one this instance knew, it
// signals Changes: that covers a change whose message was lost and a dead
// instance this very refresh dropped (its own message is ignored).
func (c *Counter) runRefresher() {
	defer c.workers.Done()
	tick := time.NewTicker(c.opts.Refresh)
	defer tick.Stop()
	failing := false
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.Refresh)
		global, changed, err := c.run(ctx, nil)
		if err == nil {
			// Renews this instance's people and takes those of instances
			// found dead out, so they leave even where nobody joins.
			var gone bool
			gone, err = c.refreshPeople(ctx, "refresh")
			changed = changed || gone
		}
		cancel()
		switch {
		case err != nil && c.ctx.Err() != nil:
			return
		case err != nil:
			if !failing {
				c.opts.Logger.Warn("redis: refreshing this instance's count failed; it leaves the global count after InstanceTTL", "ttl", c.opts.InstanceTTL, "err", err)
			}
			failing = true
			continue
		case failing:
			c.opts.Logger.Info("redis: refreshing this instance's count works again", "global", global)
			failing = false
		}
		if changed {
			c.notify()
		}
	}
}
