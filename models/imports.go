package models

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Bulk import. Every row is validated in Go with the same rules as the API and streamed to
// Postgres with COPY, all inside one database transaction: a file loads completely or not at
// all. New rows go straight into their table when nothing can clash (the direct path, as fast as
// a plain COPY); otherwise through a temporary staging table and one set-based
// INSERT ... ON CONFLICT DO NOTHING, which sorts replays from conflicts. Row-by-row inserts would
// cost a round trip and an index probe per row. Measurements: docs/benchmarks.md.

// ImportResult counts what an import did.
type ImportResult struct {
	// Read is the number of data rows in the file.
	Read int64
	// Inserted is the number of rows newly stored.
	Inserted int64
	// Present is the number of rows that were stored already with the same content, or repeated
	// identically in the file.
	Present int64
	// Linked is the number of earlier unmatched purchases linked to imported members.
	Linked int64
}

// LineError is what is wrong with one line of an import file. Line 1 is the header.
type LineError struct {
	Line   int
	Fields map[string]string
}

func (e *LineError) Error() string {
	return fmt.Sprintf("line %d: %s", e.Line, formatFields(e.Fields))
}

// maxReportedLines bounds how many bad lines an ImportError lists: enough to see the pattern.
const maxReportedLines = 10

// ImportError is why an import loaded nothing: the first bad lines, in line order, and how many
// bad lines there were in all.
type ImportError struct {
	// Code is EINVALID when rows break the rules, ECONFLICT when they clash with stored rows or
	// with each other.
	Code  string
	Lines []LineError
	Total int
}

func (e *ImportError) Error() string {
	var b strings.Builder
	what := "bad line"
	if e.Code == ECONFLICT {
		what = "conflicting line"
	}
	if e.Total != 1 {
		what += "s"
	}
	fmt.Fprintf(&b, "nothing imported: %d %s", e.Total, what)
	for i := range e.Lines {
		b.WriteString("\n  ")
		b.WriteString(e.Lines[i].Error())
	}
	if more := e.Total - len(e.Lines); more > 0 {
		fmt.Fprintf(&b, "\n  ... and %d more", more)
	}
	return b.String()
}

// badLines collects LineErrors, keeping the first maxReportedLines by line number.
type badLines struct {
	lines []LineError
	total int
}

func (b *badLines) add(line int, fields map[string]string) {
	b.total++
	b.lines = append(b.lines, LineError{Line: line, Fields: fields})
	if len(b.lines) > 4*maxReportedLines { // keep memory bounded on a file full of bad lines
		b.trim()
	}
}

func (b *badLines) trim() {
	sort.SliceStable(b.lines, func(i, j int) bool { return b.lines[i].Line < b.lines[j].Line })
	if len(b.lines) > maxReportedLines {
		b.lines = b.lines[:maxReportedLines]
	}
}

func (b *badLines) err(code string) error {
	if b.total == 0 {
		return nil
	}
	b.trim()
	return &ImportError{Code: code, Lines: b.lines, Total: b.total}
}

// TransactionSource yields the transactions of an import in file order.
type TransactionSource interface {
	// Next returns the next transaction and the line it starts on, or io.EOF after the last.
	// A *LineError reports a line that could not be read; the import goes on to find more.
	// The returned input is only valid until the next call.
	Next() (line int, in *TransactionInput, err error)
}

// ImportTransactionsCSV imports transactions from a CSV file in the import format: a header
// row naming id,store,register,kind,occurred_at,amount,currency,member_card,member_email (in any
// order; refunds and member_phone may be added).
func (db *DB) ImportTransactionsCSV(ctx context.Context, r io.Reader, opts ...CSVOption) (*ImportResult, error) {
	src, err := NewTransactionCSV(r, opts...)
	if err != nil {
		return nil, err
	}
	return db.ImportTransactions(ctx, src)
}

// ImportTransactions validates every transaction of src as the API would and stores them all,
// or none if any is invalid or conflicts with a stored one (same store and id, other content).
// Transactions stored already with the same content, and identical repeats within src, are
// counted as present: importing a file twice stores it once.
//
// A source that can be rewound (ResettableSource) is first tried on the direct path: COPY
// straight into transactions, which is as fast as loading can be. If any id is stored already
// or repeats, the unique index stops that COPY at once, everything rolls back, and the source is
// read again through the staging path, which sorts replays from conflicts.
func (db *DB) ImportTransactions(ctx context.Context, src TransactionSource) (*ImportResult, error) {
	if r, ok := src.(ResettableSource); ok {
		res, err := db.importDirect(ctx, src)
		if !errors.Is(err, errNotFresh) {
			return res, err
		}
		if err := r.Reset(); err != nil {
			return nil, fmt.Errorf("import transactions: read the file again: %w", err)
		}
	}
	return db.importStaged(ctx, src)
}

// ResettableSource is a TransactionSource that can start again from its first row.
type ResettableSource interface {
	TransactionSource
	Reset() error
}

// errNotFresh says that the direct path met an id that is stored already or repeats in the file.
var errNotFresh = errors.New("some ids are stored already or repeat")

// importDirect copies validated rows straight into transactions, resolving members from an
// in-memory index of the members table, then checks refunds and lets refunds inherit their
// sale's member, as mergeRefundsSQL does.
func (db *DB) importDirect(ctx context.Context, src TransactionSource) (*ImportResult, error) {
	imp := &txnImport{db: db, ctx: ctx, src: src, now: db.Now(), stores: map[string]*Store{}, direct: true,
		values: make([]any, len(directColumns))}
	res := &ImportResult{}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		var err error
		if imp.members, err = loadMemberIndex(ctx, tx); err != nil {
			return err
		}
		n, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"transactions"}, directColumns, imp)
		if imp.fatal != nil {
			return imp.fatal
		}
		// Checked before bad lines: the server may have stopped the copy before the whole file
		// was read, and the staging path reads it all again.
		if IsUniqueViolation(copyErr, "transactions_store_id_txn_id_key") {
			return errNotFresh
		}
		if err := imp.bad.err(EINVALID); err != nil {
			return err
		}
		if copyErr != nil {
			return fmt.Errorf("import transactions: copy: %w", copyErr)
		}
		res.Read, res.Inserted = n, n
		if len(imp.refundRows) > 0 {
			if err := imp.checkDirectRefunds(tx); err != nil {
				return err
			}
		}
		return imp.mergeItems(tx)
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

