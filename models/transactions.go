package models

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Transaction kinds.
const (
	KindSale   = "sale"
	KindRefund = "refund"
)

// Limits on what one transaction may carry.
const (
	maxIDLen    = 64
	maxItems    = 500
	maxItemQty  = 100_000
	maxFutureBy = 24 * time.Hour
	// MaxBatch is the most transactions one batch request may carry.
	MaxBatch = 1000
)

// Int is a JSON integer that remembers why it is not one, instead of failing the whole decode,
// so that a client learns about every bad field at once. Money must be an integer number of
// minor units: 129.50 and "12950" are both refused.
type Int struct {
	Value   int64
	Present bool
	Bad     string
}

// UnmarshalJSON implements json.Unmarshaler; it never fails.
func (i *Int) UnmarshalJSON(b []byte) error {
	*i = Int{Present: true}
	switch {
	case string(b) == "null":
		i.Present = false
	case len(b) > 0 && b[0] == '"':
		i.Bad = "must be a JSON integer, not a string"
	case bytes.ContainsAny(b, ".eE"):
		i.Bad = "must be an integer number of minor units (12950 for 129.50), not a decimal"
	default:
		v, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			i.Bad = "must be an integer"
		}
		i.Value = v
	}
	return nil
}

// MarshalJSON writes the plain integer.
func (i Int) MarshalJSON() ([]byte, error) { return strconv.AppendInt(nil, i.Value, 10), nil }

// NewInt returns a present Int.
func NewInt(v int64) Int { return Int{Value: v, Present: true} }

// TransactionInput is a transaction as a till sends it.
type TransactionInput struct {
	ID         string      `json:"id"`
	Store      string      `json:"store"`
	Register   string      `json:"register,omitempty"`
	Kind       string      `json:"kind"`
	OccurredAt string      `json:"occurred_at"`
	Amount     Int         `json:"amount"`
	Currency   string      `json:"currency"`
	Member     *MemberRef  `json:"member,omitempty"`
	Refunds    string      `json:"refunds,omitempty"`
	Items      []ItemInput `json:"items,omitempty"`
}

