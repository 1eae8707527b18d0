package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// subscribe asks ps for the change channel and this instance's liveness
// channel, sharded where the server has it. Both names share a hash tag,
// so one connection (to the node of their slot) holds both.
func (c *Counter) subscribe(ctx context.Context, ps *goredis.PubSub) error {
	if c.sharded {
		return ps.SSubscribe(ctx, c.channel, c.alive)
	}
	return ps.Subscribe(ctx, c.channel, c.alive)
}

// confirm subscribes ps and waits for Redis to confirm both channels,
// which is the moment from which no published change is missed and the
// others see this instance alive.
func (c *Counter) confirm(ctx context.Context, ps *goredis.PubSub) error {
	if err := c.subscribe(ctx, ps); err != nil {
		return err
	}
	for confirmed := 0; confirmed < 2; {
		msg, err := ps.ReceiveTimeout(ctx, confirmTimeout)
		if err != nil {
			return err
		}
		if _, ok := msg.(*goredis.Subscription); ok {
			confirmed++
		}
	}
	c.setSubscribed(true)
	return nil
}

// newPubSub returns a fresh, not yet subscribed PubSub that Close will
// close, or nil once Close has begun.
func (c *Counter) newPubSub() *goredis.PubSub {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.stopping {
		return nil
	}
	// Without channels neither call does any I/O, so the lock is held
	// briefly; the connection is made by the first subscription, to the
	// node of the channels' slot.
	if c.sharded {
		c.pubsub = c.client.SSubscribe(c.ctx)
	} else {
		c.pubsub = c.client.Subscribe(c.ctx)
	}
	return c.pubsub
}

// breakSubscription closes the current subscription, so the subscriber
// makes a new one (through the client's current view of the topology).
func (c *Counter) breakSubscription() {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.pubsub != nil {
		_ = c.pubsub.Close()
	}
}

func (c *Counter) setSubscribed(on bool) {
	c.subMu.Lock()
	c.isSubscribed = on
	c.subMu.Unlock()
}

// subscribed reports whether the subscriber believes it holds its
// subscriptions.
func (c *Counter) subscribed() bool {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	return c.isSubscribed
}

// runSubscriber listens on the change channel until Close, starting with
// ps (already subscribed by New). When the subscription breaks it makes a
// new one, pausing longer after each failure up to Refresh, and once Redis
// confirms it signals Changes, so the hub reads the sum again: Pub/Sub
// loses what was published while no subscription was open.
func (c *Counter) runSubscriber(ps *goredis.PubSub) {
	defer c.workers.Done()
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	backoff := resubscribeMin
	resumed := false
	for {
		worked, err := c.listen(ps, resumed)
		c.setSubscribed(false)
		_ = ps.Close()
		if c.ctx.Err() != nil {
			return
		}
		if worked || !resumed {
			c.opts.Logger.Warn("redis: the change subscription broke; resubscribing (changes on other instances reach this one late meanwhile)", "err", err)
			backoff = resubscribeMin
		}
		resumed = true

		pause.Reset(backoff)
		select {
		case <-c.ctx.Done():
			return
		case <-pause.C:
		}
		backoff = min(2*backoff, max(c.opts.Refresh, resubscribeMin))
		if ps = c.newPubSub(); ps == nil {
			return
		}
	}
}

// listen delivers change messages from ps until the connection fails or
// Close closes ps. With resumed set it first subscribes ps and, once Redis
// confirms, signals Changes. It reports whether ps was subscribed at some
// point, and why it stopped.
//
// A connection that silently died (no reset, no answer) is found by
// pinging when nothing arrived for InstanceTTL and giving up when the next
// InstanceTTL brings no answer either.
func (c *Counter) listen(ps *goredis.PubSub, resumed bool) (worked bool, err error) {
	worked = !resumed
	if resumed {
		if err := c.subscribe(c.ctx, ps); err != nil {
			return false, err
		}
	}
	confirmed := 0
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(c.ctx, c.opts.InstanceTTL)
		if err != nil {
			if ne, ok := errors.AsType[net.Error](err); !ok || !ne.Timeout() {
				return worked, err
			}
			if pinged {
				return worked, errors.New("redis: no answer to a ping on the change subscription")
			}
			if err := ps.Ping(c.ctx); err != nil {
				return worked, err
			}
			pinged = true
			continue
		}
		pinged = false
		switch msg := msg.(type) {
		case *goredis.Subscription:
			if confirmed++; !worked && confirmed == 2 {
				worked = true
				c.setSubscribed(true)
				c.opts.Logger.Info("redis: the change subscription works again")
				c.notify()
			}
		case *goredis.Message:
			// This instance's own changes reached its hub through Store.
			if msg.Channel == c.channel && msg.Payload != c.opts.InstanceID {
				c.notify()
			}
		}
	}
}