var directColumns = []string{"store_id", "txn_id", "register", "kind", "occurred_at", "amount_minor", "currency",
	"member_id", "member_card", "member_email", "member_phone", "refunds_txn_id", "content_hash"}

// memberIndex maps the ways a customer identifies themselves to member ids (erased members
// excluded), so that the direct path resolves members as the SQL merge does.
type memberIndex struct {
	card, email, phone map[string]int64
}

func loadMemberIndex(ctx context.Context, tx pgx.Tx) (*memberIndex, error) {
	rows, err := tx.Query(ctx, `SELECT id, card, coalesce(lower(email), ''), coalesce(phone, '') FROM members WHERE status <> 'erased'`)
	if err != nil {
		return nil, fmt.Errorf("import transactions: load members: %w", err)
	}
	defer rows.Close()
	idx := &memberIndex{card: map[string]int64{}, email: map[string]int64{}, phone: map[string]int64{}}
	for rows.Next() {
		var id int64
		var card, email, phone string
		if err := rows.Scan(&id, &card, &email, &phone); err != nil {
			return nil, fmt.Errorf("import transactions: load members: %w", err)
		}
		idx.card[card] = id
		if email != "" {
			idx.email[email] = id
		}
		if phone != "" {
			idx.phone[phone] = id
		}
	}
	return idx, rows.Err()
}

// find resolves a presented card, email or phone: card first, then email, then phone.
func (idx *memberIndex) find(m *TransactionMember) any {
	for _, k := range []struct {
		m   map[string]int64
		key string
	}{{idx.card, m.Card}, {idx.email, m.Email}, {idx.phone, m.Phone}} {
		if k.key == "" {
			continue
		}
		if id, ok := k.m[k.key]; ok {
			return id
		}
	}
	return nil
}

// importStaged copies validated rows into a staging table and merges them with one
// INSERT ... SELECT ... ON CONFLICT DO NOTHING, then tells replays from conflicts.
func (db *DB) importStaged(ctx context.Context, src TransactionSource) (*ImportResult, error) {
	imp := &txnImport{db: db, ctx: ctx, src: src, now: db.Now(), stores: map[string]*Store{}, values: make([]any, len(txnStagingColumns))}
	res := &ImportResult{}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, createTxnStagingSQL); err != nil {
			return fmt.Errorf("import transactions: create staging table: %w", err)
		}
		n, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"import_transactions"}, txnStagingColumns, imp)
		if imp.fatal != nil {
			return imp.fatal
		}
		if err := imp.bad.err(EINVALID); err != nil {
			return err
		}
		if copyErr != nil {
			return fmt.Errorf("import transactions: copy: %w", copyErr)
		}
		res.Read = n
		// Fresh statistics, so that the merge hashes the small side (members) instead of probing.
		if _, err := tx.Exec(ctx, `ANALYZE import_transactions`); err != nil {
			return fmt.Errorf("import transactions: analyze: %w", err)
		}
		if imp.refunds > 0 {
			if err := imp.checkRefunds(tx); err != nil {
				return err
			}
		}
		// Sales first, so that a refund of a sale in the same file finds its member.
		for _, q := range []string{mergeSalesSQL, mergeRefundsSQL} {
			tag, err := tx.Exec(ctx, q)
			if err != nil {
				return fmt.Errorf("import transactions: merge: %w", err)
			}
			res.Inserted += tag.RowsAffected()
		}
		// Every row inserted itself: nothing can conflict. Otherwise some ids were stored before
		// (or repeat in the file, or a till posted them meanwhile): compare contents.
		if res.Inserted < res.Read {
			if err := imp.checkConflicts(tx); err != nil {
				return err
			}
		}
		return imp.mergeItems(tx)
	})
	if err != nil {
		return nil, err
	}
	res.Present = res.Read - res.Inserted
	return res, nil
}

