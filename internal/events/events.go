package events

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DefaultCapacity is how many events the bus keeps for replay.
const DefaultCapacity = 1024

// subscriberBuffer is how many events a slow subscriber may lag behind
// before it is dropped (its stream ends with an error; it resumes with
// Since).
const subscriberBuffer = 256

// reserveBlock is how many sequence numbers are reserved on disk at a
// time. Events are written to disk in the background (a publisher never
// waits for an fsync), so a gantryd killed before the last ones were
// written must still restart above every number it gave out: it restarts
// at the reservation.
const reserveBlock = 1024

var (
	bucketEvents = []byte("events")
	bucketMeta   = []byte("meta")
	keyReserved  = []byte("reserved")
)

// Event is one thing that happened.
type Event struct {
	Sequence   uint64            `json:"sequence"`
	Timestamp  time.Time         `json:"timestamp"`
	Namespace  string            `json:"namespace"`
	Topic      string            `json:"topic"`
	ID         string            `json:"id,omitempty"`
	Attributes map[string]string `json:"attributes,omitempty"`
}

// Bus delivers events to subscribers. Publish never blocks on a
// subscriber, nor on the disk: a writer goroutine persists the published
// events in batches (one bbolt commit for all that are pending), and the
// sequence numbers handed out are reserved on disk ahead (reserveBlock),
// so they keep growing across restarts even when the last events were
// not written (gantryd killed within a commit of them).
type Bus struct {
	db       *bolt.DB
	capacity int

	mu         sync.Mutex
	seq        uint64
	reserved   uint64  // sequence numbers up to this one are reserved on disk
	ring       []Event // oldest first, at most capacity
	subs       map[*sub]struct{}
	pending    []Event // published, not yet written
	persistErr error   // the writer's last failure, returned by the next Publish
	closed     bool

	wmu        sync.Mutex    // one flush at a time, in order
	wake       chan struct{} // a pending event for the writer
	stop       chan struct{}
	writerDone chan struct{}
}

type sub struct {
	filter Filter
	ch     chan Event
	lagged bool
}

// Open opens (or creates) the bus persisted at path. capacity <= 0 means
// DefaultCapacity.
func Open(path string, capacity int) (*Bus, error) {
	if capacity <= 0 {
		capacity = DefaultCapacity
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open event log %s: %w", path, err)
	}
	b := &Bus{db: db, capacity: capacity, subs: map[*sub]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), writerDone: make(chan struct{})}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyReserved); len(v) == 8 {
			b.reserved = binary.BigEndian.Uint64(v)
		}
		bk, err := tx.CreateBucketIfNotExists(bucketEvents)
		if err != nil {
			return err
		}
		return bk.ForEach(func(k, v []byte) error {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			b.ring = append(b.ring, ev)
			b.seq = ev.Sequence
			return nil
		})
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("read event log %s: %w", path, err)
	}
	if len(b.ring) > capacity {
		b.ring = b.ring[len(b.ring)-capacity:]
	}
	// Numbers up to the reservation may have been given out by a gantryd
	// that died before writing their events.
	b.seq = max(b.seq, b.reserved)
	go b.writer()
	return b, nil
}

// Close writes the pending events, ends every subscription and closes the
// file. After a Close the next Open continues at the same sequence number.
func (b *Bus) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	close(b.stop)
	<-b.writerDone
	b.mu.Lock()
	for s := range b.subs {
		close(s.ch)
		delete(b.subs, s)
	}
	seq := b.seq
	b.mu.Unlock()
	err := b.setReserved(seq)
	if cerr := b.db.Close(); err == nil {
		err = cerr
	}
	return err
}

// setReserved records on disk that sequence numbers up to n are taken.
func (b *Bus) setReserved(n uint64) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keyReserved, key(n))
	})
}

// writer persists the pending events until Close, which it answers by
// writing the last ones.
func (b *Bus) writer() {
	defer close(b.writerDone)
	for {
		select {
		case <-b.wake:
			b.flush()
		case <-b.stop:
			b.flush()
			return
		}
	}
}

// flush writes the pending events in one transaction and drops from disk
// those that fell out of the ring.
func (b *Bus) flush() {
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	evs := b.pending
	b.pending = nil
	var keep uint64
	if len(b.ring) > 0 {
		keep = b.ring[0].Sequence
	}
	b.mu.Unlock()
	if len(evs) == 0 {
		return
	}
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucketEvents)
		for _, ev := range evs {
			if ev.Sequence < keep {
				continue // already out of the ring
			}
			data, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := bk.Put(key(ev.Sequence), data); err != nil {
				return err
			}
		}
		c := bk.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) < keep; k, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.mu.Lock()
		b.persistErr = fmt.Errorf("persist events %d-%d: %w", evs[0].Sequence, evs[len(evs)-1].Sequence, err)
		b.mu.Unlock()
	}
}

