package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"sessiondesk/session"
)

// openAt opens a Store on path with the defaults, as a second process would:
// its own connections to the same file.
func openAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults(), Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// A backup taken while another Store keeps writing is consistent: restored
// into a fresh folder it opens, passes integrity_check and holds every message
// committed before the backup began, byte for byte.
func TestBackupWhileWritingRestoresEveryMessage(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "sessiondesk.db")
	writer := openAt(t, dbPath) // the running inbox

	var (
		mu        sync.Mutex
		committed = map[int64]string{}
		ready     = make(chan struct{})
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			text := fmt.Sprintf("message %d %s", i, strings.Repeat("x", i%300))
			phone := fmt.Sprintf("+37529%07d", 1000000+i%40)
			r, err := writer.ReceiveClientMessage(ctx, ClientMessage{Phone: phone, Name: "Olga", Kind: session.Text, Text: text})
			if err != nil {
				t.Errorf("write %d: %v", i, err)
				close(ready)
				return
			}
			mu.Lock()
			committed[r.Message.ID] = text
			mu.Unlock()
			if i == 200 {
				close(ready)
			}
		}
	})
	<-ready

	mu.Lock()
	before := make(map[int64]string, len(committed))
	for id, text := range committed {
		before[id] = text
	}
	mu.Unlock()
	backup := filepath.Join(t.TempDir(), "copy.db")
	info, err := Backup(ctx, dbPath, backup, false)
	mu.Lock()
	during := len(committed) - len(before)
	mu.Unlock()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	t.Logf("backup: %d bytes, %d messages, schema %d; %d messages written during the copy", info.Bytes, info.Messages, info.SchemaVersion, during)
	if info.Messages < int64(len(before)) {
		t.Errorf("the backup reports %d messages, fewer than the %d committed before it began", info.Messages, len(before))
	}
	if want, _ := SchemaVersion(); info.SchemaVersion != want {
		t.Errorf("schema version %d, want %d", info.SchemaVersion, want)
	}
	// One self-contained file: no -wal or temporary file left beside it.
	entries, _ := os.ReadDir(filepath.Dir(backup))
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("the backup folder holds %v, want only copy.db", names)
	}

	restoredPath := filepath.Join(t.TempDir(), "data", "sessiondesk.db")
	got, aside, err := Restore(ctx, backup, restoredPath, t0)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if aside != "" {
		t.Errorf("restore into an empty folder moved %q aside", aside)
	}
	if got.Messages != info.Messages {
		t.Errorf("restored %d messages, the backup had %d", got.Messages, info.Messages)
	}
	restored := openAt(t, restoredPath)
	if err := restored.Read(ctx, func(r *Reader) error {
		for id, text := range before {
			m, err := r.Message(ctx, id)
			if err != nil {
				return fmt.Errorf("message %d: %w", id, err)
			}
			if m.Body != text {
				t.Errorf("message %d reads %q, want %q", id, m.Body, text)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var check string
	if err := restored.read.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check of the restored database: %q %v", check, err)
	}
}

func TestBackupRefusesAnExistingFileUnlessForced(t *testing.T) {
	ctx := context.Background()
	dbPath := filepath.Join(t.TempDir(), "sessiondesk.db")
	s := openAt(t, dbPath)
	receive(t, s, "+375298603938", "Hello")
	dest := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(dest, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Backup(ctx, dbPath, dest, false); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("backup over an existing file: %v, want a refusal", err)
	}
	if b, _ := os.ReadFile(dest); string(b) != "precious" {
		t.Fatalf("the refused backup changed the existing file: %q", b)
	}
	info, err := Backup(ctx, dbPath, dest, true)
	if err != nil {
		t.Fatalf("forced backup: %v", err)
	}
	if info.Messages != 1 {
		t.Errorf("forced backup holds %d messages, want 1", info.Messages)
	}
	// Never over the database itself, even with force, by any name.
	link := filepath.Join(t.TempDir(), "link.db")
	if err := os.Symlink(dbPath, link); err != nil {
		t.Fatal(err)
	}
	for _, over := range []string{dbPath, dbPath + "-wal", dbPath + "-shm", link, filepath.Join(filepath.Dir(dbPath), ".", "sessiondesk.db")} {
		if _, err := Backup(ctx, dbPath, over, true); err == nil || !strings.Contains(err.Error(), "the database itself") {
			t.Errorf("backup --force over %s: %v, want a refusal", over, err)
		}
	}
	if err := s.Read(ctx, func(r *Reader) error {
		_, err := r.Message(ctx, 1)
		return err
	}); err != nil {
		t.Errorf("the database after the refused backups: %v", err)
	}
	if _, err := Backup(ctx, filepath.Join(t.TempDir(), "none.db"), filepath.Join(t.TempDir(), "x.db"), false); err == nil {
		t.Error("backup of a missing database succeeded")
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dbPath), "none.db")); err == nil {
		t.Error("backup of a missing database created one")
	}
}

