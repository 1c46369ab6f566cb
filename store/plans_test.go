package store

import (
	"context"
	"database/sql"
	"fmt"
	"testing"

	sqlite3 "github.com/mattn/go-sqlite3"

	"sessiondesk/session"
)

// Every connection of both pools has stable plans (plans.go), also the read
// connections opened later under concurrent use; a connection of the plain
// driver has not, so the check can tell them apart.
func TestEveryConnectionHasStablePlans(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	ctx := context.Background()
	on := func(c *sql.Conn) bool {
		t.Helper()
		var got bool
		if err := c.Raw(func(dc any) error {
			conn, ok := dc.(*sqlite3.SQLiteConn)
			if !ok {
				return fmt.Errorf("driver connection %T", dc)
			}
			var err error
			got, err = stablePlansOn(conn)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	for name, db := range map[string]*sql.DB{"write": s.write, "read": s.read} {
		// Hold every connection the pool may open at once, so that each is
		// a distinct one.
		var held []*sql.Conn
		for range max(1, db.Stats().MaxOpenConnections) {
			c, err := db.Conn(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held = append(held, c)
		}
		for i, c := range held {
			if !on(c) {
				t.Errorf("%s connection %d: plans not stable", name, i)
			}
			c.Close()
		}
	}

	plain, err := sql.Open("sqlite3", "file:"+t.TempDir()+"/plain.db")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	c, err := plain.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if on(c) {
		t.Error("a connection of the plain driver reads as stable: the check cannot fail")
	}
}
