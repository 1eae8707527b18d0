package redis

import (
	"context"
	"errors"
	"net"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// confirm subscribes ps to the change channel and waits for Redis to say
// so, which is the moment from which no published change is missed.
func (c *Counter) confirm(ctx context.Context, ps *goredis.PubSub) error {
	if err := ps.Subscribe(ctx, c.channel); err != nil {
		return err
	}
	for {
		msg, err := ps.ReceiveTimeout(ctx, confirmTimeout)
		if err != nil {
			return err
		}
		if _, ok := msg.(*goredis.Subscription); ok {
			return nil
		}
	}
}

// newPubSub returns a fresh, not yet subscribed PubSub that Close will
// close, or nil once Close has begun.
func (c *Counter) newPubSub() *goredis.PubSub {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	if c.stopping {
		return nil
	}
	// Without channels Subscribe does no I/O, so the lock is held briefly.
	c.pubsub = c.client.Subscribe(c.ctx)
	return c.pubsub
}

// runSubscriber listens on the change channel until Close, starting with
// ps (already subscribed by New). When the subscription breaks it makes a
// new one, pausing longer after each failure up to Refresh: meanwhile the
// refresher still notices changes, one Refresh late.
func (c *Counter) runSubscriber(ps *goredis.PubSub) {
	defer c.workers.Done()
	pause := time.NewTimer(time.Hour)
	pause.Stop()
	defer pause.Stop()
	backoff := resubscribeMin
	resumed := false
	for {
		worked, err := c.listen(ps, resumed)
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
// confirms, signals Changes, since messages may have been lost while no
// subscription was open. It reports whether ps was subscribed at some
// point, and why it stopped.
//
// A connection that silently died (no reset, no answer) is found by
// pinging when nothing arrived for InstanceTTL and giving up when the next
// InstanceTTL brings no answer either.
func (c *Counter) listen(ps *goredis.PubSub, resumed bool) (worked bool, err error) {
	worked = !resumed
	if resumed {
		if err := ps.Subscribe(c.ctx, c.channel); err != nil {
			return false, err
		}
	}
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
			if !worked {
				worked = true
				c.opts.Logger.Info("redis: the change subscription works again")
				c.notify()
			}
		case *goredis.Message:
			// This instance's own changes reached its hub through Store.
			if msg.Payload != c.opts.InstanceID {
				c.notify()
			}
		}
	}
}
