package segments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/regulars/regulars/models"
)

// Limits of a saved segment's texts (the segments table checks them too).
const (
	MaxNameLength        = 80
	MaxDescriptionLength = 1000
	// SavedSampleSize is how many members Get shows as an example.
	SavedSampleSize = 10
	// MaxMembersPage is the largest page Members returns.
	MaxMembersPage = 1000
)

// Saved is a saved segment: a named rule tree. Its members are never stored; they are the tree
// compiled and run when asked, so they are always live.
type Saved struct {
	ID          int64  `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Rules is the stored tree, as validated JSON.
	Rules     json.RawMessage `json:"rules"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// Counted is a saved segment with its cached counts (see Recount): every member the rules
// matched, and those a campaign may mail (the rules AND Mailable), at CountedAt. All three are
// nil while the segment's current rules have not been counted yet.
type Counted struct {
	Saved
	Members   *int64     `json:"members"`
	Mailable  *int64     `json:"mailable"`
	CountedAt *time.Time `json:"counted_at"`
}

// Detail is a saved segment with its live counts and a sample of its lowest-id members.
type Detail struct {
	Saved
	Members  int64          `json:"members"`
	Mailable int64          `json:"mailable"`
	Sample   []SampleMember `json:"sample"`
}

// SavedInput creates a saved segment. Rules is the raw JSON tree, read with Parse so that an
// error names its path ("rules.all.0.field").
type SavedInput struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Rules       json.RawMessage `json:"rules"`
}

// SavedPatch changes a saved segment; a nil (absent) member is left as it is.
type SavedPatch struct {
	Name        *string         `json:"name"`
	Description *string         `json:"description"`
	Rules       json.RawMessage `json:"rules"`
}

// Querier is what the read functions need of a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// savedColumns are the columns of Saved, in scan order.
const savedColumns = `id, name, description, rules, created_at, updated_at`

func scanSaved(row pgx.Row) (Saved, error) {
	var s Saved
	err := row.Scan(&s.ID, &s.Name, &s.Description, &s.Rules, &s.CreatedAt, &s.UpdatedAt)
	return s, err
}

// checkName validates a name (already trimmed) into fe.
func checkName(fe models.FieldErrors, name string) {
	if n := utf8.RuneCountInString(name); n < 1 || n > MaxNameLength {
		fe.Add("name", fmt.Sprintf("must be 1 to %d characters", MaxNameLength))
	}
}

func checkDescription(fe models.FieldErrors, description string) {
	if utf8.RuneCountInString(description) > MaxDescriptionLength {
		fe.Add("description", fmt.Sprintf("must be at most %d characters", MaxDescriptionLength))
	}
}

// checkRules parses raw into fe and returns the tree re-encoded from the parsed nodes, so that
// only the keys the tree may hold are stored.
func checkRules(fe models.FieldErrors, raw json.RawMessage) []byte {
	if len(raw) == 0 || string(raw) == "null" {
		fe.Add(RootPath, "required")
		return nil
	}
	tree, err := Parse(raw)
	var merr *models.Error
	if errors.As(err, &merr) {
		for k, v := range merr.Fields {
			fe.Add(k, v)
		}
		return nil
	}
	if err != nil {
		fe.Add(RootPath, err.Error())
		return nil
	}
	out, err := json.Marshal(tree)
	if err != nil { // unreachable: a parsed tree holds only JSON values
		fe.Add(RootPath, err.Error())
		return nil
	}
	return out
}

// nameTaken turns the unique index on lower(name) into ECONFLICT.
func nameTaken(err error) error {
	if models.IsUniqueViolation(err, "segments_name_key") {
		return &models.Error{Code: models.ECONFLICT, Message: "a segment with this name exists",
			Fields: map[string]string{"name": "already used by another segment (names ignore case)"}}
	}
	return nil
}