// MemberRef is how a customer identified themselves at the till: any of card, email, phone.
type MemberRef struct {
	Card  string `json:"card,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// ItemInput is one line of a receipt.
type ItemInput struct {
	SKU       string `json:"sku"`
	Qty       Int    `json:"qty"`
	UnitPrice Int    `json:"unit_price"`
}

// Transaction is a stored sale or refund.
type Transaction struct {
	ID         string             `json:"id"`
	Store      string             `json:"store"`
	Register   string             `json:"register,omitempty"`
	Kind       string             `json:"kind"`
	OccurredAt time.Time          `json:"occurred_at"`
	Amount     int64              `json:"amount"`
	Currency   string             `json:"currency"`
	Member     *TransactionMember `json:"member,omitempty"`
	Refunds    string             `json:"refunds,omitempty"`
	Items      []Item             `json:"items"`
	ReceivedAt time.Time          `json:"received_at"`
	// PointsEarned is what the sale credited to its member's points (a refund: minus what it
	// debited); 0 without a member or a rewards program.
	PointsEarned int `json:"points_earned"`

	storeID int64
	hash    []byte
}

// TransactionMember is the customer on a transaction. Matched is false while no member has the
// presented card, email or phone; the sale is linked when one registers it.
type TransactionMember struct {
	Card     string `json:"card,omitempty"`
	Email    string `json:"email,omitempty"`
	Phone    string `json:"phone,omitempty"`
	MemberID *int64 `json:"member_id"`
	Matched  bool   `json:"matched"`
}

// Item is one stored receipt line.
type Item struct {
	SKU       string `json:"sku"`
	Qty       int64  `json:"qty"`
	UnitPrice int64  `json:"unit_price"`
}

// Outcome says what recording a transaction did.
type Outcome int

// Outcomes of recording a transaction.
const (
	Created  Outcome = iota // newly committed (201)
	Replayed                // the same transaction was already stored (200)
)

var phoneStrip = strings.NewReplacer(" ", "", "-", "", "(", "", ")", "", ".", "")
var phoneRE = regexp.MustCompile(`^\+?[0-9]{6,15}$`)

// NormalizePhone strips the separators people type; ok is false if what is left is no phone
// number.
func NormalizePhone(s string) (string, bool) {
	p := phoneStrip.Replace(strings.TrimSpace(s))
	return p, phoneRE.MatchString(p)
}

// NormalizeEmail trims and lowercases an address; ok is false if it is not one.
func NormalizeEmail(s string) (string, bool) {
	e := strings.ToLower(strings.TrimSpace(s))
	return e, validate.Var(e, "required,email,max=254") == nil
}

func validID(s string) bool {
	if s == "" || len(s) > maxIDLen || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// checkTransaction validates in for store and returns the normalised transaction. Problems are
// added to fe under the client's field names, prefixed by prefix (for batch items).
func (db *DB) checkTransaction(in *TransactionInput, store *Store, now time.Time, fe FieldErrors) *Transaction {
	t := &Transaction{ID: in.ID, Store: in.Store, Register: in.Register, Kind: in.Kind, Refunds: in.Refunds}
	if in.ID == "" {
		fe.Add("id", "is required")
	} else if !validID(in.ID) {
		fe.Add("id", "must be 1-64 printable characters without surrounding spaces")
	}
	if in.Store == "" {
		fe.Add("store", "is required")
	} else if store == nil {
		fe.Add("store", "no such store")
	}
	if len(in.Register) > maxIDLen {
		fe.Add("register", "must be at most 64 characters")
	}
	switch in.Kind {
	case KindSale:
		if in.Refunds != "" {
			fe.Add("refunds", "only a refund may name the sale it refunds")
		}
	case KindRefund:
		if in.Refunds != "" && !validID(in.Refunds) {
			fe.Add("refunds", "must be the id of a sale")
		}
	case "":
		fe.Add("kind", "is required")
	default:
		fe.Add("kind", "must be sale or refund")
	}
	if in.OccurredAt == "" {
		fe.Add("occurred_at", "is required")
	} else if at, err := time.Parse(time.RFC3339, in.OccurredAt); err != nil {
		fe.Add("occurred_at", "must be an RFC 3339 time with offset, such as 2026-11-20T14:03:00+01:00")
	} else if at.After(now.Add(maxFutureBy)) {
		fe.Add("occurred_at", "is more than 24 hours in the future")
	} else if at.Year() < 1970 {
		fe.Add("occurred_at", "is before 1970")
	} else {
		t.OccurredAt = at
	}
	switch {
	case !in.Amount.Present:
		fe.Add("amount", "is required")
	case in.Amount.Bad != "":
		fe.Add("amount", in.Amount.Bad)
	case in.Amount.Value <= 0:
		fe.Add("amount", "must be greater than 0 (a refund is kind refund with a positive amount)")
	case in.Amount.Value > db.MaxAmount:
		fe.Add("amount", fmt.Sprintf("must be at most %d minor units", db.MaxAmount))
	default:
		t.Amount = in.Amount.Value
	}
	t.Currency = strings.ToUpper(in.Currency)
	switch {
	case in.Currency == "":
		fe.Add("currency", "is required")
	case validate.Var(t.Currency, "iso4217") != nil:
		fe.Add("currency", "must be an ISO 4217 currency code such as NOK")
	case store != nil && t.Currency != store.Currency:
		fe.Add("currency", fmt.Sprintf("must be %s, the currency of store %s", store.Currency, store.Code))
	}
	if m := in.Member; m != nil && (m.Card != "" || m.Email != "" || m.Phone != "") {
		ref := normalizeMemberRef(m, fe)
		t.Member = &TransactionMember{Card: ref.Card, Email: ref.Email, Phone: ref.Phone}
	}
	if len(in.Items) > maxItems {
		fe.Add("items", fmt.Sprintf("at most %d items", maxItems))
	}
	t.Items = make([]Item, 0, len(in.Items))
	for i, it := range in.Items {
		p := "items." + strconv.Itoa(i) + "."
		if it.SKU == "" {
			fe.Add(p+"sku", "is required")
		} else if !validID(it.SKU) {
			fe.Add(p+"sku", "must be 1-64 printable characters")
		}
		switch {
		case !it.Qty.Present:
			fe.Add(p+"qty", "is required")
		case it.Qty.Bad != "":
			fe.Add(p+"qty", it.Qty.Bad)
		case it.Qty.Value <= 0 || it.Qty.Value > maxItemQty:
			fe.Add(p+"qty", fmt.Sprintf("must be between 1 and %d", maxItemQty))
		}
		switch {
		case !it.UnitPrice.Present:
			fe.Add(p+"unit_price", "is required")
		case it.UnitPrice.Bad != "":
			fe.Add(p+"unit_price", it.UnitPrice.Bad)
		case it.UnitPrice.Value < 0 || it.UnitPrice.Value > db.MaxAmount:
			fe.Add(p+"unit_price", fmt.Sprintf("must be between 0 and %d minor units", db.MaxAmount))
		}
		t.Items = append(t.Items, Item{SKU: it.SKU, Qty: it.Qty.Value, UnitPrice: it.UnitPrice.Value})
	}
	if store != nil {
		t.storeID = store.ID
	}
	return t
}

// contentHash identifies a transaction's content for idempotency: the same id with the same
// hash is a replay, with another hash a conflict. Times compare as instants, so the offset a
// till wrote does not matter; emails compare case-insensitively.
func (t *Transaction) contentHash() []byte {
	h := sha256.New()
	var num [8]byte
	field := func(s string) { h.Write([]byte(s)); h.Write([]byte{0x1f}) }
	integer := func(v int64) { binary.BigEndian.PutUint64(num[:], uint64(v)); h.Write(num[:]) }
	field(t.ID)
	field(t.Register)
	field(t.Kind)
	integer(t.OccurredAt.UnixNano())
	integer(t.Amount)
	field(t.Currency)
	if m := t.Member; m != nil {
		field(m.Card)
		field(m.Email)
		field(m.Phone)
	} else {
		field("")
		field("")
		field("")
	}
	field(t.Refunds)
	for _, it := range t.Items {
		field(it.SKU)
		integer(it.Qty)
		integer(it.UnitPrice)
	}
	return h.Sum(nil)
}

// BatchResult is the outcome of one transaction of a batch: Status is the HTTP status the item
// would have had on its own.
type BatchResult struct {
	Index       int          `json:"index"`
	ID          string       `json:"id,omitempty"`
	Status      int          `json:"status"`
	Transaction *Transaction `json:"transaction,omitempty"`
	Error       *Error       `json:"error,omitempty"`
}

// RecordTransaction validates and commits one transaction for the caller p. A replay of a
// stored transaction returns it with Replayed; the same id with other content is ECONFLICT.
// Valid transactions are committed together with those other registers post at the same moment
// (db.tills, group commit), and it returns only after that commit.
func (db *DB) RecordTransaction(ctx context.Context, p *Principal, in TransactionInput) (*Transaction, Outcome, error) {
	results, valid, _, err := db.checkTransactions(ctx, p, []TransactionInput{in})
	if err != nil {
		return nil, 0, err
	}
	r := results[0]
	if len(valid) == 1 {
		if r, err = db.tills.commit(ctx, db, p.Store, valid[0]); err != nil {
			return nil, 0, err
		}
	}
	switch {
	case r.Error != nil:
		return nil, 0, r.Error
	case r.Status == 200:
		return r.Transaction, Replayed, nil
	default:
		return r.Transaction, Created, nil
	}
}

// RecordTransactions validates and commits up to MaxBatch transactions with one set-based
// statement, and reports on each. Invalid items do not stop valid ones.
func (db *DB) RecordTransactions(ctx context.Context, p *Principal, ins []TransactionInput) ([]BatchResult, error) {
	results, valid, validIdx, err := db.checkTransactions(ctx, p, ins)
	if err != nil {
		return nil, err
	}
	if len(valid) > 0 {
		if err := db.insertTransactions(ctx, db.Pool, p.Store, valid, results, validIdx); err != nil {
			return nil, err
		}
	}
	// Same-batch duplicates take the outcome of their first copy: stored once, so a replay.
	for i := range results {
		if s := results[i].Status; s < 0 {
			first := results[-s-1]
			if first.Error != nil {
				results[i].Status, results[i].Error, results[i].Transaction = first.Status, first.Error, nil
			} else {
				results[i].Status, results[i].Transaction = 200, first.Transaction
			}
		}
	}
	return results, nil
}

// checkTransactions validates up to MaxBatch transactions for the caller p and checks the sales
// their refunds name. It returns a result for each (an error, or for a later copy of an id in
// ins a negative Status: -(index of the first copy)-1) and the transactions to store, with
// their indexes in ins.
func (db *DB) checkTransactions(ctx context.Context, p *Principal, ins []TransactionInput) ([]BatchResult, []*Transaction, map[*Transaction]int, error) {
	if len(ins) > MaxBatch {
		return nil, nil, nil, Errorf(ETOOLARGE, "a batch holds at most %d transactions, this one has %d", MaxBatch, len(ins))
	}
	now := db.Now()
	results := make([]BatchResult, len(ins))
	var valid []*Transaction
	validIdx := map[*Transaction]int{}
	seen := map[string]*Transaction{}
	refunded := map[string]bool{}
	for i := range ins {
		in := &ins[i]
		results[i] = BatchResult{Index: i, ID: in.ID}
		if p.Role != RoleRegister {
			results[i].Status, results[i].Error = 403, Errorf(EFORBIDDEN, "only a register token may record transactions")
			continue
		}
		if in.Store != "" && in.Store != p.Store.Code {
			results[i].Status, results[i].Error = 403, Errorf(EFORBIDDEN, "this register token may only post for store %s", p.Store.Code)
			continue
		}
		var store *Store
		if in.Store != "" {
			store = p.Store
		}
		fe := FieldErrors{}
		t := db.checkTransaction(in, store, now, fe)
		if err := fe.Err("invalid transaction"); err != nil {
			results[i].Status, results[i].Error = 422, err.(*Error)
			continue
		}
		t.hash = t.contentHash()
		if first, dup := seen[t.ID]; dup {
			// The same id twice in one batch: the first wins, the second is judged against it.
			if bytes.Equal(first.hash, t.hash) {
				results[i].Status, results[i].Transaction = -validIdx[first]-1, first // resolved by the caller
			} else {
				results[i].Status, results[i].Error = 409, conflictError(t.ID)
			}
			continue
		}
		seen[t.ID] = t
		validIdx[t] = i
		valid = append(valid, t)
		if t.Refunds != "" {
			refunded[t.Refunds] = true
		}
	}
	if len(valid) > 0 {
		if err := db.checkRefundTargets(ctx, p.Store, valid, seen, refunded, results, validIdx); err != nil {
			return nil, nil, nil, err
		}
		valid = keepUnfailed(valid, results, validIdx)
	}
	return results, valid, validIdx, nil
}

func conflictError(id string) *Error {
	return &Error{Code: ECONFLICT, Message: fmt.Sprintf("transaction %s was already recorded with different content", id),
		Fields: map[string]string{"id": "already used for a different transaction"}}
}

// checkRefundTargets makes sure every refund that names a sale names a sale of this store,
// stored already or earlier in the same batch.
func (db *DB) checkRefundTargets(ctx context.Context, store *Store, valid []*Transaction, inBatch map[string]*Transaction,
	refunded map[string]bool, results []BatchResult, idx map[*Transaction]int) error {
	if len(refunded) == 0 {
		return nil
	}
	ids := make([]string, 0, len(refunded))
	for id := range refunded {
		ids = append(ids, id)
	}
	kinds := map[string]string{}
	rows, err := db.Pool.Query(ctx, `SELECT t.txn_id, t.kind FROM `+storeTxnsByTillID, store.ID, ids)
	if err != nil {
		return fmt.Errorf("check refunded sales: %w", err)
	}
	for rows.Next() {
		var id, kind string
		if err := rows.Scan(&id, &kind); err != nil {
			return err
		}
		kinds[id] = kind
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check refunded sales: %w", err)
	}
	for _, t := range valid {
		if t.Refunds == "" {
			continue
		}
		kind, ok := kinds[t.Refunds]
		if !ok {
			if b := inBatch[t.Refunds]; b != nil {
				kind, ok = b.Kind, true
			}
		}
		why := ""
		switch {
		case !ok:
			why = fmt.Sprintf("no transaction %s in store %s", t.Refunds, store.Code)
		case kind != KindSale:
			why = fmt.Sprintf("%s is a refund, not a sale", t.Refunds)
		}
		if why != "" {
			i := idx[t]
			results[i].Status = 422
			results[i].Error = &Error{Code: EINVALID, Message: "invalid transaction", Fields: map[string]string{"refunds": why}}
		}
	}
	return nil
}

func keepUnfailed(valid []*Transaction, results []BatchResult, idx map[*Transaction]int) []*Transaction {
	out := valid[:0]
	for _, t := range valid {
		if results[idx[t]].Error == nil {
			out = append(out, t)
		}
	}
	return out
}

// insertTransactionsSQL stores a whole batch in one round trip. Rows arrive as parallel arrays
// (a handful of bind parameters whatever the batch size). Members are resolved in the same
// statement, by card, then email, then phone; a refund without a member inherits the member of
// the sale it refunds, so that it counts against that member's revenue. ON CONFLICT DO NOTHING
// leaves existing ids alone: concurrent posts of one id wait on the unique index and store one
// row; the caller then tells replays from conflicts by content hash. Items go in through the
// ids RETURNING hands back, with their sale's member, time and kind; a refund keeps the row id
// of the sale it names, refunds_id (NULL when that sale is in the same batch: not visible to
// the statement yet). Both are what the bought_* segment fields read
// (models/migrations/00028_lines_carry_sale.sql).
const insertTransactionsSQL = `
WITH b AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::bigint[], $7::text[],
                         $8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[])
        AS b(txn_id, register, kind, occurred_at, amount, currency, card, email, phone, refunds, hash)
)` + insertTransactionsTail

// insertOneTransactionSQL is insertTransactionsSQL for a single transaction, the usual POST
// /transactions: the row comes as scalars instead of arrays. PostgreSQL estimates unnest() of an
// array parameter at several rows, so the generic plan of insertTransactionsSQL looks ten times
// dearer than a custom plan and the plan cache re-plans it on every execution; planning cost
// more CPU than running it (see docs/benchmarks.md). With scalars the generic plan costs what a
// custom one does, and the plan cache keeps it.
const insertOneTransactionSQL = `
WITH b AS (
    SELECT $2::text AS txn_id, $3::text AS register, $4::text AS kind, $5::timestamptz AS occurred_at,
           $6::bigint AS amount, $7::text AS currency, $8::text AS card, $9::text AS email,
           $10::text AS phone, $11::text AS refunds, $12::bytea AS hash
)` + insertTransactionsTail

// insertTransactionsTail is what both statements share: everything after the rows. Sales
// stored here are live (they may start flows and earn points); imported history is not
// (models/imports.go). The points of a sale are credited by the same statement (earnSQL).
const insertTransactionsTail = `, ins AS (
    INSERT INTO transactions (store_id, txn_id, register, kind, occurred_at, amount_minor, currency,
                              member_id, member_card, member_email, member_phone, refunds_txn_id, refunds_id, content_hash, live)
    SELECT $1, b.txn_id, b.register, b.kind, b.occurred_at, b.amount, b.currency,
           COALESCE(
               (SELECT m.id FROM members m WHERE m.card = b.card AND m.status <> 'erased'),
               (SELECT m.id FROM members m WHERE lower(m.email) = b.email AND m.status <> 'erased'),
               (SELECT m.id FROM members m WHERE m.phone = b.phone AND m.status <> 'erased'),
               (SELECT s.member_id FROM transactions s WHERE s.store_id = $1 AND s.txn_id = b.refunds)),
           b.card, b.email, b.phone, b.refunds,
           CASE WHEN b.refunds IS NOT NULL THEN (SELECT s.id FROM transactions s WHERE s.store_id = $1 AND s.txn_id = b.refunds) END,
           b.hash, true
    FROM b
    ON CONFLICT (store_id, txn_id) DO NOTHING
    RETURNING id, txn_id, member_id, received_at, kind, amount_minor, currency, occurred_at
), items AS (
    INSERT INTO transaction_items (transaction_id, line, sku, qty, unit_price_minor, member_id, occurred_at, kind)
    SELECT ins.id, i.line, i.sku, i.qty, i.price, ins.member_id, ins.occurred_at, ins.kind
    FROM unnest($13::text[], $14::int[], $15::text[], $16::int[], $17::bigint[]) AS i(txn_id, line, sku, qty, price)
    JOIN ins ON ins.txn_id = i.txn_id
)` + earnSQL + `
SELECT ins.id, ins.txn_id, ins.member_id, ins.received_at, ins.kind, coalesce(earned.points, 0)
FROM ins LEFT JOIN earned ON earned.transaction_id = ins.id`

// pool is db.Pool, or the till committer's pool of generic plans (tillcommit.go).
func (db *DB) insertTransactions(ctx context.Context, pool *pgxpool.Pool, store *Store, valid []*Transaction, results []BatchResult, idx map[*Transaction]int) error {
	// A fixed order (by id) means two batches sharing ids lock them in the same order: no deadlock.
	sort.Slice(valid, func(i, j int) bool { return valid[i].ID < valid[j].ID })
	n := len(valid)
	var (
		ids, registers, kinds, currencies = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		cards, emails, phones, refunds    = make([]*string, n), make([]*string, n), make([]*string, n), make([]*string, n)
		occurred                          = make([]time.Time, n)
		amounts                           = make([]int64, n)
		hashes                            = make([][]byte, n)
		itemTxn, itemSKU                  []string
		itemLine, itemQty                 []int32
		itemPrice                         []int64
	)
	byID := make(map[string]*Transaction, n)
	for i, t := range valid {
		byID[t.ID] = t
		ids[i], registers[i], kinds[i], currencies[i] = t.ID, t.Register, t.Kind, t.Currency
		occurred[i], amounts[i], hashes[i] = t.OccurredAt, t.Amount, t.hash
		refunds[i] = nullable(t.Refunds)
		if m := t.Member; m != nil {
			cards[i], emails[i], phones[i] = nullable(m.Card), nullable(m.Email), nullable(m.Phone)
		}
		for line, it := range t.Items {
			itemTxn = append(itemTxn, t.ID)
			itemLine = append(itemLine, int32(line+1))
			itemSKU = append(itemSKU, it.SKU)
			itemQty = append(itemQty, int32(it.Qty))
			itemPrice = append(itemPrice, it.UnitPrice)
		}
	}
	query, args := insertTransactionsSQL, []any{store.ID, ids, registers, kinds, occurred, amounts, currencies,
		cards, emails, phones, refunds, hashes, itemTxn, itemLine, itemSKU, itemQty, itemPrice}
	if n == 1 {
		query, args = insertOneTransactionSQL, []any{store.ID, ids[0], registers[0], kinds[0], occurred[0], amounts[0],
			currencies[0], cards[0], emails[0], phones[0], refunds[0], hashes[0], itemTxn, itemLine, itemSKU, itemQty, itemPrice}
	}
	inserted, err := db.execInsertTransactions(ctx, pool, n, query, args...)
	if err != nil {
		return fmt.Errorf("record transactions: %w", err)
	}
	for _, r := range inserted {
		t := byID[r.id]
		t.ReceivedAt = r.received
		t.PointsEarned = r.points
		t.setMember(r.memberID)
		t.OccurredAt = t.OccurredAt.In(store.Location())
		i := idx[t]
		results[i].Status, results[i].Transaction = 201, t
		delete(byID, r.id)
	}
	if len(byID) == 0 {
		return nil
	}
	// The rest were stored before: a replay if the content matches, else a conflict.
	existingIDs := make([]string, 0, len(byID))
	for id := range byID {
		existingIDs = append(existingIDs, id)
	}
	stored, err := db.findTransactions(ctx, pool, store, existingIDs)
	if err != nil {
		return err
	}
	for id, t := range byID {
		i := idx[t]
		s, ok := stored[id]
		switch {
		case !ok: // cannot happen: a conflicting row is never deleted
			return fmt.Errorf("record transaction %s: neither inserted nor found", id)
		case bytes.Equal(s.hash, t.hash):
			results[i].Status, results[i].Transaction = 200, s
		default:
			results[i].Status, results[i].Error = 409, conflictError(id)
		}
	}
	return nil
}

// insertedRow is what insertTransactionsSQL returns for each row it stored.
type insertedRow struct {
	key      int64
	id       string
	memberID *int64
	received time.Time
	kind     string
	points   int
}

// execInsertTransactions runs query (insertTransactionsSQL or insertOneTransactionSQL) for n
// transactions and reads what it stored. Sales are credited by the statement itself; when it
// stored refunds, it runs in a transaction with their debits (settlePoints), so that a refund
// and its debit commit together too.
func (db *DB) execInsertTransactions(ctx context.Context, pool *pgxpool.Pool, n int, query string, args ...any) ([]insertedRow, error) {
	read := func(q execer) ([]insertedRow, error) {
		rows, err := q.Query(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		out := make([]insertedRow, 0, n)
		for rows.Next() {
			var r insertedRow
			if err := rows.Scan(&r.key, &r.id, &r.memberID, &r.received, &r.kind, &r.points); err != nil {
				return nil, err
			}
			out = append(out, r)
		}
		return out, rows.Err()
	}
	if !hasRefund(args[3]) {
		return read(pool) // sales only: one statement, one implicit transaction
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	out, err := read(tx)
	if err != nil {
		return nil, err
	}
	var refunds []int64
	for _, r := range out {
		if r.kind == "refund" {
			refunds = append(refunds, r.key)
		}
	}
	debits, err := settlePoints(ctx, tx, refunds, true)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if d, ok := debits[out[i].key]; ok {
			out[i].points = d
		}
	}
	return out, tx.Commit(ctx)
}

// hasRefund tells whether kinds, the kind argument of an insert (a string or a []string),
// holds a refund.
func hasRefund(kinds any) bool {
	switch k := kinds.(type) {
	case string:
		return k == "refund"
	case []string:
		return slices.Contains(k, "refund")
	}
	return false
}

func (t *Transaction) setMember(memberID *int64) {
	if t.Member == nil {
		if memberID == nil {
			return
		}
		t.Member = &TransactionMember{} // a refund that inherited its sale's member
	}
	t.Member.MemberID = memberID
	t.Member.Matched = memberID != nil
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// normalizeMemberRef checks the card, email and phone a customer presented at a till (each one
// given) and returns them normalised, recording problems under "member.…": the one rule for
// sales, refunds and redemptions.
func normalizeMemberRef(in *MemberRef, fe FieldErrors) MemberRef {
	out := MemberRef{Card: in.Card}
	if in.Card != "" && !ValidCard(in.Card) {
		fe.Add("member.card", "must be 13 digits ending in a correct EAN-13 check digit")
	}
	var ok bool
	if in.Email != "" {
		if out.Email, ok = NormalizeEmail(in.Email); !ok {
			fe.Add("member.email", "must be an email address")
		}
	}
	if in.Phone != "" {
		if out.Phone, ok = NormalizePhone(in.Phone); !ok {
			fe.Add("member.phone", "must be a phone number: 6-15 digits, optionally starting with +")
		}
	}
	return out
}

// FindTransaction returns the stored transaction id of store code, or ENOTFOUND.
func (db *DB) FindTransaction(ctx context.Context, storeCode, id string) (*Transaction, error) {
	store, err := db.FindStoreByCode(ctx, storeCode)
	if err != nil {
		return nil, err
	}
	found, err := db.findTransactions(ctx, db.Pool, store, []string{id})
	if err != nil {
		return nil, err
	}
	t, ok := found[id]
	if !ok {
		return nil, Errorf(ENOTFOUND, "no transaction %s in store %s", id, storeCode)
	}
	return t, nil
}

// storeTxnsByTillID is the FROM clause of a statement that finds the transactions of store $1
// by till ids $2 (text[]), as t: one probe of the unique (store_id, txn_id) index per id,
// whatever the table's statistics. With "store_id = $1 AND txn_id = ANY($2)" a plan made while
// the table was new and never analysed (a deployment's first minute) compared txn_id as a filter
// over the store's every row, and the till's connections kept that generic plan
// (docs/benchmarks.md, "Phase 1 used to measure the table's first minute"); OFFSET 0 keeps the
// planner from turning the lookup back into such a join.
const storeTxnsByTillID = `unnest($2::text[]) AS wanted(txn_id)
    CROSS JOIN LATERAL (SELECT * FROM transactions s WHERE s.store_id = $1 AND s.txn_id = wanted.txn_id OFFSET 0) t`

// findTransactions loads stored transactions of one store with their items, keyed by id.
func (db *DB) findTransactions(ctx context.Context, q execer, store *Store, ids []string) (map[string]*Transaction, error) {
	rows, err := q.Query(ctx, `
		SELECT t.txn_id, t.register, t.kind, t.occurred_at, t.amount_minor, t.currency, t.member_id,
		       coalesce(t.member_card, ''), coalesce(t.member_email, ''), coalesce(t.member_phone, ''),
		       coalesce(t.refunds_txn_id, ''), t.content_hash, t.received_at,
		       coalesce((SELECT l.points FROM points_ledger l WHERE l.transaction_id = t.id), 0),
		       i.skus, i.qtys, i.prices
		FROM `+storeTxnsByTillID+`
		CROSS JOIN LATERAL (
		    SELECT coalesce(array_agg(sku ORDER BY line), '{}') AS skus,
		           coalesce(array_agg(qty ORDER BY line), '{}') AS qtys,
		           coalesce(array_agg(unit_price_minor ORDER BY line), '{}') AS prices
		    FROM transaction_items WHERE transaction_id = t.id) i`, store.ID, ids)
	if err != nil {
		return nil, fmt.Errorf("find transactions: %w", err)
	}
	defer rows.Close()
	out := map[string]*Transaction{}
	for rows.Next() {
		t := &Transaction{Store: store.Code, storeID: store.ID}
		var memberID *int64
		var card, email, phone string
		var skus []string
		var qtys, prices []int64
		if err := rows.Scan(&t.ID, &t.Register, &t.Kind, &t.OccurredAt, &t.Amount, &t.Currency, &memberID,
			&card, &email, &phone, &t.Refunds, &t.hash, &t.ReceivedAt, &t.PointsEarned, &skus, &qtys, &prices); err != nil {
			return nil, fmt.Errorf("find transactions: %w", err)
		}
		if card != "" || email != "" || phone != "" {
			t.Member = &TransactionMember{Card: card, Email: email, Phone: phone}
		}
		t.setMember(memberID)
		t.OccurredAt = t.OccurredAt.In(store.Location())
		t.Items = make([]Item, len(skus))
		for i := range skus {
			t.Items[i] = Item{SKU: skus[i], Qty: qtys[i], UnitPrice: prices[i]}
		}
		out[t.ID] = t
	}
	return out, rows.Err()
}

// LinkUnmatched links every transaction whose presented card, email or phone now belongs to a
// member, and returns how many it linked: after a members import, say.
func (db *DB) LinkUnmatched(ctx context.Context) (int64, error) {
	return db.linkUnmatched(ctx, time.Time{})
}

// LinkRecentMembers is LinkUnmatched for members created since a time. Member creation links
// its own sales at once; this cheap sweep catches a sale committed at that very moment, which
// the member's own UPDATE could not see.
func (db *DB) LinkRecentMembers(ctx context.Context, since time.Time) (int64, error) {
	return db.linkUnmatched(ctx, since)
}

func (db *DB) linkUnmatched(ctx context.Context, since time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`UPDATE transactions t SET member_id = m.id FROM members m
		 WHERE t.member_id IS NULL AND t.member_card IS NOT NULL AND m.card = t.member_card
		   AND m.status <> 'erased' AND m.created_at >= $1 RETURNING t.id`,
		`UPDATE transactions t SET member_id = m.id FROM members m
		 WHERE t.member_id IS NULL AND t.member_email IS NOT NULL AND lower(m.email) = lower(t.member_email)
		   AND m.status <> 'erased' AND m.created_at >= $1 RETURNING t.id`,
		`UPDATE transactions t SET member_id = m.id FROM members m
		 WHERE t.member_id IS NULL AND t.member_phone IS NOT NULL AND m.phone = t.member_phone
		   AND m.status <> 'erased' AND m.created_at >= $1 RETURNING t.id`,
		// Last, so that the sales linked above pass their member on.
		`UPDATE transactions r SET member_id = s.member_id FROM transactions s JOIN members m ON m.id = s.member_id
		 WHERE r.member_id IS NULL AND r.refunds_txn_id IS NOT NULL
		   AND r.store_id = s.store_id AND r.refunds_txn_id = s.txn_id AND m.created_at >= $1 RETURNING r.id`,
	} {
		n, err := db.linkAndSettle(ctx, q, since)
		if err != nil {
			return total, fmt.Errorf("link unmatched transactions: %w", err)
		}
		total += n
	}
	return total, nil
}

// linkAndSettle runs a linking UPDATE … RETURNING the ids it linked and, in the same
// transaction, credits and debits their points (settlePoints).
func (db *DB) linkAndSettle(ctx context.Context, query string, args ...any) (int64, error) {
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer func() { _ = tx.Rollback(ctx) }()
	ids, err := linkedIDs(ctx, tx, query, args...)
	if err != nil {
		return 0, err
	}
	if _, err := settlePoints(ctx, tx, ids, false); err != nil {
		return 0, err
	}
	return int64(len(ids)), tx.Commit(ctx)
}

// linkedIDs runs a linking UPDATE … RETURNING id and collects the ids.
func linkedIDs(ctx context.Context, q execer, query string, args ...any) ([]int64, error) {
	rows, err := q.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// linkMember links the unmatched transactions that presented this member's card, email or
// phone, and the refunds of those sales, inside tx.
func linkMember(ctx context.Context, tx pgx.Tx, m *Member) (int64, error) {
	var total int64
	var linked []int64
	for _, q := range []struct {
		sql string
		arg *string
	}{
		{`UPDATE transactions SET member_id = $1 WHERE member_id IS NULL AND member_card IS NOT NULL AND member_card = $2`, &m.Card},
		{`UPDATE transactions SET member_id = $1 WHERE member_id IS NULL AND member_email IS NOT NULL AND lower(member_email) = lower($2)`, m.Email},
		{`UPDATE transactions SET member_id = $1 WHERE member_id IS NULL AND member_phone IS NOT NULL AND member_phone = $2`, m.Phone},
	} {
		if q.arg == nil || *q.arg == "" {
			continue
		}
		ids, err := linkedIDs(ctx, tx, q.sql+` RETURNING id`, m.ID, *q.arg)
		if err != nil {
			return 0, fmt.Errorf("link member %d: %w", m.ID, err)
		}
		linked = append(linked, ids...)
		total += int64(len(ids))
	}
	// A refund posted without a card follows the sale it names, as it does when the sale's
	// member is known at the time (insertTransactionsSQL).
	ids, err := linkedIDs(ctx, tx, `
		UPDATE transactions r SET member_id = s.member_id FROM transactions s
		WHERE s.member_id = $1 AND r.member_id IS NULL AND r.refunds_txn_id IS NOT NULL
		  AND r.store_id = s.store_id AND r.refunds_txn_id = s.txn_id
		RETURNING r.id`, m.ID)
	if err != nil {
		return 0, fmt.Errorf("link refunds of member %d: %w", m.ID, err)
	}
	linked = append(linked, ids...)
	// Sales linked now earn their points now (and their refunds debit them).
	if _, err := settlePoints(ctx, tx, linked, false); err != nil {
		return 0, fmt.Errorf("points of member %d's linked sales: %w", m.ID, err)
	}
	return total + int64(len(ids)), nil
}
