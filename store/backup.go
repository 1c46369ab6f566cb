package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
)

// CopyInfo describes a database file that Backup or Restore wrote and checked.
type CopyInfo struct {
	Path          string
	Bytes         int64
	Messages      int64
	SchemaVersion int64 // the newest migration applied to it
}

// SchemaVersion is the newest migration this binary knows: a database at a
// higher version was written by a newer Sessiondesk.
func SchemaVersion() (int64, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return 0, fmt.Errorf("list migrations: %w", err)
	}
	var newest int64
	for _, name := range names {
		v, err := goose.NumericComponent(filepath.Base(name))
		if err != nil {
			return 0, fmt.Errorf("migration %s: %w", name, err)
		}
		newest = max(newest, v)
	}
	return newest, nil
}

// Backup writes a consistent copy of the database at dbPath to dest while the
// inbox may go on writing to it (from this or another process).
//
// The copy is made with VACUUM INTO on a connection of its own: SQLite reads
// one snapshot in a single read transaction, which in WAL mode never blocks the
// writer, and writes a compacted file with no WAL beside it. (The online backup
// API would need the driver's raw connection, and restarts its copy whenever
// another connection writes between steps, which under a busy inbox may never
// finish.) The copy goes to a temporary file next to dest, is switched out of
// WAL mode so that it is one self-contained file, checked with integrity_check,
// synced, and only then renamed to dest: a crash leaves no half backup at dest.
// An existing dest is refused unless overwrite is set.
func Backup(ctx context.Context, dbPath, dest string, overwrite bool) (CopyInfo, error) {
	if _, err := os.Stat(dbPath); err != nil {
		return CopyInfo{}, fmt.Errorf("backup: no database to copy: %w", err)
	}
	if !overwrite {
		if _, err := os.Lstat(dest); err == nil {
			return CopyInfo{}, fmt.Errorf("backup: %s already exists (use --force to replace it)", dest)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return CopyInfo{}, fmt.Errorf("backup: %w", err)
		}
	}
	if fi, err := os.Stat(dest); err == nil && fi.IsDir() {
		return CopyInfo{}, fmt.Errorf("backup: %s is a folder; give the backup's file name", dest)
	}
	if sameDatabase(dbPath, dest) {
		return CopyInfo{}, fmt.Errorf("backup: %s is the database itself or one of its files; give a path outside it", dest)
	}
	// mode=rw: never create a database where none was.
	src, err := openFile(dbPath, "rw")
	if err != nil {
		return CopyInfo{}, fmt.Errorf("backup: %w", err)
	}
	defer src.Close()
	info, err := copyChecked(ctx, src, dest, "backup")
	if err != nil {
		return CopyInfo{}, fmt.Errorf("backup: %w", err)
	}
	return info, nil
}

