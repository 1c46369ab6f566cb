package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"
)

// Agent is a support person using the inbox.
type Agent struct {
	ID        int64
	Login     string
	Name      string
	Role      string // agent, lead or admin
	CreatedAt time.Time
}

// ErrLoginTaken refuses a sign-in whose login (an e-mail) is already bound to
// another person of the login source (SignIn).
var ErrLoginTaken = errors.New("this login belongs to another person at the sign-in service")

// SignIn is who the login source says is signing in.
type SignIn struct {
	Login string // the agent's login: the e-mail, else the user name
	// Subject is the login source's unchanging id of the person (the proxy's
	// user header, or the token's issuer and sub); "" when there is none.
	Subject    string
	Name, Role string
}

// SignIn returns the agent of a sign-in, creating it on first sight and
// following name, role and login changes at the login source.
//
// An agent's login is their e-mail, and a person may be able to change their
// e-mail at the login source: keyed by the login alone, anyone could become
// a colleague (their messages, notes, read marks and settings) by taking
// their address. So the login is bound to the subject the first time it
// signs in with one, and another subject presenting it is refused with
// ErrLoginTaken. A subject that comes back with a new login keeps its agent,
// renamed, unless the new login is someone else's. A sign-in without a
// subject (the dev login) is keyed by its login, as EnsureAgent.
func (s *Store) SignIn(ctx context.Context, in SignIn) (Agent, error) {
	if in.Subject == "" {
		return s.EnsureAgent(ctx, in.Login, in.Name, in.Role)
	}
	if err := checkAgent(in.Login, in.Role); err != nil {
		return Agent{}, err
	}
	if in.Name == "" {
		in.Name = in.Login
	}
	var a Agent
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var bySubject, byLogin int64
		var bound sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT id FROM agents WHERE subject = ?`, in.Subject).Scan(&bySubject)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		err = tx.QueryRowContext(ctx, `SELECT id, subject FROM agents WHERE login = ?`, in.Login).Scan(&byLogin, &bound)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return false, err
		}
		var created int64
		switch {
		case byLogin != 0 && byLogin != bySubject && (bySubject != 0 || bound.Valid):
			// The login is another person's: bound to another subject, or
			// unbound while this subject already has an agent of its own.
			return false, ErrLoginTaken
		case bySubject != 0: // known person; the login may have changed
			err = tx.QueryRowContext(ctx, `UPDATE agents SET login = ?, name = ?, role = ? WHERE id = ?
				RETURNING id, login, name, role, created_at`, in.Login, in.Name, in.Role, bySubject).
				Scan(&a.ID, &a.Login, &a.Name, &a.Role, &created)
		case byLogin != 0: // an agent from before subjects: bind it
			err = tx.QueryRowContext(ctx, `UPDATE agents SET subject = ?, name = ?, role = ? WHERE id = ?
				RETURNING id, login, name, role, created_at`, in.Subject, in.Name, in.Role, byLogin).
				Scan(&a.ID, &a.Login, &a.Name, &a.Role, &created)
		default:
			err = tx.QueryRowContext(ctx, `INSERT INTO agents (login, subject, name, role, created_at) VALUES (?, ?, ?, ?, ?)
				RETURNING id, login, name, role, created_at`, in.Login, in.Subject, in.Name, in.Role, ms(s.opts.Now())).
				Scan(&a.ID, &a.Login, &a.Name, &a.Role, &created)
		}
		a.CreatedAt = fromMS(created)
		return false, err
	})
	if err != nil {
		return Agent{}, fmt.Errorf("sign in %q: %w", in.Login, err)
	}
	return a, nil
}

// UnbindLogin forgets which person of the login source a login is bound to,
// in the database file at path, so that the next sign-in with it binds it
// again: for a person whose id at the login source changed (a renamed user),
// refused since with ErrLoginTaken. It reports whether the login was bound.
// It may run beside the inbox: one UPDATE on a connection of its own, which
// SQLite's locking orders with the inbox's writer.
func UnbindLogin(ctx context.Context, path, login string) (bool, error) {
	if login == "" {
		return false, &InvalidError{Field: "login", Message: "name the login to unbind"}
	}
	if _, err := os.Stat(path); err != nil {
		return false, fmt.Errorf("unbind login: %w", err)
	}
	db, err := openFile(path, "rw")
	if err != nil {
		return false, fmt.Errorf("unbind login: %w", err)
	}
	defer db.Close()
	res, err := db.ExecContext(ctx, `UPDATE agents SET subject = NULL WHERE login = ? AND subject IS NOT NULL`, login)
	if err != nil {
		return false, fmt.Errorf("unbind login %q (an inbox older than bound logins must start once first): %w", login, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("unbind login %q: %w", login, err)
	}
	return n > 0, nil
}

// checkAgent refuses a login or role no agent can have.
func checkAgent(login, role string) error {
	if login == "" {
		return &InvalidError{Field: "login", Message: "an agent needs a login"}
	}
	if role != "agent" && role != "lead" && role != "admin" {
		return &InvalidError{Field: "role", Message: fmt.Sprintf("unknown role %q", role)}
	}
	return nil
}

// EnsureAgent returns the agent with this login, creating it or updating its name
// and role to the ones given.
func (s *Store) EnsureAgent(ctx context.Context, login, name, role string) (Agent, error) {
	if err := checkAgent(login, role); err != nil {
		return Agent{}, err
	}
	if name == "" {
		name = login
	}
	var a Agent
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var created int64
		err := tx.QueryRowContext(ctx, `
			INSERT INTO agents (login, name, role, created_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (login) DO UPDATE SET name = excluded.name, role = excluded.role
			RETURNING id, login, name, role, created_at`,
			login, name, role, ms(s.opts.Now())).Scan(&a.ID, &a.Login, &a.Name, &a.Role, &created)
		a.CreatedAt = fromMS(created)
		return false, err
	})
	if err != nil {
		return Agent{}, fmt.Errorf("ensure agent %q: %w", login, err)
	}
	return a, nil
}
