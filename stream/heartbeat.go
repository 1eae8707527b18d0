package stream

import "time"

// runHeartbeat sends a comment to every idle registered subscriber each
// Config.Heartbeat, so proxies keep idle streams open and a vanished client
// is found by a failing write. A stream with an event still on its way
// gets no beat: the event keeps it alive, and beats piling up in its
// buffer would crowd out the counts (a stream too slow for the beats would
// never get the latest count). If that event is stuck, the write deadline
// drops the client. With no Heartbeat it only waits for Close.
func (h *Hub) runHeartbeat() {
	defer h.workers.Done()
	if h.cfg.Heartbeat <= 0 {
		<-h.stop
		return
	}
	ticker := time.NewTicker(h.cfg.Heartbeat)
	defer ticker.Stop()
	ev := heartbeatEvent()
	var batch []*subscriber
	for {
		select {
		case <-h.stop:
			return
		case <-ticker.C:
		}
		batch = batch[:0]
		h.mu.Lock()
		for _, sub := range h.subs {
			if sub.registered {
				batch = append(batch, sub)
			}
		}
		h.mu.Unlock()
		for i, sub := range batch {
			if sub.w.pending.Load() == 0 {
				h.publish(sub, ev)
			}
			batch[i] = nil
		}
	}
}
