package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"sessiondesk/config"
	"sessiondesk/store"
)

// opsFlags parses a subcommand's flags, which may come before or after its one
// argument (a path for backup and restore, called what in the usage); it
// returns the data folder and the argument.
func opsFlags(name, what string, args []string, getenv func(string) string, stderr io.Writer, extra func(*flag.FlagSet)) (string, string, error) {
	fs := flag.NewFlagSet("sessiondesk "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := getenv("SESSIONDESK_DATA")
	if data == "" {
		data = "./data"
	}
	fs.StringVar(&data, "data", data, "data folder of the inbox (SESSIONDESK_DATA)")
	if extra != nil {
		extra(fs)
	}
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sessiondesk %s [flags] %s\n", name, what)
		fs.PrintDefaults()
	}
	var paths []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", "", err
		}
		if fs.NArg() == 0 {
			break
		}
		paths = append(paths, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(paths) != 1 {
		fs.Usage()
		return "", "", fmt.Errorf("%s: want one %s, got %d", name, what, len(paths))
	}
	if paths[0] == "" {
		return "", "", fmt.Errorf("%s: the %s is empty", name, what)
	}
	return data, paths[0], nil
}

// runBackup copies the database to a file while the inbox may be running.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var force bool
	data, dest, err := opsFlags("backup", "PATH", args, getenv, stderr, func(fs *flag.FlagSet) {
		fs.BoolVar(&force, "force", false, "replace PATH if it exists")
	})
	if err != nil {
		return err
	}
	db := config.Config{DataDir: data}.DBPath()
	info, err := store.Backup(ctx, db, dest, force)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "backed up %s to %s: %d bytes, %d messages, schema version %d, integrity ok\n",
		db, info.Path, info.Bytes, info.Messages, info.SchemaVersion)
	fmt.Fprintf(stdout, "attachments are files: copy %s too (see README, Backups)\n", filepath.Join(data, "media"))
	return nil
}

// runRestore puts a backup in place of the database, refusing while an inbox
// runs on the data folder.
func runRestore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	data, from, err := opsFlags("restore", "PATH", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	lock, err := store.LockDataFolder(data)
	if errors.Is(err, store.ErrInUse) {
		return fmt.Errorf("restore: %w: stop the inbox first", err)
	}
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer lock.Unlock()
	db := config.Config{DataDir: data}.DBPath()
	info, aside, err := store.Restore(ctx, from, db, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "restored %s to %s: %d bytes, %d messages, schema version %d, integrity ok\n",
		from, info.Path, info.Bytes, info.Messages, info.SchemaVersion)
	if aside != "" {
		fmt.Fprintf(stdout, "the database it replaced is kept at %s\n", aside)
	}
	if known, err := store.SchemaVersion(); err == nil && info.SchemaVersion < known {
		fmt.Fprintf(stdout, "the next start migrates it from schema version %d to %d\n", info.SchemaVersion, known)
	}
	return nil
}

// runUnbindLogin releases a login bound to a person of the sign-in service
// (store.SignIn), for someone refused because their id there changed. It may
// run while the inbox does.
func runUnbindLogin(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	data, login, err := opsFlags("unbind-login", "LOGIN", args, getenv, stderr, nil)
	if err != nil {
		return err
	}
	was, err := store.UnbindLogin(ctx, config.Config{DataDir: data}.DBPath(), login)
	if err != nil {
		return err
	}
	if !was {
		return fmt.Errorf("unbind-login: no agent has the login %q bound to a person: nothing to do", login)
	}
	fmt.Fprintf(stdout, "released %s: the next person to sign in with it becomes its agent\n", login)
	return nil
}
