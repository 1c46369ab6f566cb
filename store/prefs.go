package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// AgentPrefs are one agent's notification settings. The zero value is the
// default: no sound, no desktop notifications.
type AgentPrefs struct {
	// Sound plays a short tone when a client writes in the agent's views.
	Sound bool
	// Desktop shows a desktop notification (the browser's) while the inbox
	// is in the background; the browser asks the agent for permission too.
	Desktop bool
}

// AgentPrefs returns an agent's notification settings; the defaults when the
// agent never saved any.
func (r *Reader) AgentPrefs(ctx context.Context, agentID int64) (AgentPrefs, error) {
	var p AgentPrefs
	err := r.q.QueryRowContext(ctx, `SELECT sound, desktop FROM agent_prefs WHERE agent_id = ?`, agentID).Scan(&p.Sound, &p.Desktop)
	if errors.Is(err, sql.ErrNoRows) {
		return AgentPrefs{}, nil
	}
	if err != nil {
		return AgentPrefs{}, fmt.Errorf("preferences of agent %d: %w", agentID, err)
	}
	return p, nil
}

// AgentPrefsChange is what an update sets; a nil field keeps its value.
type AgentPrefsChange struct {
	Sound, Desktop *bool
}

// UpdateAgentPrefs applies ch to an agent's notification settings in one
// statement (two updates of different settings at once both hold) and
// returns them. An agent that does not exist is ErrNotFound.
func (s *Store) UpdateAgentPrefs(ctx context.Context, agentID int64, ch AgentPrefsChange) (AgentPrefs, error) {
	var p AgentPrefs
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM agents WHERE id = ?)`, agentID).Scan(&exists); err != nil {
			return false, err
		}
		if !exists {
			return false, fmt.Errorf("agent %d: %w", agentID, ErrNotFound)
		}
		return false, tx.QueryRowContext(ctx, `
			INSERT INTO agent_prefs (agent_id, sound, desktop, updated_at) VALUES (?1, coalesce(?2, 0), coalesce(?3, 0), ?4)
			ON CONFLICT (agent_id) DO UPDATE SET sound = coalesce(?2, sound), desktop = coalesce(?3, desktop),
			       updated_at = excluded.updated_at
			RETURNING sound, desktop`,
			agentID, ch.Sound, ch.Desktop, ms(s.opts.Now())).Scan(&p.Sound, &p.Desktop)
	})
	if err != nil {
		return AgentPrefs{}, fmt.Errorf("save preferences of agent %d: %w", agentID, err)
	}
	return p, nil
}