// Restore replaces the database at dbPath with the backup at from. The caller
// holds the data folder's lock (LockDataFolder), so no inbox runs on it.
//
// The backup is opened read-only and never changed. It must pass
// integrity_check and must not be newer than this binary's migrations (the
// next start migrates an older one). It is copied with VACUUM INTO to a
// temporary file beside dbPath, so a backup left in WAL mode with its -wal file
// comes back whole, and the copy is checked again. Only then is the current
// database, with its -wal and -shm, moved aside under a name carrying the time
// (it is never deleted), and the copy renamed into place. It returns the
// restored file's description and the path of the database moved aside ("" if
// there was none).
func Restore(ctx context.Context, from, dbPath string, now time.Time) (CopyInfo, string, error) {
	fi, err := os.Stat(from)
	if err != nil {
		return CopyInfo{}, "", fmt.Errorf("restore: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return CopyInfo{}, "", fmt.Errorf("restore: %s is not a file", from)
	}
	src, err := openFile(from, "ro")
	if err != nil {
		return CopyInfo{}, "", fmt.Errorf("restore: %w", err)
	}
	defer src.Close()
	if err := checkDB(ctx, src, from); err != nil {
		return CopyInfo{}, "", fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o750); err != nil {
		return CopyInfo{}, "", fmt.Errorf("restore: create data folder: %w", err)
	}
	tmp := dbPath + ".restoring"
	// A file left by a restore that crashed is an unfinished copy: start over.
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return CopyInfo{}, "", fmt.Errorf("restore: %w", err)
	}
	info, err := copyTo(ctx, src, tmp)
	if err != nil {
		os.Remove(tmp)
		return CopyInfo{}, "", fmt.Errorf("restore: %w", err)
	}
	aside, err := moveAside(ctx, dbPath, now)
	if err != nil {
		os.Remove(tmp)
		return CopyInfo{}, "", fmt.Errorf("restore: %w", err)
	}
	if err := os.Rename(tmp, dbPath); err != nil {
		return CopyInfo{}, aside, fmt.Errorf("restore: put the copy in place (the old database is at %s): %w", aside, err)
	}
	if err := syncDir(filepath.Dir(dbPath)); err != nil {
		return CopyInfo{}, aside, fmt.Errorf("restore: %w", err)
	}
	info.Path = dbPath
	return info, aside, nil
}

// sameDatabase reports whether path is the database at dbPath or one of the
// files SQLite or the search index keep beside it: a backup renamed over any of them would pull
// the live database out from under the running inbox.
func sameDatabase(dbPath, path string) bool {
	pathFI, err := os.Stat(path)
	for _, suffix := range []string{"", "-wal", "-shm", "-journal", "-search", "-search-wal", "-search-shm"} {
		if fi, serr := os.Stat(dbPath + suffix); err == nil && serr == nil && os.SameFile(fi, pathFI) {
			return true
		}
		a, aerr := filepath.Abs(dbPath + suffix)
		b, berr := filepath.Abs(path)
		if aerr == nil && berr == nil && a == b {
			return true
		}
	}
	return false
}

// openFile opens one connection to an existing database file in the given
// mode (ro or rw), without migrating it.
func openFile(path, mode string) (*sql.DB, error) {
	params := url.Values{}
	params.Set("mode", mode)
	params.Set("_busy_timeout", "5000")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+params.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	db.SetMaxOpenConns(1)
	if err := db.Ping(); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return db, nil
}

// copyChecked copies src to a temporary file beside dest, checks and syncs it,
// and renames it to dest.
func copyChecked(ctx context.Context, src *sql.DB, dest, what string) (CopyInfo, error) {
	dir := filepath.Dir(dest)
	f, err := os.CreateTemp(dir, "."+filepath.Base(dest)+"-*.tmp")
	if err != nil {
		return CopyInfo{}, fmt.Errorf("temporary file for the %s: %w", what, err)
	}
	tmp := f.Name()
	f.Close() // VACUUM INTO accepts an empty file
	info, err := copyTo(ctx, src, tmp)
	if err != nil {
		os.Remove(tmp)
		return CopyInfo{}, err
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return CopyInfo{}, fmt.Errorf("put the %s in place: %w", what, err)
	}
	if err := syncDir(dir); err != nil {
		return CopyInfo{}, err
	}
	info.Path = dest
	return info, nil
}

