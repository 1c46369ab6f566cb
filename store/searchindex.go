package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// The messages' full-text index lives in a database file of its own beside
// the main one (SearchPath), written by an indexer that follows the messages,
// never by the transaction that stores a message (migration 00046 says why:
// FTS4's segment merges took up to a second inside the one writer's
// transaction). The read connections attach it as "search", so a search
// joins its matches to the messages in one query.
//
// The index is derived data: it is not in backups, and whenever it does not
// match the database beside it (another database's, a restored older copy, a
// damaged file, an older format) it is built again from the messages, in the
// background. A search first indexes what the indexer has not reached yet
// (searchCatchUp of them at most), so what was just stored is found.

// searchFormat names what the index holds and how it tokenizes: change it
// with the table's definition below, and every index is built again.
const searchFormat = "fts4-unicode61-rd2-p23-desc-v1"

// searchIndexEvery is how often the indexer looks for new messages. Each pass
// is one transaction of the index, one segment: a quarter of a second keeps
// the segments (and so the merges) few at any rate of messages, and a search
// never waits for it (see Reader.Search).
const searchIndexEvery = 250 * time.Millisecond

// searchBatch is how many messages one indexing transaction takes, so that
// building the index of a large database holds the index's lock in short
// steps that a search can come between.
const searchBatch = 2000

// searchCatchUp is how many not yet indexed messages a search indexes before
// it runs. More than that are left behind only while the index is being built
// for a large database; the search then says its results may be incomplete.
const searchCatchUp = 5000

// SearchPath is the file of the search index of the database at dbPath.
func SearchPath(dbPath string) string { return dbPath + "-search" }

// searchIndex is the index file's one writer and what it has indexed.
type searchIndex struct {
	path string
	db   *sql.DB // one connection
	// catchUp is how many messages a search indexes at most before it runs
	// (searchCatchUp; the tests make it small).
	catchUp int

	// mu makes indexing steps one at a time, and guards changesTo. What the
	// index holds is its search_state row, mirrored here.
	mu        sync.Mutex
	changesTo int64 // every search_changes row up to this id is applied
	// indexedTo: every message with a smaller or equal id is indexed.
	// Written under mu; read without it too (a metrics scrape must not
	// wait for a step).
	indexedTo atomic.Int64

	stop context.CancelFunc
	done chan struct{}
}

// openSearchIndex opens (creating or building anew when it does not belong to
// this database) the index file at path. token is the main database's
// instance token, maxMessage and maxChange its newest message and
// search_changes row.
func openSearchIndex(ctx context.Context, path, token string, maxMessage, maxChange int64) (*searchIndex, error) {
	idx, err := openSearchFile(ctx, path, token, maxMessage, maxChange)
	if isDamaged(err) {
		// Derived data: a file that is not a database, or a damaged one, is
		// removed and built again rather than stopping the inbox.
		if rerr := removeSearchFiles(path); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		idx, err = openSearchFile(ctx, path, token, maxMessage, maxChange)
	}
	if err != nil {
		return nil, fmt.Errorf("search index %s: %w", path, err)
	}
	return idx, nil
}

func openSearchFile(ctx context.Context, path, token string, maxMessage, maxChange int64) (*searchIndex, error) {
	params := url.Values{}
	params.Set("_busy_timeout", "5000")
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "NORMAL")
	params.Set("_txlock", "immediate")
	params.Set("_stmt_cache_size", "16")
	db := sql.OpenDB(newConnector("file:"+path+"?"+params.Encode(), nil))
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	idx := &searchIndex{path: path, db: db, catchUp: searchCatchUp}
	if err := idx.prepare(ctx, token+"/"+searchFormat, maxMessage, maxChange); err != nil {
		db.Close()
		return nil, err
	}
	return idx, nil
}

