package store

/*
typedef struct sqlite3 sqlite3;
extern int sqlite3_db_config(sqlite3*, int op, ...);

// sd_stable_plans sets SQLITE_DBCONFIG_ENABLE_QPSG (1007 in sqlite3.h) to on
// (1), or only reads it (-1), and answers the setting in force, or -1 when
// SQLite refused. The sqlite3 library is the one mattn/go-sqlite3 compiles
// into the binary: the symbol resolves when the program is linked.
static int sd_stable_plans(sqlite3 *db, int on) {
	int now = -1;
	if (sqlite3_db_config(db, 1007, on, &now) != 0) return -1;
	return now;
}
*/
import "C"

import (
	"context"
	"database/sql/driver"
	"errors"
	"reflect"

	sqlite3 "github.com/mattn/go-sqlite3"
)

// Why every connection has the query planner stability guarantee (QPSG) on:
// the driver keeps each connection's prepared statements (_stmt_cache_size)
// but clears a statement's bindings before every run, and SQLite expires a
// statement whose plan looked at a bound value when its bindings change. Its
// planner looks at them often: LIMIT ? (for LIMIT 0 and 1), col = ? against a
// partial index's WHERE, and any col = ? in a join. So nearly every statement
// of the store was parsed and planned again inside its first step: 170 µs
// for the outbox's empty query instead of 4 µs, a tenth of the CPU under live
// traffic. With QPSG the planner never reads bound values, the plans no
// longer depend on them, and a kept statement stays prepared. The store
// writes no query whose plan needs a bound value (a LIKE prefix, a partial
// index chosen by a parameter): those take literals.

// connector opens the store's connections with a driver of its own (no
// global registration), which turns QPSG on in each new connection and then
// runs then, when given (the read connections attach the search index).
type connector struct {
	driver *sqlite3.SQLiteDriver
	dsn    string
}

func newConnector(dsn string, then func(*sqlite3.SQLiteConn) error) connector {
	hook := stablePlans
	if then != nil {
		hook = func(conn *sqlite3.SQLiteConn) error {
			if err := stablePlans(conn); err != nil {
				return err
			}
			return then(conn)
		}
	}
	return connector{driver: &sqlite3.SQLiteDriver{ConnectHook: hook}, dsn: dsn}
}

func (c connector) Connect(context.Context) (driver.Conn, error) { return c.driver.Open(c.dsn) }
func (c connector) Driver() driver.Driver                        { return c.driver }

// stablePlans turns QPSG on for a new connection.
func stablePlans(conn *sqlite3.SQLiteConn) error {
	db, err := sqliteHandle(conn)
	if err != nil {
		return err
	}
	if C.sd_stable_plans(db, 1) != 1 {
		return errors.New("store: SQLite refused the query planner stability guarantee")
	}
	return nil
}

// stablePlansOn reports whether a connection has QPSG on (the tests ask).
func stablePlansOn(conn *sqlite3.SQLiteConn) (bool, error) {
	db, err := sqliteHandle(conn)
	if err != nil {
		return false, err
	}
	return C.sd_stable_plans(db, -1) == 1, nil
}

// sqliteHandle is the connection's sqlite3*. The driver does not export it
// (it offers no call to sqlite3_db_config), so it is read from the driver's
// field; should a new version of the driver rename it, opening the store
// fails here with this message rather than running without stable plans.
func sqliteHandle(conn *sqlite3.SQLiteConn) (*C.sqlite3, error) {
	f := reflect.ValueOf(conn).Elem().FieldByName("db")
	if !f.IsValid() || f.Kind() != reflect.Pointer || f.IsNil() {
		return nil, errors.New("store: the SQLite driver's connection has no database handle where this version expects it (field db)")
	}
	return (*C.sqlite3)(f.UnsafePointer()), nil
}