// mergeItems stores the receipt lines collected while copying.
func (imp *txnImport) mergeItems(tx pgx.Tx) error {
	if len(imp.items) == 0 {
		return nil
	}
	ctx := imp.ctx
	if imp.direct { // the staging path made its tables already
		if _, err := tx.Exec(ctx, createTxnStagingSQL); err != nil {
			return fmt.Errorf("import transactions: create staging table: %w", err)
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_items"}, []string{"store_id", "txn_id", "line", "sku", "qty", "price"},
		pgx.CopyFromSlice(len(imp.items), func(i int) ([]any, error) {
			it := &imp.items[i]
			return []any{it.storeID, it.txnID, it.line, it.sku, it.qty, it.price}, nil
		})); err != nil {
		return fmt.Errorf("import transactions: copy items: %w", err)
	}
	if _, err := tx.Exec(ctx, `ANALYZE import_items`); err != nil {
		return fmt.Errorf("import transactions: analyze: %w", err)
	}
	if _, err := tx.Exec(ctx, mergeItemsSQL); err != nil {
		return fmt.Errorf("import transactions: merge items: %w", err)
	}
	return nil
}

// The staging tables live for one transaction and are never WAL-logged.
const createTxnStagingSQL = `
CREATE TEMP TABLE import_transactions (
    line int NOT NULL, store_id bigint NOT NULL, txn_id text NOT NULL, register text NOT NULL,
    kind text NOT NULL, occurred_at timestamptz NOT NULL, amount bigint NOT NULL, currency text NOT NULL,
    card text, email text, phone text, refunds text, hash bytea NOT NULL
) ON COMMIT DROP;
CREATE TEMP TABLE import_items (
    store_id bigint NOT NULL, txn_id text NOT NULL, line int NOT NULL, sku text NOT NULL,
    qty int NOT NULL, price bigint NOT NULL
) ON COMMIT DROP`

var txnStagingColumns = []string{"line", "store_id", "txn_id", "register", "kind", "occurred_at", "amount", "currency",
	"card", "email", "phone", "refunds", "hash"}

// mergeSalesSQL resolves members as insertTransactionsSQL does (card, then email, then phone),
// but with joins instead of per-row subqueries: on a big file Postgres hashes members once.
// ON CONFLICT DO NOTHING skips ids already stored and the second copy of an id repeated in the
// file; checkConflicts then tells replays from conflicts.
const mergeSalesSQL = `
INSERT INTO transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency,
                          member_id, member_card, member_email, member_phone, refunds_txn_id, content_hash)
SELECT s.store_id, s.txn_id, s.register, s.kind, s.occurred_at, s.amount, s.currency,
       coalesce(mc.id, me.id, mp.id), s.card, s.email, s.phone, s.refunds, s.hash
FROM import_transactions s
LEFT JOIN members mc ON mc.card = s.card AND mc.status <> 'erased'
LEFT JOIN members me ON lower(me.email) = s.email AND me.status <> 'erased'
LEFT JOIN members mp ON mp.phone = s.phone AND mp.status <> 'erased'
WHERE s.refunds IS NULL
ON CONFLICT (store_id, txn_id) DO NOTHING`

// mergeRefundsSQL is mergeSalesSQL for refunds that name their sale: one without a member of
// its own inherits the sale's, as the API does, and each keeps the sale's row id (refunds_id,
// migration 00028).
const mergeRefundsSQL = `
INSERT INTO transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency,
                          member_id, member_card, member_email, member_phone, refunds_txn_id, refunds_id, content_hash)
SELECT s.store_id, s.txn_id, s.register, s.kind, s.occurred_at, s.amount, s.currency,
       coalesce(mc.id, me.id, mp.id, sale.member_id), s.card, s.email, s.phone, s.refunds, sale.id, s.hash
FROM import_transactions s
LEFT JOIN members mc ON mc.card = s.card AND mc.status <> 'erased'
LEFT JOIN members me ON lower(me.email) = s.email AND me.status <> 'erased'
LEFT JOIN members mp ON mp.phone = s.phone AND mp.status <> 'erased'
LEFT JOIN transactions sale ON sale.store_id = s.store_id AND sale.txn_id = s.refunds
WHERE s.refunds IS NOT NULL
ON CONFLICT (store_id, txn_id) DO NOTHING`

// mergeItemsSQL adds the receipt lines of the transactions just stored. Lines of transactions
// stored before are there already: equal content hashes mean equal items. Each line carries its
// transaction's member, time and kind (migration 00028), as stored by the merge above.
const mergeItemsSQL = `
INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor, member_id, occurred_at, kind)
SELECT t.id, i.line, i.sku, i.qty, i.price, t.member_id, t.occurred_at, t.kind
FROM import_items i JOIN transactions t ON t.store_id = i.store_id AND t.txn_id = i.txn_id
ON CONFLICT (transaction_id, line) DO NOTHING`

// txnImport is the CopyFromSource that validates rows on their way into Postgres.
type txnImport struct {
	db      *DB
	ctx     context.Context
	src     TransactionSource
	now     time.Time
	stores  map[string]*Store // by code; nil for codes that name no store
	values  []any
	items   []stagedItem
	refunds int
	bad     badLines
	fatal   error

	direct     bool         // copying straight into transactions
	members    *memberIndex // direct path only
	refundRows []refundRow  // direct path only: refunds to check after the copy
}

type refundRow struct {
	line    int32
	storeID int64
	id      string
	target  string
}

type stagedItem struct {
	storeID int64
	txnID   string
	line    int32
	sku     string
	qty     int32
	price   int64
}

var errBadLines = errors.New("the file has bad lines")

// Next implements pgx.CopyFromSource. After the first bad line nothing more is sent, but the
// rest of the file is still checked so that the error can say how many lines are bad.
func (imp *txnImport) Next() bool {
	for {
		line, in, err := imp.src.Next()
		if err == io.EOF {
			return false
		}
		var le *LineError
		if errors.As(err, &le) {
			imp.bad.add(le.Line, le.Fields)
			continue
		}
		if err != nil {
			imp.fatal = fmt.Errorf("import transactions: read line %d: %w", line, err)
			return false
		}
		store, err := imp.store(in.Store)
		if err != nil {
			imp.fatal = err
			return false
		}
		fe := FieldErrors{}
		t := imp.db.checkTransaction(in, store, imp.now, fe)
		if len(fe) > 0 {
			imp.bad.add(line, fe)
			continue
		}
		if imp.bad.total > 0 {
			continue
		}
		imp.stage(line, t)
		return true
	}
}

func (imp *txnImport) stage(line int, t *Transaction) {
	for i, it := range t.Items {
		imp.items = append(imp.items, stagedItem{storeID: t.storeID, txnID: t.ID, line: int32(i + 1), sku: it.SKU, qty: int32(it.Qty), price: it.UnitPrice})
	}
	var card, email, phone, refunds, memberID any
	if m := t.Member; m != nil {
		card, email, phone = nullable(m.Card), nullable(m.Email), nullable(m.Phone)
	}
	if t.Refunds != "" {
		refunds = t.Refunds
		imp.refunds++
	}
	v := imp.values
	if !imp.direct {
		v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7] = int32(line), t.storeID, t.ID, t.Register, t.Kind, t.OccurredAt, t.Amount, t.Currency
		v[8], v[9], v[10], v[11], v[12] = card, email, phone, refunds, t.contentHash()
		return
	}
	if t.Member != nil {
		memberID = imp.members.find(t.Member)
	}
	if t.Refunds != "" {
		imp.refundRows = append(imp.refundRows, refundRow{line: int32(line), storeID: t.storeID, id: t.ID, target: t.Refunds})
	}
	v[0], v[1], v[2], v[3], v[4], v[5], v[6] = t.storeID, t.ID, t.Register, t.Kind, t.OccurredAt, t.Amount, t.Currency
	v[7], v[8], v[9], v[10], v[11], v[12] = memberID, card, email, phone, refunds, t.contentHash()
}

