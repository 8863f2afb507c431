package models

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Group commit of the till's single transactions (POST /transactions, issue 14).
//
// Each sale a register posts alone used to be one statement and one commit: on two cores the
// executor start-up, the commit record and the WAL flush of every request cost more than its
// row. tillCommitter writes the transactions that registers post at the same moment with one
// multi-row insertTransactionsSQL, in one database transaction, and answers each caller only
// after that commit, so a 201 still means the sale is on disk.
//
// It adds no waiting of its own: at most tillMaxFlushes groups are being written at a time; a
// transaction arriving while all are busy waits in the queue, and the next flush to finish takes
// everything queued (up to tillMaxGroup). Alone, a till's sale is written at once; under load,
// groups grow with the load (self-clocking). Goroutines exist only while there is work.
//
// What a caller sees is what it saw when each sale had its own statement:
//   - validation, the store check and the refund's sale happen before queueing (RecordTransaction),
//     so an invalid sale is answered at once and never joins a group;
//   - idempotency is the statement's: ON CONFLICT on the till's own id, replay or conflict by
//     content hash. Two copies of one id in a group: the first is written, the later ones are
//     judged against what is then stored, as a concurrent duplicate always was;
//   - points are earned per row by the same statement (earnSQL), refunds debited in the same
//     transaction (settlePoints);
//   - if a group's statement fails, nothing of it is stored, and each transaction is written
//     again on its own, so a row that breaks a statement fails alone.
//
// A caller whose context ends while it waits in the queue is dropped from it; one that ends
// while its group is being written gets its context's error, and the group goes on (a retry is
// a replay). Groups are written under a context of their own, bounded by the latest deadline
// of their callers (DefaultStatementTimeout without one).
type tillCommitter struct {
	mu       sync.Mutex
	queue    []*tillWaiter
	flushing int
	room     chan struct{} // a slot per queued transaction: at most tillMaxQueued wait
	once     sync.Once
	// pool is db.Pool's configuration with at most tillMaxFlushes connections whose sessions
	// force generic plans. Groups vary in size, and PostgreSQL estimates unnest() of an array
	// parameter at 10 rows: for groups smaller than that the plan cache finds custom plans
	// cheaper and plans the whole insert again for every group (1-2.5 ms of CPU, more than
	// executing a group of 10). The generic plan serves every size; the batch endpoint keeps
	// custom plans on db.Pool, where up to 1000 rows steer the join.
	pool    *pgxpool.Pool
	poolErr error
}

const (
	// tillMaxFlushes is how many groups are written at once (and the connections of the
	// committer's pool, beside REGULARS_DB_MAX_CONNS). With 32 registers on two cores
	// (docs/benchmarks.md, "Till group commit"), 2 made groups of about 9 and cut the CPU per
	// sale by a third; 8 made groups of about 3 and saved little CPU, though on a machine
	// crowded by other work more flushes win a larger share of the cores.
	tillMaxFlushes = 2
	// tillMaxGroup is the most transactions one statement writes.
	tillMaxGroup = 256
	// tillMaxQueued bounds the queue; beyond it callers wait for room (or their context).
	tillMaxQueued = 4096
)

type tillWaiter struct {
	ctx   context.Context
	store *Store
	t     *Transaction
	done  chan struct{}
	res   BatchResult
	err   error
}

// commit queues t (valid, hashed, of store) for the next group and waits for its outcome.
func (c *tillCommitter) commit(ctx context.Context, db *DB, store *Store, t *Transaction) (BatchResult, error) {
	c.once.Do(func() {
		c.room = make(chan struct{}, tillMaxQueued)
		cfg := db.Pool.Config()
		cfg.MaxConns = tillMaxFlushes
		cfg.MinConns = 0
		cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_generic_plan"
		c.pool, c.poolErr = pgxpool.NewWithConfig(context.WithoutCancel(ctx), cfg)
	})
	if c.poolErr != nil {
		return BatchResult{}, fmt.Errorf("record transaction: %w", c.poolErr)
	}
	select {
	case c.room <- struct{}{}:
	case <-ctx.Done():
		return BatchResult{}, ctx.Err()
	}
	w := &tillWaiter{ctx: ctx, store: store, t: t, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, w)
	var group []*tillWaiter
	if c.flushing < tillMaxFlushes {
		c.flushing++
		group = c.take()
	}
	c.mu.Unlock()
	if group != nil {
		go c.run(db, group)
	}
	select {
	case <-w.done:
		return w.res, w.err
	case <-ctx.Done():
		return BatchResult{}, ctx.Err()
	}
}