// Restore moves the current database aside, never deleting it, and refuses a
// damaged file, a file that is not a Sessiondesk database and one from a newer
// Sessiondesk, leaving the current database untouched.
func TestRestoreMovesTheCurrentDatabaseAsideAndRefusesBadBackups(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "sessiondesk.db")
	s := openAt(t, dbPath)
	old := receive(t, s, "+375298603938", "kept aside").Message
	backup := filepath.Join(t.TempDir(), "copy.db")
	if _, err := Backup(ctx, dbPath, backup, false); err != nil {
		t.Fatal(err)
	}
	receive(t, s, "+375298603938", "after the backup")
	s.Close()

	bad := map[string]func(path string) error{
		"not a database": func(p string) error { return os.WriteFile(p, []byte(strings.Repeat("garbage", 1000)), 0o600) },
		"empty":          func(p string) error { return os.WriteFile(p, nil, 0o600) },
		"no migrations": func(p string) error {
			db, err := openFile(p, "rwc")
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.Exec(`CREATE TABLE messages (id INTEGER PRIMARY KEY)`)
			return err
		},
		"newer schema": func(p string) error {
			b, err := os.ReadFile(backup)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, b, 0o600); err != nil {
				return err
			}
			db, err := openFile(p, "rw")
			if err != nil {
				return err
			}
			defer db.Close()
			_, err = db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999, 1)`)
			return err
		},
		"damaged": func(p string) error {
			b, err := os.ReadFile(backup)
			if err != nil {
				return err
			}
			// Turn the last page (an index or table b-tree page, never the
			// schema) into a page of the wrong kind: the file opens, and only
			// integrity_check finds out.
			b[len(b)-4096] = 0x01 // valid kinds are 2, 5, 10 and 13
			return os.WriteFile(p, b, 0o600)
		},
	}
	for name, build := range bad {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad.db")
			if err := build(p); err != nil {
				t.Fatal(err)
			}
			_, _, err := Restore(ctx, p, dbPath, t0)
			if err == nil {
				t.Fatalf("restore of a %s file succeeded", name)
			}
			t.Logf("refused: %v", err)
			// Which page the damage hits decides whether opening the file or
			// integrity_check finds it; either must say so.
			if msg := err.Error(); name == "damaged" && !strings.Contains(msg, "is damaged") && !strings.Contains(msg, "malformed") {
				t.Errorf("a damaged file was refused with %v, want it called damaged", err)
			}
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.Contains(e.Name(), "before-restore") || strings.Contains(e.Name(), "restoring") {
					t.Errorf("a refused restore left %s", e.Name())
				}
			}
		})
	}
	if _, _, err := Restore(ctx, filepath.Join(dir, "missing.db"), dbPath, t0); err == nil {
		t.Error("restore of a missing file succeeded")
	}

	info, aside, err := Restore(ctx, backup, dbPath, t0)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if info.Messages != 1 {
		t.Errorf("restored %d messages, want the backup's 1", info.Messages)
	}
	if aside == "" {
		t.Fatal("the current database was not moved aside")
	}
	// The database moved aside still opens, with both its messages.
	prev := openAt(t, aside)
	if err := prev.Read(ctx, func(r *Reader) error {
		msgs, err := r.Messages(ctx, old.ConversationID, 10)
		if len(msgs) != 2 {
			t.Errorf("the database moved aside holds %d messages, want 2", len(msgs))
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// A second restore in the same second does not overwrite what was moved aside.
	if _, _, err := Restore(ctx, backup, dbPath, t0); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second restore at the same time: %v, want a refusal", err)
	}
	cur := openAt(t, dbPath)
	if err := cur.Read(ctx, func(r *Reader) error {
		msgs, err := r.Messages(ctx, old.ConversationID, 10)
		if len(msgs) != 1 || msgs[0].Body != "kept aside" {
			t.Errorf("the restored database holds %+v, want only the backed-up message", msgs)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
}

func TestLockDataFolderIsExclusive(t *testing.T) {
	dir := t.TempDir()
	l, err := LockDataFolder(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LockDataFolder(dir); !errors.Is(err, ErrInUse) {
		t.Fatalf("second lock: %v, want ErrInUse", err)
	}
	if err := l.Unlock(); err != nil {
		t.Fatal(err)
	}
	l2, err := LockDataFolder(dir)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	l2.Unlock()
}
