package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"sessiondesk/session"
)

// A login (an e-mail the person may be able to change at the sign-in
// service) is bound to the first person who signs in with it: another
// person taking the address is refused, and becomes nobody's agent.
func TestSignInBindsTheLoginToOnePerson(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	anna, err := s.SignIn(ctx, SignIn{Login: "anna@example.com", Subject: "anna", Name: "Anna", Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.SignIn(ctx, SignIn{Login: "anna@example.com", Subject: "ivan", Name: "Ivan", Role: "agent"})
	if !errors.Is(err, ErrLoginTaken) {
		t.Fatalf("Ivan signing in with Anna's address: %v, want ErrLoginTaken", err)
	}
	again, err := s.SignIn(ctx, SignIn{Login: "anna@example.com", Subject: "anna", Name: "Anna K.", Role: "admin"})
	if err != nil || again.ID != anna.ID || again.Name != "Anna K." || again.Role != "admin" {
		t.Fatalf("Anna again: %+v, %v; want her agent %d, renamed", again, err, anna.ID)
	}
	if got := agentLogins(t, s); got != "[anna@example.com/Anna K./admin]" {
		t.Errorf("agents %s, want Anna's alone, untouched by Ivan", got)
	}
}

// A person whose address changes at the sign-in service keeps their agent;
// one who takes an address that is already another agent's is refused.
func TestSignInFollowsALoginChange(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	boris, err := s.SignIn(ctx, SignIn{Login: "boris@old.example", Subject: "boris", Name: "Boris", Role: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	moved, err := s.SignIn(ctx, SignIn{Login: "boris@new.example", Subject: "boris", Name: "Boris", Role: "agent"})
	if err != nil || moved.ID != boris.ID || moved.Login != "boris@new.example" {
		t.Fatalf("Boris's new address: %+v, %v; want his agent %d under the new login", moved, err, boris.ID)
	}
	if _, err := s.SignIn(ctx, SignIn{Login: "olga@example.com", Subject: "olga", Name: "Olga", Role: "agent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignIn(ctx, SignIn{Login: "olga@example.com", Subject: "boris", Name: "Boris", Role: "agent"}); !errors.Is(err, ErrLoginTaken) {
		t.Errorf("Boris taking Olga's address: %v, want ErrLoginTaken", err)
	}
	// Nor an agent from before subjects (unbound), once he has one of his own.
	if _, err := s.EnsureAgent(ctx, "legacy@example.com", "Legacy", "agent"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignIn(ctx, SignIn{Login: "legacy@example.com", Subject: "boris", Name: "Boris", Role: "agent"}); !errors.Is(err, ErrLoginTaken) {
		t.Errorf("Boris taking an unbound agent's address: %v, want ErrLoginTaken", err)
	}
	if got := agentLogins(t, s); got != "[boris@new.example/Boris/agent legacy@example.com/Legacy/agent olga@example.com/Olga/agent]" {
		t.Errorf("agents %s", got)
	}
}

// Agents from before subjects bind at their next sign-in; an unbound login
// binds again, for a person whose id at the sign-in service changed.
func TestSignInBindsOldAgentsAndUnbindLetsThemRebind(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s, err := Open(context.Background(), path, Options{Rules: session.Defaults()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	old, err := s.EnsureAgent(ctx, "anna@example.com", "Anna", "agent")
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.SignIn(ctx, SignIn{Login: "anna@example.com", Subject: "anna", Name: "Anna", Role: "agent"})
	if err != nil || a.ID != old.ID {
		t.Fatalf("first sign-in with a subject: %+v, %v; want agent %d", a, err, old.ID)
	}
	// Renamed at the sign-in service: refused until an admin unbinds.
	renamed := SignIn{Login: "anna@example.com", Subject: "anna.k", Name: "Anna", Role: "agent"}
	if _, err := s.SignIn(ctx, renamed); !errors.Is(err, ErrLoginTaken) {
		t.Fatalf("a new subject for a bound login: %v, want ErrLoginTaken", err)
	}
	// From another connection, as the command does beside a running inbox.
	if was, err := UnbindLogin(ctx, path, "anna@example.com"); err != nil || !was {
		t.Fatalf("unbind: %v, %v", was, err)
	}
	if was, err := UnbindLogin(ctx, path, "nobody@example.com"); err != nil || was {
		t.Errorf("unbinding an unknown login: %v, %v; want false, nil", was, err)
	}
	if _, err := UnbindLogin(ctx, filepath.Join(t.TempDir(), "missing.db"), "anna@example.com"); err == nil {
		t.Error("unbinding in a database file that does not exist succeeded")
	}
	if a, err := s.SignIn(ctx, renamed); err != nil || a.ID != old.ID {
		t.Errorf("after unbinding: %+v, %v; want agent %d", a, err, old.ID)
	}
	// Blank and hostile input is refused before anything is stored.
	for _, in := range []SignIn{{Subject: "x", Role: "agent"}, {Login: "x@example.com", Subject: "x", Role: "root"}} {
		var inv *InvalidError
		if _, err := s.SignIn(ctx, in); !errors.As(err, &inv) {
			t.Errorf("%+v: %v, want an *InvalidError", in, err)
		}
	}
}

func agentLogins(t *testing.T, s *Store) string {
	t.Helper()
	var out []string
	err := s.Read(context.Background(), func(r *Reader) error {
		agents, err := r.Agents(context.Background())
		for _, a := range agents {
			out = append(out, a.Login+"/"+a.Name+"/"+a.Role)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(out)
}
