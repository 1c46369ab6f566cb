package store

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"sessiondesk/session"
)

// TestSQLKeepsStatements guards the rule explained at _stmt_cache_size in
// Open: no statement of the store may let the planner look at a bound value,
// or SQLite prepares it again on every run. The columns that partial indexes
// compare with a value are read from a freshly migrated database, so a new
// partial index extends the check by itself; the SQL is read from the
// store's own sources.
func TestSQLKeepsStatements(t *testing.T) {
	s, _ := newStore(t, session.Defaults())
	rows, err := s.read.QueryContext(context.Background(),
		`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE '% WHERE %'`)
	if err != nil {
		t.Fatal(err)
	}
	valueCol := regexp.MustCompile(`(\w+)\s*(?:=|<>|!=|<=|>=|<|>)\s*(?:'[^']*'|-?\d+)`)
	columns := map[string]string{} // column -> a partial index comparing it with a value
	for rows.Next() {
		var name, sql string
		if err := rows.Scan(&name, &sql); err != nil {
			t.Fatal(err)
		}
		_, where, _ := strings.Cut(sql, " WHERE ")
		for _, m := range valueCol.FindAllStringSubmatch(where, -1) {
			columns[m[1]] = name
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if columns["status"] == "" {
		t.Fatalf("found no partial index on a status (read %v): the check reads nothing", columns)
	}

	limit := regexp.MustCompile(`(?i)\b(LIMIT|OFFSET)\s+\?`)
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for i, line := range strings.Split(string(src), "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "//") {
				continue
			}
			if limit.MatchString(line) {
				t.Errorf("%s:%d: %q: write LIMIT +? (the plan looks at a bare LIMIT ?)", f, i+1, strings.TrimSpace(line))
			}
			if strings.Contains(line, " SET ") {
				continue // an assignment, not a condition the planner reads
			}
			for col, index := range columns {
				if regexp.MustCompile(`\b` + col + `\s*(=|==|IS)\s*\?`).MatchString(line) {
					t.Errorf("%s:%d: %q: write %s = +? (partial index %s compares %s with a value)",
						f, i+1, strings.TrimSpace(line), col, index, col)
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("read %d source files: run from the store package's folder", checked)
	}
}
