package store

import (
	"context"
	"testing"

	"github.com/pressly/goose/v3"

	"sessiondesk/session"
)

// A lead is stored like any agent; an unknown role is refused.
func TestLeadRoleIsStored(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	a, err := s.EnsureAgent(ctx, "lena", "Lena", "lead")
	if err != nil || a.Role != "lead" {
		t.Fatalf("EnsureAgent(lead) = %+v, %v", a, err)
	}
	if _, err := s.EnsureAgent(ctx, "x", "X", "owner"); invalidField(err) != "role" {
		t.Errorf("an unknown role: %v, want an invalid role", err)
	}
}

// Migration 00025 rebuilds the agents table: going down and up again keeps
// every agent (a lead becomes an agent on the way down) and every reference to
// them, with foreign keys checked again afterwards.
func TestLeadRoleMigrationKeepsAgentsAndReferences(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	admin := mustAgent(t, s, "ada", "admin")
	lead := mustAgent(t, s, "lena", "lead")
	conv := receive(t, s, "+375298603938", "Hello").Message.ConversationID
	if _, err := sendAs(s, lead.ID, conv, "Hi, Lena here"); err != nil {
		t.Fatal(err)
	}
	p, err := migrationProvider(s.write, goose.WithAllowOutofOrder(true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.ApplyVersion(ctx, 25, false); err != nil {
		t.Fatalf("down: %v", err)
	}
	var role string
	if err := s.write.QueryRowContext(ctx, `SELECT role FROM agents WHERE id = ?`, lead.ID).Scan(&role); err != nil || role != "agent" {
		t.Errorf("the lead after the way down: %q, %v; want agent", role, err)
	}
	if _, err := p.ApplyVersion(ctx, 25, true); err != nil {
		t.Fatalf("up again: %v", err)
	}
	var n int
	if err := s.write.QueryRowContext(ctx, `SELECT count(*) FROM agents WHERE id IN (?, ?)`, admin.ID, lead.ID).Scan(&n); err != nil || n != 2 {
		t.Errorf("agents kept: %d, %v; want 2", n, err)
	}
	rows, err := s.write.QueryContext(ctx, `PRAGMA foreign_key_check`)
	if err != nil {
		t.Fatal(err)
	}
	if rows.Next() {
		t.Error("a reference to an agent broke")
	}
	rows.Close()
	var fk int
	if err := s.write.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk); err != nil || fk != 1 {
		t.Errorf("foreign keys after the migration: %d, %v; want on", fk, err)
	}
	if _, err := s.EnsureAgent(ctx, "lena", "Lena", "lead"); err != nil {
		t.Errorf("a lead after the way up: %v", err)
	}
	if _, err := sendAs(s, 999, conv, "nobody"); err == nil {
		t.Error("a message from an unknown agent was stored: foreign keys are not enforced")
	}
}