// copyTo writes a snapshot of src into the empty or missing file tmp, makes it
// a rollback-journal database (one file), checks it and syncs it to disk.
func copyTo(ctx context.Context, src *sql.DB, tmp string) (CopyInfo, error) {
	// The file name is a bound parameter: INTO takes any expression.
	if _, err := src.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		return CopyInfo{}, fmt.Errorf("copy: %w", err)
	}
	dst, err := openFile(tmp, "rw")
	if err != nil {
		return CopyInfo{}, err
	}
	defer dst.Close()
	// A copy of a WAL database says WAL in its header; a backup is one file.
	var mode string
	if err := dst.QueryRowContext(ctx, `PRAGMA journal_mode = DELETE`).Scan(&mode); err != nil {
		return CopyInfo{}, fmt.Errorf("copy: leave WAL mode: %w", err)
	}
	if err := checkDB(ctx, dst, tmp); err != nil {
		return CopyInfo{}, fmt.Errorf("the copy failed its check: %w", err)
	}
	info := CopyInfo{}
	if err := dst.QueryRowContext(ctx, `SELECT count(*) FROM messages`).Scan(&info.Messages); err != nil {
		return CopyInfo{}, fmt.Errorf("count messages: %w", err)
	}
	if info.SchemaVersion, err = dbSchemaVersion(ctx, dst); err != nil {
		return CopyInfo{}, err
	}
	if err := dst.Close(); err != nil {
		return CopyInfo{}, fmt.Errorf("close the copy: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		return CopyInfo{}, err
	}
	fi, err := os.Stat(tmp)
	if err != nil {
		return CopyInfo{}, fmt.Errorf("copy: %w", err)
	}
	info.Bytes = fi.Size()
	return info, nil
}

// checkDB refuses a file that is damaged, is not a Sessiondesk database, or
// was migrated by a newer Sessiondesk than this one.
func checkDB(ctx context.Context, db *sql.DB, path string) error {
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("%s: integrity check: %w", path, err)
	}
	var problems []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			rows.Close()
			return fmt.Errorf("%s: integrity check: %w", path, err)
		}
		if line != "ok" {
			problems = append(problems, line)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: integrity check: %w", path, err)
	}
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], "…")
		}
		return fmt.Errorf("%s is damaged: %s", path, strings.Join(problems, "; "))
	}
	v, err := dbSchemaVersion(ctx, db)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	known, err := SchemaVersion()
	if err != nil {
		return err
	}
	if v > known {
		return fmt.Errorf("%s has schema version %d, newer than this sessiondesk knows (%d): use the release that wrote it", path, v, known)
	}
	return nil
}

// dbSchemaVersion reads the newest migration goose applied to db.
func dbSchemaVersion(ctx context.Context, db *sql.DB) (int64, error) {
	var v int64
	err := db.QueryRowContext(ctx, `SELECT coalesce(max(version_id), 0) FROM goose_db_version WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("not a sessiondesk database (no migration table): %w", err)
	}
	if v == 0 {
		return 0, errors.New("not a sessiondesk database (no migration applied)")
	}
	return v, nil
}

// moveAside renames the database at dbPath and its -wal and -shm files to
// names carrying the time, so that they still open together as one database.
// It first folds the -wal into the database when it can (a clean stop of the
// inbox has done so already), so that normally one file moves. It returns the
// new name of the database, "" when there was nothing to move.
func moveAside(ctx context.Context, dbPath string, now time.Time) (string, error) {
	if _, err := os.Stat(dbPath); err == nil {
		// Best effort: a damaged database may not open; its files move as they are.
		if db, err := openFile(dbPath, "rw"); err == nil {
			_, _ = db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
			db.Close() // the last connection to close removes the -wal
		}
	}
	ext := filepath.Ext(dbPath)
	aside := strings.TrimSuffix(dbPath, ext) + ".before-restore-" + now.UTC().Format("20060102T150405Z") + ext
	moved := false
	// The database first: a -wal never stays beside a database it was not
	// written for. A -wal or -shm without its database (left by a restore that
	// stopped half way) moves aside too, never deleted.
	suffixes := []string{"", "-wal", "-shm"}
	for _, suffix := range suffixes {
		if _, err := os.Lstat(aside + suffix); err == nil {
			return "", fmt.Errorf("%s already exists: wait a second and try again", aside+suffix)
		}
	}
	for _, suffix := range suffixes {
		err := os.Rename(dbPath+suffix, aside+suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("move %s aside: %w", dbPath+suffix, err)
		}
		moved = true
	}
	if !moved {
		return "", nil
	}
	return aside, nil
}

func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, err)
	}
	return nil
}