// Create validates and stores a saved segment: a name of 1 to 80 characters (surrounding space
// trimmed), unique regardless of case (ECONFLICT), an optional description and a valid tree.
// Validation problems are one EINVALID error naming every bad field.
func Create(ctx context.Context, db *models.DB, in SavedInput) (*Saved, error) {
	fe := models.FieldErrors{}
	name := strings.TrimSpace(in.Name)
	checkName(fe, name)
	checkDescription(fe, in.Description)
	rules := checkRules(fe, in.Rules)
	if err := fe.Err("invalid segment"); err != nil {
		return nil, err
	}
	now := db.Now()
	s, err := scanSaved(db.Pool.QueryRow(ctx, `
		INSERT INTO segments (name, description, rules, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $4)
		RETURNING `+savedColumns, name, in.Description, rules, now))
	if err != nil {
		if conflict := nameTaken(err); conflict != nil {
			return nil, conflict
		}
		return nil, fmt.Errorf("create segment %q: %w", name, err)
	}
	return &s, nil
}

// Update applies a patch: only the fields it holds are checked and changed. ENOTFOUND when
// there is no segment id.
func Update(ctx context.Context, db *models.DB, id int64, p SavedPatch) (*Saved, error) {
	fe := models.FieldErrors{}
	var name *string
	if p.Name != nil {
		n := strings.TrimSpace(*p.Name)
		checkName(fe, n)
		name = &n
	}
	if p.Description != nil {
		checkDescription(fe, *p.Description)
	}
	var rules []byte
	if p.Rules != nil {
		rules = checkRules(fe, p.Rules)
	}
	if err := fe.Err("invalid segment"); err != nil {
		return nil, err
	}
	s, err := scanSaved(db.Pool.QueryRow(ctx, `
		UPDATE segments
		SET name = coalesce($2, name), description = coalesce($3, description),
		    rules = coalesce($4, rules), updated_at = $5
		WHERE id = $1
		RETURNING `+savedColumns, id, name, p.Description, rules, db.Now()))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, models.Errorf(models.ENOTFOUND, "segment %d not found", id)
	case err != nil:
		if conflict := nameTaken(err); conflict != nil {
			return nil, conflict
		}
		return nil, fmt.Errorf("update segment %d: %w", id, err)
	}
	return &s, nil
}

// Delete removes a saved segment. ENOTFOUND when there is none. Past metrics snapshots keep
// their segment:<id> rows.
func Delete(ctx context.Context, db *models.DB, id int64) error {
	// campaigns.segment_id references segments ON DELETE RESTRICT: a segment a campaign uses
	// stays, and the violation (23503) is the caller's conflict.
	tag, err := db.Pool.Exec(ctx, `DELETE FROM segments WHERE id = $1`, id)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23503" {
		return &models.Error{Code: models.ECONFLICT, Message: fmt.Sprintf("segment %d is used by a campaign", id),
			Fields: map[string]string{"id": "is the segment of a campaign; change the campaign first"}}
	}
	if err != nil {
		return fmt.Errorf("delete segment %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return models.Errorf(models.ENOTFOUND, "segment %d not found", id)
	}
	return nil
}