// prepare creates the index's tables, or empties them when the index was made
// for another database, an older copy of this one, or another format.
func (idx *searchIndex) prepare(ctx context.Context, source string, maxMessage, maxChange int64) error {
	tx, err := idx.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS search_state (
		id         INTEGER PRIMARY KEY CHECK (id = 1),
		source     TEXT NOT NULL,
		indexed_to INTEGER NOT NULL,
		changes_to INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create search_state: %w", err)
	}
	var have string
	var indexedTo, changesTo int64
	err = tx.QueryRowContext(ctx, `SELECT source, indexed_to, changes_to FROM search_state`).Scan(&have, &indexedTo, &changesTo)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("read search_state: %w", err)
	}
	// Messages are never renumbered, so an index that saw more than the
	// database holds was made for a newer copy of it: its entries past the
	// newest message would be taken for the new messages that reuse those ids.
	if err != nil || have != source || indexedTo > maxMessage || changesTo > maxChange {
		indexedTo, changesTo = 0, maxChange // changes older than a full build are in it
		// messages_fts keeps its own copy of the text (the messages are in
		// another file): a message whose text changes or that goes is taken
		// out of it by docid. The options are those the index had in the
		// main database (00012): unicode61 folds case and diacritics, prefix
		// indexes serve the first letters typed, order=DESC reads newest first.
		for _, q := range []string{
			`DROP TABLE IF EXISTS messages_fts`,
			`CREATE VIRTUAL TABLE messages_fts USING fts4(body,
				tokenize=unicode61 "remove_diacritics=2", prefix="2,3", order=DESC)`,
			`DELETE FROM search_state`,
		} {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("build anew: %w", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO search_state (id, source, indexed_to, changes_to) VALUES (1, ?, 0, ?)`,
			source, changesTo); err != nil {
			return fmt.Errorf("build anew: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	idx.indexedTo.Store(indexedTo)
	idx.changesTo = changesTo
	return nil
}

// isDamaged reports whether err is SQLite saying the file is no database or
// a damaged one.
func isDamaged(err error) bool {
	var se sqlite3.Error
	return errors.As(err, &se) && (se.Code == sqlite3.ErrNotADB || se.Code == sqlite3.ErrCorrupt)
}

// removeSearchFiles removes the index file at path and SQLite's files beside it.
func removeSearchFiles(path string) error {
	var errs []error
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// indexed is the id up to which every message is indexed, without waiting
// for a step in progress (a metrics scrape asks).
func (idx *searchIndex) indexed() int64 { return idx.indexedTo.Load() }

// attach is the connect hook that attaches the index to a read connection.
func (idx *searchIndex) attach(conn *sqlite3.SQLiteConn) error {
	if _, err := conn.Exec(`ATTACH DATABASE ? AS search`, []driver.Value{idx.path}); err != nil {
		return fmt.Errorf("store: attach the search index: %w", err)
	}
	return nil
}

// run indexes what is new every searchIndexEvery until stopped. A failed pass
// is tried again at the next; a search meets the same error and shows it.
func (idx *searchIndex) run(read *sql.DB) {
	ctx, stop := context.WithCancel(context.Background())
	idx.stop, idx.done = stop, make(chan struct{})
	go func() {
		defer close(idx.done)
		tick := time.NewTicker(searchIndexEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for {
				more, err := idx.stepFrom(ctx, read, searchBatch)
				if err != nil || !more || ctx.Err() != nil {
					break
				}
			}
		}
	}()
}

// close stops the indexer and closes the file.
func (idx *searchIndex) close() error {
	if idx.stop != nil {
		idx.stop()
		<-idx.done
	}
	return idx.db.Close()
}

// stepFrom is step in a read transaction of its own on read. The read
// connection comes first and the lock second, as for a search (which holds
// its read transaction when it asks for the lock): whoever holds the lock
// never waits for a connection that the others, waiting for the lock, hold.
// The other order hung every read as soon as the pool's connections were all
// searches waiting for an indexer that waited for a connection.
func (idx *searchIndex) stepFrom(ctx context.Context, read *sql.DB, limit int) (more bool, err error) {
	tx, err := read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, fmt.Errorf("search index: begin read: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // read-only: nothing to keep
	return idx.step(ctx, tx, limit)
}

// step indexes, in one transaction of the index, up to limit of the messages
// after indexedTo and applies the recorded changes, reading both through q
// (a read snapshot of the main database, taken before the lock: see
// stepFrom). more reports that it stopped at limit.
func (idx *searchIndex) step(ctx context.Context, q queryer, limit int) (more bool, err error) {
	idx.mu.Lock()
	defer idx.mu.Unlock()
	// A doc is a message to index: key is where the read was (the
	// search_changes row, or the message's own id), body NULL when the
	// message is gone.
	type doc struct {
		key, id int64
		body    sql.NullString
	}
	read := func(query string, args ...any) ([]doc, error) {
		rows, err := q.QueryContext(ctx, query, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var docs []doc
		for rows.Next() {
			var d doc
			if err := rows.Scan(&d.key, &d.id, &d.body); err != nil {
				return nil, err
			}
			docs = append(docs, d)
		}
		return docs, rows.Err()
	}
	// Ids are given anew only above the newest message: when the newest
	// ones went, what the index holds above the newest now is theirs, and a
	// new message may take one of their ids, so the new messages are looked
	// for from there (and replace any entry left under their id).
	var newest int64
	if err := q.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM messages`).Scan(&newest); err != nil {
		return false, fmt.Errorf("search index: read the newest message: %w", err)
	}
	from := min(idx.indexedTo.Load(), newest)
	changed, err := read(`SELECT c.id, c.message_id, m.body FROM search_changes c
		LEFT JOIN messages m ON m.id = c.message_id
		WHERE c.id > ? ORDER BY c.id LIMIT ?`, idx.changesTo, limit)
	if err != nil {
		return false, fmt.Errorf("search index: read the changed messages: %w", err)
	}
	added, err := read(`SELECT id, id, body FROM messages WHERE id > ? ORDER BY id LIMIT ?`, from, limit)
	if err != nil {
		return false, fmt.Errorf("search index: read the new messages: %w", err)
	}
	if len(changed) == 0 && len(added) == 0 && from == idx.indexedTo.Load() {
		return false, nil
	}
	indexedTo, changesTo := from, idx.changesTo
	// The index's writes run to the end of the step once begun (the loop
	// stops between steps): with a context that can end, the driver runs each
	// statement on a goroutine of its own, one per message indexed.
	ctx = context.WithoutCancel(ctx)
	tx, err := idx.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("search index: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	// A change is applied as the message is now: its entry goes, and comes
	// back with its text if it is still there (a message not reached yet is
	// taken with the new ones).
	for _, d := range changed {
		changesTo = d.key
		if _, err := tx.ExecContext(ctx, `DELETE FROM messages_fts WHERE docid = ?`, d.id); err != nil {
			return false, fmt.Errorf("search index: take out message %d: %w", d.id, err)
		}
		if d.body.Valid && d.id <= indexedTo {
			if _, err := tx.ExecContext(ctx, `INSERT INTO messages_fts (docid, body) VALUES (?, ?)`, d.id, d.body.String); err != nil {
				return false, fmt.Errorf("search index: index message %d again: %w", d.id, err)
			}
		}
	}
	for _, d := range added {
		if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO messages_fts (docid, body) VALUES (?, ?)`, d.id, d.body.String); err != nil {
			return false, fmt.Errorf("search index: index message %d: %w", d.id, err)
		}
		indexedTo = d.id
	}
	if _, err := tx.ExecContext(ctx, `UPDATE search_state SET indexed_to = ?, changes_to = ?`, indexedTo, changesTo); err != nil {
		return false, fmt.Errorf("search index: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("search index: commit: %w", err)
	}
	idx.indexedTo.Store(indexedTo)
	idx.changesTo = changesTo
	return len(changed) == limit || len(added) == limit, nil
}

// IndexSearch indexes every message stored so far, returning once the index
// has them all: for tools that hand the database on (the load tool's
// datasets) and for tests. The inbox itself never needs to call it.
func (s *Store) IndexSearch(ctx context.Context) error {
	for {
		more, err := s.search.stepFrom(ctx, s.read, searchBatch)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}