// Sequence returns the last sequence number given.
func (b *Bus) Sequence() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// Publish records an event and delivers it. It is written to disk in the
// background; a failure to reserve its sequence number, or to write
// earlier events, is returned, but the event is still delivered to the
// live subscribers.
func (b *Bus) Publish(ns, topic, id string, attrs map[string]string) (Event, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	var err error
	if b.seq > b.reserved {
		// Once every reserveBlock events: the only commit a publisher
		// waits for.
		if err = b.setReserved(b.seq + reserveBlock); err == nil {
			b.reserved = b.seq + reserveBlock
		} else {
			err = fmt.Errorf("reserve event sequence numbers: %w", err)
		}
	}
	ev := Event{Sequence: b.seq, Timestamp: time.Now().UTC(), Namespace: ns, Topic: topic, ID: id, Attributes: attrs}
	b.ring = append(b.ring, ev)
	if len(b.ring) > b.capacity {
		b.ring = b.ring[1:]
	}
	if !b.closed {
		b.pending = append(b.pending, ev)
		select {
		case b.wake <- struct{}{}:
		default:
		}
	}
	if err == nil && b.persistErr != nil {
		err, b.persistErr = b.persistErr, nil
	}
	for s := range b.subs {
		if s.lagged || !s.filter.Match(ev) {
			continue
		}
		select {
		case s.ch <- ev:
		default:
			s.lagged = true
			close(s.ch)
			delete(b.subs, s)
		}
	}
	if err != nil {
		return ev, fmt.Errorf("persist event %d: %w", ev.Sequence, err)
	}
	return ev, nil
}

// Flush waits until every event published before it is written (or its
// write failed, which it returns).
func (b *Bus) Flush() error {
	b.flush()
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.persistErr
	b.persistErr = nil
	return err
}

func key(seq uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], seq)
	return k[:]
}

// ErrLagged ends a subscription whose reader fell too far behind.
var ErrLagged = fmt.Errorf("subscriber fell behind the event stream; resubscribe with the last sequence seen: %w", errdefs.ErrUnavailable)

// Subscribe calls fn for every held event with a sequence above since
// (since 0: none), then for every new event matching filter, until ctx
// ends (nil) or fn fails (its error). A subscriber that lags behind
// subscriberBuffer events gets ErrLagged.
func (b *Bus) Subscribe(ctx context.Context, since uint64, filter Filter, fn func(Event) error) error {
	s := &sub{filter: filter, ch: make(chan Event, subscriberBuffer)}
	b.mu.Lock()
	var replay []Event
	if since > 0 {
		for _, ev := range b.ring {
			if ev.Sequence > since && filter.Match(ev) {
				replay = append(replay, ev)
			}
		}
	}
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()
	for _, ev := range replay {
		if err := fn(ev); err != nil {
			return err
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-s.ch:
			if !ok {
				if s.lagged {
					return ErrLagged
				}
				return nil
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
}

// Filter selects events: each key lists accepted values (ORed); keys are
// ANDed. A value ending in "*" matches a prefix. Namespace "" in
// Namespaces means every namespace.
type Filter map[string][]string

// ParseFilter parses "key=value" filters; keys are topic, id and
// namespace.
func ParseFilter(filters []string) (Filter, error) {
	f := Filter{}
	for _, s := range filters {
		k, v, ok := strings.Cut(s, "=")
		k = strings.TrimSpace(k)
		v = strings.TrimPrefix(v, "=") // accept "=="
		switch {
		case !ok || v == "":
			return nil, fmt.Errorf("event filter %q: want key=value: %w", s, errdefs.ErrInvalidArgument)
		case k != "topic" && k != "id" && k != "namespace":
			return nil, fmt.Errorf("event filter %q: unknown key %q (want topic, id or namespace): %w", s, k, errdefs.ErrInvalidArgument)
		}
		f[k] = append(f[k], strings.TrimSpace(v))
	}
	return f, nil
}

// Match tells whether ev passes the filter.
func (f Filter) Match(ev Event) bool {
	for k, vals := range f {
		var got string
		switch k {
		case "topic":
			got = ev.Topic
		case "id":
			got = ev.ID
		case "namespace":
			got = ev.Namespace
		}
		ok := false
		for _, v := range vals {
			if p, prefix := strings.CutSuffix(v, "*"); prefix && strings.HasPrefix(got, p) || v == got {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