// Values implements pgx.CopyFromSource.
func (imp *txnImport) Values() ([]any, error) { return imp.values, nil }

// Err implements pgx.CopyFromSource: a bad line aborts the copy.
func (imp *txnImport) Err() error {
	if imp.fatal != nil {
		return imp.fatal
	}
	if imp.bad.total > 0 {
		return errBadLines
	}
	return nil
}

// store looks a store code up once per import.
func (imp *txnImport) store(code string) (*Store, error) {
	if code == "" {
		return nil, nil
	}
	if s, ok := imp.stores[code]; ok {
		return s, nil
	}
	s, err := imp.db.FindStoreByCode(imp.ctx, code)
	if err != nil && ErrorCode(err) != ENOTFOUND {
		return nil, fmt.Errorf("import transactions: find store %s: %w", code, err)
	}
	imp.stores[code] = s
	return s, nil
}

func (imp *txnImport) storeCode(id int64) string {
	for code, s := range imp.stores {
		if s != nil && s.ID == id {
			return code
		}
	}
	return strconv.FormatInt(id, 10)
}

// checkRefunds makes sure every refund that names a sale names a sale of the same store,
// stored already or in the file.
func (imp *txnImport) checkRefunds(tx pgx.Tx) error {
	rows, err := tx.Query(imp.ctx, `
		WITH r AS (
		    SELECT line, store_id, refunds FROM import_transactions WHERE refunds IS NOT NULL
		), named AS (
		    SELECT DISTINCT f.store_id, f.txn_id FROM import_transactions f
		    WHERE f.kind = 'sale' AND (f.store_id, f.txn_id) IN (SELECT store_id, refunds FROM r)
		)
		SELECT r.line, r.store_id, r.refunds, coalesce(t.kind, '')
		FROM r
		LEFT JOIN transactions t ON t.store_id = r.store_id AND t.txn_id = r.refunds
		LEFT JOIN named n ON n.store_id = r.store_id AND n.txn_id = r.refunds
		WHERE coalesce(t.kind, CASE WHEN n.txn_id IS NOT NULL THEN 'sale' END, '') <> 'sale'`)
	if err != nil {
		return fmt.Errorf("import transactions: check refunds: %w", err)
	}
	return imp.refundErrors(rows)
}

// refundErrors turns rows of (line, store id, named sale, its kind or "") into bad lines.
func (imp *txnImport) refundErrors(rows pgx.Rows) error {
	defer rows.Close()
	var bad badLines
	for rows.Next() {
		var line int
		var storeID int64
		var refunds, kind string
		if err := rows.Scan(&line, &storeID, &refunds, &kind); err != nil {
			return fmt.Errorf("import transactions: check refunds: %w", err)
		}
		why := fmt.Sprintf("no sale %s in store %s, stored or in the file", refunds, imp.storeCode(storeID))
		if kind != "" {
			why = fmt.Sprintf("%s is a refund, not a sale", refunds)
		}
		bad.add(line, map[string]string{"refunds": why})
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("import transactions: check refunds: %w", err)
	}
	return bad.err(EINVALID)
}

// checkDirectRefunds is checkRefunds for the direct path, where the file's rows are in
// transactions already; then refunds without a member of their own inherit their sale's.
func (imp *txnImport) checkDirectRefunds(tx pgx.Tx) error {
	n := len(imp.refundRows)
	lines, storeIDs, ids, targets := make([]int32, n), make([]int64, n), make([]string, n), make([]string, n)
	for i, r := range imp.refundRows {
		lines[i], storeIDs[i], ids[i], targets[i] = r.line, r.storeID, r.id, r.target
	}
	rows, err := tx.Query(imp.ctx, `
		SELECT r.line, r.store_id, r.target, coalesce(t.kind, '')
		FROM unnest($1::int[], $2::bigint[], $3::text[]) AS r(line, store_id, target)
		LEFT JOIN transactions t ON t.store_id = r.store_id AND t.txn_id = r.target
		WHERE coalesce(t.kind, '') <> 'sale'`, lines, storeIDs, targets)
	if err != nil {
		return fmt.Errorf("import transactions: check refunds: %w", err)
	}
	if err := imp.refundErrors(rows); err != nil {
		return err
	}
	// One UPDATE of the file's refunds: the member of the sale where they have none, and the
	// sale's row id (refunds_id, migration 00028), which the COPY could not look up.
	_, err = tx.Exec(imp.ctx, `
		UPDATE transactions r SET member_id = coalesce(r.member_id, s.member_id), refunds_id = s.id
		FROM unnest($1::bigint[], $2::text[]) AS x(store_id, txn_id), transactions s
		WHERE r.store_id = x.store_id AND r.txn_id = x.txn_id
		  AND s.store_id = r.store_id AND s.txn_id = r.refunds_txn_id`, storeIDs, ids)
	if err != nil {
		return fmt.Errorf("import transactions: refunds inherit members: %w", err)
	}
	return nil
}