// find reads one saved segment; ENOTFOUND when there is none.
func find(ctx context.Context, db *models.DB, id int64) (*Saved, error) {
	s, err := scanSaved(db.Pool.QueryRow(ctx, `SELECT `+savedColumns+` FROM segments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, models.Errorf(models.ENOTFOUND, "segment %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find segment %d: %w", id, err)
	}
	return &s, nil
}

// tree parses a stored tree. A stored tree was valid when saved; if it no longer is (a field
// left the registry), that is the server's fault, not the caller's, so the error is internal
// rather than EINVALID.
func (s *Saved) tree() (*Node, error) {
	tree, err := Parse(s.Rules)
	if err != nil {
		return nil, fmt.Errorf("stored rules of segment %d: %v", s.ID, err)
	}
	return tree, nil
}

// liveAsOf is the as-of time of live counts: now, in the shop's timezone.
func liveAsOf(db *models.DB) time.Time {
	tz := db.Timezone
	if tz == nil {
		tz = time.UTC
	}
	return db.Now().In(tz)
}

// count returns a tree's live member and mailable counts in one pass over members.
func (s *Saved) count(ctx context.Context, q rowQuerier, asOf time.Time) (members, mailable int64, err error) {
	tree, err := s.tree()
	if err != nil {
		return 0, 0, err
	}
	where, args, err := Compile(tree, asOf, 0)
	if err != nil {
		return 0, 0, fmt.Errorf("stored rules of segment %d: %v", s.ID, err)
	}
	err = q.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE `+Mailable+`) FROM members m WHERE `+where,
		args...).Scan(&members, &mailable)
	if err != nil {
		return 0, 0, fmt.Errorf("count members of segment %d: %w", s.ID, err)
	}
	return members, mailable, nil
}

// countedSelect reads segments with their cached counts. Counts of other rules than the
// segment's current ones are stale: the join leaves them out.
const countedSelect = `
	SELECT s.id, s.name, s.description, s.rules, s.created_at, s.updated_at,
	       sc.members, sc.mailable, sc.counted_at
	FROM segments s LEFT JOIN segment_counts sc ON sc.segment_id = s.id AND sc.rules = s.rules`

func scanCounted(row pgx.Row) (Counted, error) {
	var c Counted
	err := row.Scan(&c.ID, &c.Name, &c.Description, &c.Rules, &c.CreatedAt, &c.UpdatedAt,
		&c.Members, &c.Mailable, &c.CountedAt)
	return c, err
}

// List returns every saved segment, by name, with its cached counts: one query, however many
// segments there are and however slow their rules. Counting every segment on every view made
// the lists take 35 s with one 200-rule segment; Recount keeps the cache (after each save, and
// from jobs.CountSegments every few minutes), and CountedAt says how fresh it is.
func List(ctx context.Context, db *models.DB) ([]Counted, error) {
	rows, err := db.Pool.Query(ctx, countedSelect+` ORDER BY lower(s.name), s.id`)
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Counted, error) { return scanCounted(row) })
	if err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	return out, nil
}