// take removes up to tillMaxGroup waiters from the queue, leaving out those whose callers have
// gone. c.mu is held.
func (c *tillCommitter) take() []*tillWaiter {
	n := min(len(c.queue), tillMaxGroup)
	group := make([]*tillWaiter, 0, n)
	for _, w := range c.queue[:n] {
		<-c.room
		if w.ctx.Err() == nil {
			group = append(group, w)
		}
	}
	rest := copy(c.queue, c.queue[n:])
	clear(c.queue[rest:])
	c.queue = c.queue[:rest]
	return group
}

// close closes the pool of the group flushes, if it was opened; the caller makes sure that no
// flush runs (DB.Close).
func (c *tillCommitter) close() {
	c.once.Do(func() { c.poolErr = errors.New("the database handle is closed") })
	if c.pool != nil {
		c.pool.Close()
	}
}

// run writes group, then whatever queued meanwhile, until the queue is empty.
func (c *tillCommitter) run(db *DB, group []*tillWaiter) {
	for {
		if len(group) > 0 {
			c.flush(db, group)
		}
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.flushing--
			c.mu.Unlock()
			return
		}
		group = c.take()
		c.mu.Unlock()
	}
}

// flush writes a group, one statement per store, and answers its waiters.
func (c *tillCommitter) flush(db *DB, group []*tillWaiter) {
	var deadline time.Time
	for _, w := range group {
		d, ok := w.ctx.Deadline()
		if !ok {
			deadline = time.Now().Add(DefaultStatementTimeout)
			break
		}
		if d.After(deadline) {
			deadline = d
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	byStore := map[int64][]*tillWaiter{}
	var order []int64
	for _, w := range group {
		if _, ok := byStore[w.store.ID]; !ok {
			order = append(order, w.store.ID)
		}
		byStore[w.store.ID] = append(byStore[w.store.ID], w)
	}
	for _, id := range order {
		db.commitTillGroup(ctx, byStore[id])
	}
	for _, w := range group {
		close(w.done)
	}
}

// commitTillGroup writes the transactions of ws (one store) with one statement and sets each
// waiter's outcome. A later copy of an id is judged against the row its first copy found or
// stored (a replay or a conflict, as a concurrent duplicate is), or, if the first copy failed,
// goes in the next round. If a statement fails, each of its transactions is written on its own.
func (db *DB) commitTillGroup(ctx context.Context, ws []*tillWaiter) {
	store := ws[0].store
	for len(ws) > 0 {
		round, later := make([]*tillWaiter, 0, len(ws)), []*tillWaiter(nil)
		first := make(map[string]*tillWaiter, len(ws))
		for _, w := range ws {
			if first[w.t.ID] != nil {
				later = append(later, w)
				continue
			}
			first[w.t.ID] = w
			round = append(round, w)
		}
		if err := db.insertTillRound(ctx, store, round); err != nil && len(round) > 1 {
			for _, w := range round {
				_ = db.insertTillRound(ctx, store, []*tillWaiter{w})
			}
		}
		var judge []*tillWaiter
		ws = ws[:0]
		for _, w := range later {
			if first[w.t.ID].err == nil {
				judge = append(judge, w)
			} else {
				ws = append(ws, w)
			}
		}
		db.judgeCopies(ctx, store, judge)
	}
}

// judgeCopies answers later copies of ids whose row is stored: a replay if the content is the
// same, else a conflict.
func (db *DB) judgeCopies(ctx context.Context, store *Store, ws []*tillWaiter) {
	if len(ws) == 0 {
		return
	}
	ids := make([]string, len(ws))
	for i, w := range ws {
		ids[i] = w.t.ID
	}
	stored, err := db.findTransactions(ctx, db.tills.pool, store, ids)
	for _, w := range ws {
		s, ok := stored[w.t.ID]
		switch {
		case err != nil:
			w.err = err
		case !ok: // cannot happen: a stored row is never deleted
			w.err = fmt.Errorf("record transaction %s: neither inserted nor found", w.t.ID)
		case bytes.Equal(s.hash, w.t.hash):
			w.res = BatchResult{ID: w.t.ID, Status: 200, Transaction: s}
		default:
			w.res = BatchResult{ID: w.t.ID, Status: 409, Error: conflictError(w.t.ID)}
		}
	}
}

// insertTillRound writes ws (distinct ids of one store) with one statement. On failure every
// waiter gets the error and it is returned.
func (db *DB) insertTillRound(ctx context.Context, store *Store, ws []*tillWaiter) error {
	valid := make([]*Transaction, len(ws))
	results := make([]BatchResult, len(ws))
	idx := make(map[*Transaction]int, len(ws))
	for i, w := range ws {
		valid[i], idx[w.t] = w.t, i
		results[i] = BatchResult{ID: w.t.ID}
	}
	err := db.insertTransactions(ctx, db.tills.pool, store, valid, results, idx)
	for i, w := range ws {
		w.res, w.err = results[i], err
	}
	return err
}
