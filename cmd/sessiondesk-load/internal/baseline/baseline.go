// Package baseline measures what the product's figures are compared with, in
// the same run and on the same machine: raw SQLite one-row transactions with
// the product's pragmas on the same disk, and a bare Echo handler serving a
// body of the same size.
package baseline

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/labstack/echo/v4"
	// The same SQLite driver as the product's.
	_ "github.com/mattn/go-sqlite3"
)

// SQLiteTxRate opens a fresh database at path with the product's pragmas
// (store.Open's DSN: WAL, synchronous NORMAL, foreign keys, BEGIN IMMEDIATE)
// and commits one-row transactions for d, returning transactions per second.
// The file is removed afterwards.
func SQLiteTxRate(ctx context.Context, path string, d time.Duration) (float64, error) {
	params := url.Values{}
	params.Set("_busy_timeout", "5000")
	params.Set("_journal_mode", "WAL")
	params.Set("_foreign_keys", "on")
	params.Set("_synchronous", "NORMAL")
	params.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite3", "file:"+path+"?"+params.Encode())
	if err != nil {
		return 0, fmt.Errorf("raw sqlite: %w", err)
	}
	defer func() {
		db.Close()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(p)
		}
	}()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT NOT NULL, at INTEGER NOT NULL)`); err != nil {
		return 0, fmt.Errorf("raw sqlite: %w", err)
	}
	n := 0
	start := time.Now()
	for time.Since(start) < d {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return 0, fmt.Errorf("raw sqlite: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO t (body, at) VALUES (?, ?)`, "Hello, a question about my order", time.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return 0, fmt.Errorf("raw sqlite: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return 0, fmt.Errorf("raw sqlite: %w", err)
		}
		n++
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// Echo is a bare Echo server on loopback that answers GET / with a fixed body.
type Echo struct {
	URL string
	srv *http.Server
}

// ServeBody starts a bare Echo handler serving body with contentType.
func ServeBody(body []byte, contentType string) (*Echo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare echo: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.GET("/", func(c echo.Context) error { return c.Blob(http.StatusOK, contentType, body) })
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return &Echo{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}

// Close stops the server.
func (e *Echo) Close() error { return e.srv.Close() }

// Inbound is the JSON Routee posts for a client's message.
type Inbound struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Message   string `json:"message"`
	SentDate  string `json:"sentDate"`
	Direction string `json:"direction"`
}

// ServeWebhook starts a bare Echo handler for the Routee inbound webhook's
// path: it decodes the JSON body into the fields the product reads and
// answers as the product does, and stores nothing. The closed-loop senders
// against it measure what the HTTP round trip alone costs on this machine,
// with the load tool on the same cores.
func ServeWebhook() (*Echo, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare echo webhook: %w", err)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.POST("/webhooks/routee/:secret/inbound", func(c echo.Context) error {
		var in Inbound
		if err := json.NewDecoder(io.LimitReader(c.Request().Body, 1<<20)).Decode(&in); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": err.Error()})
		}
		if in.From == "" || in.Message == "" {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "from and message are required"})
		}
		return c.JSON(http.StatusOK, map[string]any{"status": "ok", "duplicate": false})
	})
	srv := &http.Server{Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // ends with Close
	return &Echo{URL: "http://" + ln.Addr().String(), srv: srv}, nil
}
