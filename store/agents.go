package store

import (
	"context"
	"fmt"
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

// EnsureAgent returns the agent with this login, creating it or updating its name
// and role to the ones given.
func (s *Store) EnsureAgent(ctx context.Context, login, name, role string) (Agent, error) {
	if login == "" {
		return Agent{}, &InvalidError{Field: "login", Message: "an agent needs a login"}
	}
	if role != "agent" && role != "lead" && role != "admin" {
		return Agent{}, &InvalidError{Field: "role", Message: fmt.Sprintf("unknown role %q", role)}
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
