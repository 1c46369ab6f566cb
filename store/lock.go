package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// LockFileName is the file in the data folder that the running inbox holds an
// advisory lock on.
const LockFileName = "sessiondesk.lock"

// ErrInUse says that another process (a running inbox, or a restore) holds the
// data folder's lock.
var ErrInUse = errors.New("the data folder is in use by a running sessiondesk")

// FolderLock is an exclusive advisory lock on a data folder. The kernel drops
// it when the process ends, however it ends, so a crash never leaves a stale
// lock behind (unlike a pid file).
type FolderLock struct {
	f *os.File
}

// LockDataFolder takes the exclusive lock on dir (creating the folder and its
// lock file when needed) without waiting: it returns ErrInUse when another
// process, or another LockDataFolder in this one, holds it. Two inboxes on one
// folder would each believe it owns the outbox; a restore under a running
// inbox would swap the file it writes to.
func LockDataFolder(dir string) (*FolderLock, error) {
	if err := writableFolder(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	// flock locks belong to the open file description: a second open of the
	// same file, even in this process, is refused too.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrInUse)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return &FolderLock{f: f}, nil
}

// Unlock releases the lock. The lock file stays: removing it would let two
// processes lock two different files of the same name.
func (l *FolderLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close() // closing the last descriptor releases the flock
	l.f = nil
	if err != nil {
		return fmt.Errorf("unlock data folder: %w", err)
	}
	return nil
}
