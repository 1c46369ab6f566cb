package handlers

import (
	"encoding/csv"
	"net/http"

	"github.com/labstack/echo/v4"
)

// csvExport is a CSV download read from the store in batches, so that a
// large export holds one batch in memory at a time.
type csvExport[T any] struct {
	filename string   // the download's name
	header   []string // the first line
	batch    int      // rows a read asks for; fewer back means the last one
	// read returns the batch after row last (the first batch when first).
	read   func(last T, first bool) ([]T, error)
	record func(T) []string // a row's cells, formula-neutralised
	what   string           // names the export in the log
}

// stream writes the export. The first batch is read before anything is
// written, so a failure is still a clean 500; a later one aborts the
// response, so the client sees an incomplete download rather than a short
// file that looks whole. A client that goes away ends it quietly.
func (x csvExport[T]) stream(s *Server, c echo.Context) error {
	var zero T
	rows, err := x.read(zero, true)
	if err != nil {
		return err
	}
	res := c.Response()
	h := res.Header()
	h.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h.Set(echo.HeaderContentDisposition, `attachment; filename="`+x.filename+`"`)
	h.Set("Cache-Control", "no-store")
	res.WriteHeader(http.StatusOK)
	w := csv.NewWriter(res)
	if err := w.Write(x.header); err != nil {
		return nil // the client went away
	}
	for {
		for _, row := range rows {
			if err := w.Write(x.record(row)); err != nil {
				return nil
			}
		}
		w.Flush()
		if w.Error() != nil {
			return nil
		}
		res.Flush()
		if len(rows) < x.batch {
			return nil
		}
		if rows, err = x.read(rows[len(rows)-1], false); err != nil {
			s.Log.Error(x.what+" export failed", "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}