// checkConflicts finds the rows whose id is stored with other content: stored before, posted
// meanwhile, or an earlier line of the file with the same id.
func (imp *txnImport) checkConflicts(tx pgx.Tx) error {
	rows, err := tx.Query(imp.ctx, `
		SELECT s.line, s.store_id, s.txn_id, t.content_hash
		FROM import_transactions s
		JOIN transactions t ON t.store_id = s.store_id AND t.txn_id = s.txn_id
		WHERE t.content_hash <> s.hash`)
	if err != nil {
		return fmt.Errorf("import transactions: check conflicts: %w", err)
	}
	type conflict struct {
		line    int
		storeID int64
		id      string
		hash    []byte
	}
	var found []conflict
	total := 0
	for rows.Next() {
		var c conflict
		if err := rows.Scan(&c.line, &c.storeID, &c.id, &c.hash); err != nil {
			return fmt.Errorf("import transactions: check conflicts: %w", err)
		}
		total++
		found = append(found, c)
		if len(found) > 4*maxReportedLines {
			sort.Slice(found, func(i, j int) bool { return found[i].line < found[j].line })
			found = found[:maxReportedLines]
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("import transactions: check conflicts: %w", err)
	}
	if total == 0 {
		return nil
	}
	sort.Slice(found, func(i, j int) bool { return found[i].line < found[j].line })
	if len(found) > maxReportedLines {
		found = found[:maxReportedLines]
	}
	lines := make([]LineError, 0, len(found))
	for _, c := range found {
		// The stored row came from an earlier line of this file if one has its content.
		var first *int
		if err := tx.QueryRow(imp.ctx, `SELECT min(line) FROM import_transactions WHERE store_id = $1 AND txn_id = $2 AND hash = $3`,
			c.storeID, c.id, c.hash).Scan(&first); err != nil {
			return fmt.Errorf("import transactions: check conflicts: %w", err)
		}
		why := fmt.Sprintf("%s was already recorded in store %s with different content", c.id, imp.storeCode(c.storeID))
		if first != nil {
			why = fmt.Sprintf("%s is also on line %d with different content", c.id, *first)
		}
		lines = append(lines, LineError{Line: c.line, Fields: map[string]string{"id": why}})
	}
	return &ImportError{Code: ECONFLICT, Lines: lines, Total: total}
}

// csvFile reads an import CSV whose header names its columns.
type csvFile struct {
	r   *csv.Reader
	col map[string]int
}

// CSVOption changes how an import file is read.
type CSVOption func(*csvOptions)

type csvOptions struct {
	delimiter rune // 0: detected from the header line
}

// WithDelimiter reads the file with fields separated by d (',', ';' or '\t') instead of the
// separator detected from its header line.
func WithDelimiter(d rune) CSVOption { return func(o *csvOptions) { o.delimiter = d } }

// csvDelimiters are the separators an import file may use: a comma, and the semicolon and tab
// that spreadsheets write where the comma is the decimal separator (Excel in Norway, Germany, …).
const csvDelimiters = ",;\t"

// maxHeaderBytes bounds the header line read to detect the separator: a file without a line end
// in its first 64 KiB is no import file, and is then read with commas.
const maxHeaderBytes = 64 << 10

// detectDelimiter returns the separator of an import file from its header line: the one of
// csvDelimiters that occurs most often outside quotes (a comma when none does, or on a tie).
func detectDelimiter(header []byte) rune {
	counts := map[rune]int{}
	quoted := false
	for _, c := range string(header) {
		switch {
		case c == '"':
			quoted = !quoted
		case !quoted && strings.ContainsRune(csvDelimiters, c):
			counts[c]++
		}
	}
	best := ','
	for _, d := range csvDelimiters {
		if counts[d] > counts[best] {
			best = d
		}
	}
	return best
}

// openCSV reads the header and checks that it names every required column and nothing unknown.
// The separator is detected from the header line unless an option sets it; a UTF-8 byte-order
// mark and CRLF line ends (as Excel writes them) are fine.
func openCSV(r io.Reader, required, optional []string, opts ...CSVOption) (*csvFile, error) {
	var o csvOptions
	for _, opt := range opts {
		opt(&o)
	}
	br := bufio.NewReaderSize(r, maxHeaderBytes)
	if o.delimiter == 0 {
		// Peek the header line without consuming it; a longer one is read with commas.
		head, _ := br.Peek(maxHeaderBytes)
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			head = head[:i]
		}
		o.delimiter = detectDelimiter(head)
	}
	cr := csv.NewReader(br)
	cr.Comma = o.delimiter
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &ImportError{Code: EINVALID, Total: 1, Lines: []LineError{{Line: 1, Fields: map[string]string{
			"header": "the file is empty; the first line must name the columns: " + strings.Join(required, ",")}}}}
	}
	if err != nil {
		return nil, &ImportError{Code: EINVALID, Total: 1, Lines: []LineError{{Line: 1, Fields: map[string]string{"header": err.Error()}}}}
	}
	known := map[string]bool{}
	for _, c := range append(append([]string{}, required...), optional...) {
		known[c] = true
	}
	f := &csvFile{r: cr, col: map[string]int{}}
	fe := FieldErrors{}
	for i, name := range header {
		if i == 0 {
			name = strings.TrimPrefix(name, "\ufeff") // a byte-order mark, as spreadsheets write
		}
		name = strings.ToLower(strings.TrimSpace(name))
		switch {
		case !known[name]:
			fe.Add("header", fmt.Sprintf("unknown column %q (%s); the columns are %s", name, separatorHint(name, o.delimiter), strings.Join(required, ",")))
		case f.col[name] != 0:
			fe.Add("header", fmt.Sprintf("column %q appears twice", name))
		}
		f.col[name] = i + 1 // 0 means absent
	}
	for _, c := range required {
		if f.col[c] == 0 {
			fe.Add("header", fmt.Sprintf("missing column %q; the columns are %s", c, strings.Join(required, ",")))
		}
	}
	if len(fe) > 0 {
		return nil, &ImportError{Code: EINVALID, Total: 1, Lines: []LineError{{Line: 1, Fields: fe}}}
	}
	return f, nil
}

