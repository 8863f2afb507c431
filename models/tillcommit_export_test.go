package models

// TillQueued is how many transactions wait in db's group-commit queue (tests only).
func (db *DB) TillQueued() int {
	db.tills.mu.Lock()
	defer db.tills.mu.Unlock()
	return len(db.tills.queue)
}

// TillMaxFlushes is how many groups are written at once.
const TillMaxFlushes = tillMaxFlushes

// StoreTxnsByTillID is the FROM clause that finds a store's transactions by till id.
const StoreTxnsByTillID = storeTxnsByTillID

// LockRefundedSalesSQL and DebitRefundsSQL are the flush's statements for refunds.
const (
	LockRefundedSalesSQL = lockRefundedSalesSQL
	DebitRefundsSQL      = debitRefundsSQL
)