// FindCounted returns one saved segment with its cached counts, as List shows it: for a page
// that must not wait for a live count. ENOTFOUND when there is none.
func FindCounted(ctx context.Context, db *models.DB, id int64) (*Counted, error) {
	c, err := scanCounted(db.Pool.QueryRow(ctx, countedSelect+` WHERE s.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, models.Errorf(models.ENOTFOUND, "segment %d not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("find segment %d: %w", id, err)
	}
	return &c, nil
}

// Get returns a saved segment with its live counts and a sample of SavedSampleSize members.
// The counts are also cached (Recount), since they were paid for.
func Get(ctx context.Context, db *models.DB, id int64) (*Detail, error) {
	s, err := find(ctx, db, id)
	if err != nil {
		return nil, err
	}
	asOf := liveAsOf(db)
	d := &Detail{Saved: *s}
	if d.Members, d.Mailable, err = s.count(ctx, db.Pool, asOf); err != nil {
		return nil, err
	}
	if err := storeCounts(ctx, db.Pool, s, d.Members, d.Mailable, asOf); err != nil {
		return nil, err
	}
	tree, err := s.tree()
	if err != nil {
		return nil, err
	}
	if d.Sample, err = Sample(ctx, db, tree, asOf, SavedSampleSize); err != nil {
		return nil, err
	}
	return d, nil
}

// SavedSample returns up to limit of saved segment id's lowest-id members, live as of now,
// without counting them: for pages that show examples, where a count of a slow segment would
// cost the whole statement limit. ENOTFOUND when there is no segment id.
func SavedSample(ctx context.Context, db *models.DB, id int64, limit int) ([]SampleMember, error) {
	s, err := find(ctx, db, id)
	if err != nil {
		return nil, err
	}
	tree, err := s.tree()
	if err != nil {
		return nil, err
	}
	return Sample(ctx, db, tree, liveAsOf(db), limit)
}

// Member is a member as a segment's member list shows it: what a marketer needs to recognise
// who is in a segment, and no contact details (the sender reads those itself).
type Member struct {
	ID        int64   `json:"id"`
	Card      string  `json:"card"`
	Name      string  `json:"name"`
	HomeStore *string `json:"home_store"` // store code; nil without a home store
}

// MembersPage is one page of a segment's members, by id. NextAfter, when set, is the after
// cursor of the next page.
type MembersPage struct {
	Members   []Member `json:"members"`
	NextAfter *int64   `json:"next_after"`
}

// Members returns up to limit members of saved segment id with ids above after, lowest first,
// live as of now. Keyset pagination: a page costs the same wherever it starts, and members who
// join or leave between pages do not shift the others.
func Members(ctx context.Context, db *models.DB, id int64, limit int, after int64) (*MembersPage, error) {
	fe := models.FieldErrors{}
	if limit < 1 || limit > MaxMembersPage {
		fe.Add("limit", fmt.Sprintf("must be between 1 and %d", MaxMembersPage))
	}
	if after < 0 {
		fe.Add("after", "must not be negative")
	}
	if err := fe.Err("invalid page"); err != nil {
		return nil, err
	}
	s, err := find(ctx, db, id)
	if err != nil {
		return nil, err
	}
	tree, err := s.tree()
	if err != nil {
		return nil, err
	}
	where, args, err := Compile(tree, liveAsOf(db), 2)
	if err != nil {
		return nil, fmt.Errorf("stored rules of segment %d: %v", s.ID, err)
	}
	// One row more than asked tells whether there is a next page. ORDER BY id with m.id > $1
	// walks the members primary key from the cursor and stops after limit+1 matches.
	rows, err := db.Pool.Query(ctx, `
		SELECT m.id, m.card, m.name, st.code
		FROM members m LEFT JOIN stores st ON st.id = m.home_store_id
		WHERE m.id > $1 AND `+where+`
		ORDER BY m.id LIMIT $2`, append([]any{after, limit + 1}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("members of segment %d: %w", id, err)
	}
	members, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Member, error) {
		var m Member
		err := row.Scan(&m.ID, &m.Card, &m.Name, &m.HomeStore)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("members of segment %d: %w", id, err)
	}
	page := &MembersPage{Members: members}
	if len(members) > limit {
		page.Members = members[:limit]
		next := page.Members[limit-1].ID
		page.NextAfter = &next
	}
	if page.Members == nil {
		page.Members = []Member{}
	}
	return page, nil
}

// StoredTree is a saved segment's id and parsed tree, for jobs that evaluate every segment.
type StoredTree struct {
	ID   int64
	Tree *Node
}

// Trees reads every saved segment's tree through q (a pool or a transaction), by id. A stored
// tree that no longer parses (a field left the registry) is returned in skipped rather than
// failing the caller, which evaluates the others.
func Trees(ctx context.Context, q Querier) (trees []StoredTree, skipped []int64, err error) {
	rows, err := q.Query(ctx, `SELECT id, rules FROM segments ORDER BY id`)
	if err != nil {
		return nil, nil, fmt.Errorf("read segment rules: %w", err)
	}
	type stored struct {
		id    int64
		rules []byte
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (stored, error) {
		var s stored
		err := row.Scan(&s.id, &s.rules)
		return s, err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("read segment rules: %w", err)
	}
	for _, s := range all {
		tree, err := Parse(s.rules)
		if err != nil {
			skipped = append(skipped, s.id)
			continue
		}
		trees = append(trees, StoredTree{ID: s.id, Tree: tree})
	}
	return trees, skipped, nil
}