// separatorHint says which separator the header was read with, and when an unknown column name
// holds another one, suggests it: the usual reason is a file with another separator. The
// `regulars import` command is where these messages are read, hence its flag's name.
func separatorHint(name string, used rune) string {
	hint := "separator " + quoteDelimiter(used)
	for _, d := range csvDelimiters {
		if d != used && strings.ContainsRune(name, d) {
			return hint + "; use --delimiter " + quoteDelimiter(d) + "?"
		}
	}
	return hint
}

// quoteDelimiter writes a separator as one types it for --delimiter.
func quoteDelimiter(d rune) string {
	if d == '\t' {
		return `"\t"`
	}
	return `"` + string(d) + `"`
}

// next returns the next record and its line, io.EOF, or a *LineError for an unreadable line.
func (f *csvFile) next() ([]string, int, error) {
	rec, err := f.r.Read()
	if err == io.EOF {
		return nil, 0, io.EOF
	}
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		why := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			why = fmt.Sprintf("has %d fields, the header has %d", len(rec), len(f.col))
		}
		return nil, pe.StartLine, &LineError{Line: pe.StartLine, Fields: map[string]string{"line": why}}
	}
	if err != nil {
		return nil, 0, err
	}
	line, _ := f.r.FieldPos(0)
	return rec, line, nil
}

// get returns column name of rec, or "" when the file has no such column.
func (f *csvFile) get(rec []string, name string) string {
	if i := f.col[name]; i > 0 {
		return rec[i-1]
	}
	return ""
}

// TransactionCSV reads transactions in the import CSV format.
type TransactionCSV struct {
	f   *csvFile
	in  TransactionInput
	ref MemberRef
}

var (
	txnCSVColumns         = []string{"id", "store", "register", "kind", "occurred_at", "amount", "currency", "member_card", "member_email"}
	txnCSVOptionalColumns = []string{"member_phone", "refunds"}
)

// NewTransactionCSV reads the header of r; the error is an *ImportError naming line 1 when it
// is not the import format. When r can seek (a file), the source is a ResettableSource, so that
// the import may try its direct path first.
func NewTransactionCSV(r io.Reader, opts ...CSVOption) (TransactionSource, error) {
	rs, seekable := r.(io.ReadSeeker)
	var start int64
	if seekable {
		var err error
		if start, err = rs.Seek(0, io.SeekCurrent); err != nil {
			seekable = false // a pipe or terminal: read once
		}
	}
	f, err := openCSV(r, txnCSVColumns, txnCSVOptionalColumns, opts...)
	if err != nil {
		return nil, err
	}
	if seekable {
		return &seekableTransactionCSV{TransactionCSV: TransactionCSV{f: f}, r: rs, start: start, opts: opts}, nil
	}
	return &TransactionCSV{f: f}, nil
}

// seekableTransactionCSV is a TransactionCSV on a file that can be read again.
type seekableTransactionCSV struct {
	TransactionCSV
	r     io.ReadSeeker
	start int64
	opts  []CSVOption
}

// Reset implements ResettableSource.
func (c *seekableTransactionCSV) Reset() error {
	if _, err := c.r.Seek(c.start, io.SeekStart); err != nil {
		return err
	}
	f, err := openCSV(c.r, txnCSVColumns, txnCSVOptionalColumns, c.opts...)
	if err != nil {
		return err
	}
	c.f = f
	return nil
}

// Next implements TransactionSource.
func (c *TransactionCSV) Next() (int, *TransactionInput, error) {
	rec, line, err := c.f.next()
	if err != nil {
		return line, nil, err
	}
	f := c.f
	c.in = TransactionInput{
		ID: f.get(rec, "id"), Store: f.get(rec, "store"), Register: f.get(rec, "register"), Kind: f.get(rec, "kind"),
		OccurredAt: f.get(rec, "occurred_at"), Amount: parseMinor(f.get(rec, "amount")), Currency: f.get(rec, "currency"),
		Refunds: f.get(rec, "refunds"),
	}
	c.ref = MemberRef{Card: f.get(rec, "member_card"), Email: f.get(rec, "member_email"), Phone: f.get(rec, "member_phone")}
	if c.ref != (MemberRef{}) {
		c.in.Member = &c.ref
	}
	return line, &c.in, nil
}

// parseMinor reads an amount column as the API reads a JSON number: an integer of minor units.
func parseMinor(s string) Int {
	if s == "" {
		return Int{}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	switch {
	case err == nil:
		return NewInt(v)
	case strings.ContainsAny(s, ".,"):
		return Int{Present: true, Bad: "must be an integer number of minor units (12950 for 129.50), not a decimal"}
	default:
		return Int{Present: true, Bad: "must be an integer"}
	}
}

// MemberImport is one member as an import file gives it; every field is text as in the file.
type MemberImport struct {
	Card             string
	Email            string
	Name             string
	Phone            string
	HomeStore        string
	JoinedAt         string // RFC 3339, or a date (the start of that day in the home store's zone)
	MarketingConsent string // true, false or empty (not asked)
	Birthday         string // --MM-DD, YYYY-MM-DD or empty (ParseBirthday); an optional column
}

// MemberSource yields the members of an import in file order.
type MemberSource interface {
	// Next returns the next member and its line, or io.EOF after the last; a *LineError reports
	// an unreadable line. The returned value is only valid until the next call.
	Next() (line int, in *MemberImport, err error)
}

// MemberCSV reads members in the import CSV format.
type MemberCSV struct {
	f  *csvFile
	in MemberImport
}

var (
	memberCSVColumns         = []string{"card", "email", "name", "phone", "home_store", "joined_at", "marketing_consent"}
	memberCSVOptionalColumns = []string{"birthday"}
)

// NewMemberCSV reads the header of r.
func NewMemberCSV(r io.Reader, opts ...CSVOption) (*MemberCSV, error) {
	f, err := openCSV(r, memberCSVColumns, memberCSVOptionalColumns, opts...)
	if err != nil {
		return nil, err
	}
	return &MemberCSV{f: f}, nil
}

// Next implements MemberSource.
func (c *MemberCSV) Next() (int, *MemberImport, error) {
	rec, line, err := c.f.next()
	if err != nil {
		return line, nil, err
	}
	f := c.f
	c.in = MemberImport{Card: f.get(rec, "card"), Email: f.get(rec, "email"), Name: f.get(rec, "name"), Phone: f.get(rec, "phone"),
		HomeStore: f.get(rec, "home_store"), JoinedAt: f.get(rec, "joined_at"), MarketingConsent: f.get(rec, "marketing_consent"),
		Birthday: f.get(rec, "birthday")}
	return line, &c.in, nil
}

// ImportMembersCSV imports members from a CSV file with the header
// card,email,name,phone,home_store,joined_at,marketing_consent (and optionally birthday).
func (db *DB) ImportMembersCSV(ctx context.Context, r io.Reader, opts ...CSVOption) (*ImportResult, error) {
	src, err := NewMemberCSV(r, opts...)
	if err != nil {
		return nil, err
	}
	return db.ImportMembers(ctx, src)
}

// ImportMembers stores the members of src as active members (the shop vouches for them), with
// marketing consent confirmed and recorded with source "import" where the file says true. All
// or nothing. A card already stored with the same email, phone, name, home store (and joined_at
// and birthday, when the file gives them) is present, not a second member; with other data it is a conflict:
// an import never overwrites what a member may have changed since. Cards of erased members
// count as present and are not brought back. Consent is not compared, for the same reason.
// Afterwards earlier purchases on the new members' cards, emails and phones are linked.
func (db *DB) ImportMembers(ctx context.Context, src MemberSource) (*ImportResult, error) {
	imp := &memberImport{db: db, ctx: ctx, src: src, now: db.Now(), stores: map[string]*Store{}, values: make([]any, len(memberStagingColumns))}
	res := &ImportResult{}
	err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			CREATE TEMP TABLE import_members (
			    line int NOT NULL, card text NOT NULL, email text, phone text, name text NOT NULL,
			    home_store_id bigint, joined_at timestamptz, consent boolean, birth_date date, hash bytea NOT NULL
			) ON COMMIT DROP`); err != nil {
			return fmt.Errorf("import members: create staging table: %w", err)
		}
		n, copyErr := tx.CopyFrom(ctx, pgx.Identifier{"import_members"}, memberStagingColumns, imp)
		if imp.fatal != nil {
			return imp.fatal
		}
		if err := imp.bad.err(EINVALID); err != nil {
			return err
		}
		if copyErr != nil {
			return fmt.Errorf("import members: copy: %w", copyErr)
		}
		res.Read = n
		if _, err := tx.Exec(ctx, `ANALYZE import_members`); err != nil {
			return fmt.Errorf("import members: analyze: %w", err)
		}
		if err := checkMemberConflicts(ctx, tx); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, mergeMembersSQL).Scan(&res.Inserted)
		if err != nil {
			return fmt.Errorf("import members: merge: %w", memberConflict(err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.Present = res.Read - res.Inserted
	if res.Inserted > 0 {
		// After the commit: linking is derived state, and the cron sweep repeats it if this fails.
		if res.Linked, err = db.LinkUnmatched(ctx); err != nil {
			return res, fmt.Errorf("import members: imported %d, but %w", res.Inserted, err)
		}
	}
	return res, nil
}

var memberStagingColumns = []string{"line", "card", "email", "phone", "name", "home_store_id", "joined_at", "consent", "birth_date", "hash"}

// mergeMembersSQL inserts the members not stored yet (one per card: repeats in the file are
// identical, checkMemberConflicts made sure) and records the consent answers they came with.
const mergeMembersSQL = `
WITH ins AS (
    INSERT INTO members (card, email, phone, name, home_store_id, status, marketing_consent, source, joined_at, birth_date)
    SELECT DISTINCT ON (card) card, email, phone, name, home_store_id, 'active',
           CASE WHEN consent THEN 'confirmed' ELSE 'none' END, 'import', coalesce(joined_at, now()), birth_date
    FROM import_members ORDER BY card, line
    ON CONFLICT (card) DO NOTHING
    RETURNING id, card
), consent AS (
    INSERT INTO consents (member_id, purpose, granted, source)
    SELECT ins.id, 'marketing_email', c.consent, 'import'
    FROM ins JOIN (SELECT DISTINCT card, consent FROM import_members WHERE consent IS NOT NULL) c ON c.card = ins.card
)
SELECT count(*) FROM ins`

// checkMemberConflicts finds lines that clash with stored members or with each other: a card
// stored (or earlier in the file) with other data, an email or phone of another card.
func checkMemberConflicts(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `
		WITH first AS (
		    SELECT DISTINCT ON (card) card, line, hash FROM import_members ORDER BY card, line
		)
		SELECT s.line, 'card', format('is also on line %s with other data', f.line)
		FROM import_members s JOIN first f ON f.card = s.card AND f.hash <> s.hash
		UNION ALL
		SELECT s.line, 'card', 'belongs to a member stored with other email, phone, name, home store, joined_at or birthday'
		FROM import_members s JOIN members m ON m.card = s.card
		WHERE m.status <> 'erased' AND (m.email IS DISTINCT FROM s.email OR m.phone IS DISTINCT FROM s.phone OR m.name <> s.name
		      OR m.home_store_id IS DISTINCT FROM s.home_store_id OR m.joined_at <> coalesce(s.joined_at, m.joined_at)
		      OR m.birth_date IS DISTINCT FROM coalesce(s.birth_date, m.birth_date))
		UNION ALL
		SELECT s.line, 'email', format('belongs to card %s (line %s)', o.card, o.line)
		FROM import_members s JOIN import_members o ON o.email = s.email AND o.card <> s.card AND o.line < s.line
		UNION ALL
		SELECT s.line, 'email', 'belongs to another member'
		FROM import_members s JOIN members m ON lower(m.email) = s.email AND m.card <> s.card
		UNION ALL
		SELECT s.line, 'phone', format('belongs to card %s (line %s)', o.card, o.line)
		FROM import_members s JOIN import_members o ON o.phone = s.phone AND o.card <> s.card AND o.line < s.line
		UNION ALL
		SELECT s.line, 'phone', 'belongs to another member'
		FROM import_members s JOIN members m ON m.phone = s.phone AND m.card <> s.card`)
	if err != nil {
		return fmt.Errorf("import members: check conflicts: %w", err)
	}
	byLine := map[int]map[string]string{}
	for rows.Next() {
		var line int
		var field, why string
		if err := rows.Scan(&line, &field, &why); err != nil {
			return fmt.Errorf("import members: check conflicts: %w", err)
		}
		if byLine[line] == nil {
			byLine[line] = map[string]string{}
		}
		if _, ok := byLine[line][field]; !ok {
			byLine[line][field] = why
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("import members: check conflicts: %w", err)
	}
	var bad badLines
	for line, fields := range byLine {
		bad.add(line, fields)
	}
	return bad.err(ECONFLICT)
}

// memberImport is the CopyFromSource that validates members on their way into staging.
type memberImport struct {
	db     *DB
	ctx    context.Context
	src    MemberSource
	now    time.Time
	stores map[string]*Store
	values []any
	bad    badLines
	fatal  error
}

// Next implements pgx.CopyFromSource.
func (imp *memberImport) Next() bool {
	for {
		line, in, err := imp.src.Next()
		if err == io.EOF {
			return false
		}
		var le *LineError
		if errors.As(err, &le) {
			imp.bad.add(le.Line, le.Fields)
			continue
		}
		if err != nil {
			imp.fatal = fmt.Errorf("import members: read line %d: %w", line, err)
			return false
		}
		fe := FieldErrors{}
		if err := imp.check(line, in, fe); err != nil {
			imp.fatal = err
			return false
		}
		if len(fe) > 0 {
			imp.bad.add(line, fe)
			continue
		}
		if imp.bad.total == 0 {
			return true
		}
	}
}

// check validates in as CreateMember would and fills values for the staging row.
func (imp *memberImport) check(line int, in *MemberImport, fe FieldErrors) error {
	v := imp.values
	v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8] = int32(line), in.Card, nil, nil, in.Name, nil, nil, nil, nil
	h := sha256.New()
	field := func(s string) { h.Write([]byte(s)); h.Write([]byte{0x1f}) }
	if in.Card == "" {
		fe.Add("card", "is required")
	} else if !ValidCard(in.Card) {
		fe.Add("card", "must be 13 digits ending in a correct EAN-13 check digit")
	}
	field(in.Card)
	if in.Email != "" {
		e, ok := NormalizeEmail(in.Email)
		if !ok {
			fe.Add("email", "must be an email address")
		}
		v[2] = e
		field(e)
	} else {
		field("")
	}
	if in.Phone != "" {
		p, ok := NormalizePhone(in.Phone)
		if !ok {
			fe.Add("phone", "must be a phone number: 6-15 digits, optionally starting with +")
		}
		v[3] = p
		field(p)
	} else {
		field("")
	}
	if len(in.Name) > 200 {
		fe.Add("name", "must be at most 200 characters")
	}
	field(in.Name)
	loc := time.UTC
	if in.HomeStore != "" {
		s, ok := imp.stores[in.HomeStore]
		if !ok {
			var err error
			s, err = imp.db.FindStoreByCode(imp.ctx, in.HomeStore)
			if err != nil && ErrorCode(err) != ENOTFOUND {
				return fmt.Errorf("import members: find store %s: %w", in.HomeStore, err)
			}
			imp.stores[in.HomeStore] = s
		}
		if s == nil {
			fe.Add("home_store", "no such store")
		} else {
			v[5], loc = s.ID, s.Location()
		}
	}
	field(in.HomeStore)
	if in.JoinedAt != "" {
		at, err := time.Parse(time.RFC3339, in.JoinedAt)
		if err != nil {
			at, err = time.ParseInLocation(time.DateOnly, in.JoinedAt, loc)
		}
		switch {
		case err != nil:
			fe.Add("joined_at", "must be an RFC 3339 time such as 2024-03-01T12:00:00+01:00, or a date such as 2024-03-01")
		case at.After(imp.now.Add(maxFutureBy)):
			fe.Add("joined_at", "is in the future")
		default:
			v[6] = at
			field(strconv.FormatInt(at.UnixNano(), 10))
		}
	} else {
		field("")
	}
	switch strings.ToLower(strings.TrimSpace(in.MarketingConsent)) {
	case "":
		field("")
	case "true":
		v[7] = true
		field("true")
		if v[2] == nil {
			fe.Add("email", "is required when marketing_consent is true")
		}
	case "false":
		v[7] = false
		field("false")
	default:
		fe.Add("marketing_consent", "must be true, false or empty")
	}
	if b, err := ParseBirthday(in.Birthday, imp.now); err != nil {
		fe.Add("birthday", err.Error())
	} else {
		v[8], _ = b.Value() // nil when empty
		field(b.String())
	}
	v[9] = h.Sum(nil)
	return nil
}

// Values implements pgx.CopyFromSource.
func (imp *memberImport) Values() ([]any, error) { return imp.values, nil }

// Err implements pgx.CopyFromSource.
func (imp *memberImport) Err() error {
	if imp.fatal != nil {
		return imp.fatal
	}
	if imp.bad.total > 0 {
		return errBadLines
	}
	return nil
}
