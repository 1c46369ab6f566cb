package store

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// A report reads a fact per session of its range (sessionFact). Days whose
// sessions have all ended keep their facts in report_session_days (migration
// 00049), encoded once by BuildReportDays; a report decodes those and reads
// only the other days from the sessions. Triggers drop a kept day in the
// transaction that changes any of its sessions, so within one read snapshot a
// kept day and the sessions agree.

// dayMS is the length of the UTC days the facts are kept by.
const dayMS = int64(24 * time.Hour / time.Millisecond)

// reportDaysFormat is the encoding of the kept days (their format column): a
// day of another format is read from the sessions and built again.
const reportDaysFormat = 1

// sessionFact is what the reports need of one session.
type sessionFact struct {
	startedAt, endsAt int64
	conversation      int64
	agent             int64 // the first business message's agent; 0: none
	country           string
	client            bool // opened by the client (else by a rollover)
	media             bool // a counted media message
	unanswered        bool // the client's last message has no answer
	priced            bool // the provider reported a price
	used, peak        int64
	estimated         float64 // at the session's frozen rates (S7)
	reported          float64 // what the provider reported, when priced
	firstWait         int64   // opened by the client and answered: the wait in ms; else -1
}

// sessionFactsSQL reads sessionFact's fields, in order, from the sessions of
// a range of start times (sessions_by_started).
const sessionFactsSQL = `SELECT s.started_at, s.ends_at, s.conversation_id, coalesce(s.first_agent_id, 0), s.country,
	s.opened_by = 'client', s.media_used > 0, s.last_in_id > s.last_out_id, s.reported_count > 0,
	s.used, s.peak_unanswered, ` + EstimateSQL + `, s.reported_cost,
	CASE WHEN s.opened_by = 'client' AND s.first_out_at IS NOT NULL THEN max(s.first_out_at - s.received_at, 0) ELSE -1 END
	FROM sessions s WHERE s.started_at >= ? AND s.started_at < ?`

// readSessionFacts calls visit with the fact of every session started in
// [from, to) (whose first agent is agent, when not 0), in the order they
// started. The fact is valid only during the call.
func readSessionFacts(ctx context.Context, q queryer, from, to, agent int64, visit func(*sessionFact)) error {
	query, args := sessionFactsSQL+` ORDER BY s.started_at`, []any{from, to}
	if agent != 0 {
		query, args = sessionFactsSQL+` AND s.first_agent_id = ? ORDER BY s.started_at`, append(args, agent)
	}
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return fmt.Errorf("sessions' facts: %w", err)
	}
	defer rows.Close()
	var f sessionFact
	for rows.Next() {
		if err := rows.Scan(&f.startedAt, &f.endsAt, &f.conversation, &f.agent, &f.country, &f.client, &f.media,
			&f.unanswered, &f.priced, &f.used, &f.peak, &f.estimated, &f.reported, &f.firstWait); err != nil {
			return fmt.Errorf("sessions' facts: %w", err)
		}
		if !f.priced {
			f.reported = 0
		}
		visit(&f)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sessions' facts: %w", err)
	}
	return nil
}

// eachFact calls visit with the fact of every session started in [from, to)
// (of agent, when not 0), in the order they started: the kept days decoded
// (into one buffer, reused from day to day), the others read from the
// sessions. The fact is valid only during the call.
func (r *Reader) eachFact(ctx context.Context, from, to, agent int64, visit func(*sessionFact)) error {
	first, last := from/dayMS, (to-1)/dayMS
	kept, err := keptDays(ctx, r.q, first, last)
	if err != nil {
		return err
	}
	// Days not kept are read in runs: one range of the index per run.
	runFrom := int64(-1)
	flush := func(until int64) error {
		if runFrom < 0 {
			return nil
		}
		err := readSessionFacts(ctx, r.q, max(runFrom, from), min(until, to), agent, visit)
		runFrom = -1
		return err
	}
	// One day's blob and facts in memory at a time, whatever the range.
	var blob []byte
	var buf []sessionFact
	countries := map[string]string{}
	for day := first; day <= last; day++ {
		ok := kept[day]
		if ok {
			if err := r.q.QueryRowContext(ctx, `SELECT facts FROM report_session_days WHERE day = ?`, day).Scan(&blob); err != nil {
				return fmt.Errorf("kept report day: %w", err)
			}
			if buf, err = decodeFacts(day, blob, buf[:0], countries); err != nil {
				ok = false // damaged: the sessions say
			}
		}
		if !ok {
			if runFrom < 0 {
				runFrom = day * dayMS
			}
			continue
		}
		if err := flush(day * dayMS); err != nil {
			return err
		}
		for i := range buf {
			if f := &buf[i]; f.startedAt >= from && f.startedAt < to && (agent == 0 || f.agent == agent) {
				visit(f)
			}
		}
	}
	return flush((last + 1) * dayMS)
}

// keptDays returns the days in [first, last] kept in the current format.
func keptDays(ctx context.Context, q queryer, first, last int64) (map[int64]bool, error) {
	rows, err := q.QueryContext(ctx, `SELECT day FROM report_session_days WHERE day BETWEEN ? AND ? AND format = ?`,
		first, last, reportDaysFormat)
	if err != nil {
		return nil, fmt.Errorf("kept report days: %w", err)
	}
	defer rows.Close()
	kept := map[int64]bool{}
	for rows.Next() {
		var day int64
		if err := rows.Scan(&day); err != nil {
			return nil, fmt.Errorf("kept report days: %w", err)
		}
		kept[day] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("kept report days: %w", err)
	}
	return kept, nil
}

// BuildReportDays keeps the facts of up to limit days whose sessions have all
// ended and that are not kept yet, oldest first, a day to a transaction; it
// returns how many it kept. Which days are kept, and which have sessions, is
// read first without the writer, so a pass that finds nothing to do takes no
// write transaction. The app runs it in the background.
func (s *Store) BuildReportDays(ctx context.Context, limit int) (int, error) {
	now := ms(s.opts.Now())
	var todo []int64
	err := s.Read(ctx, func(r *Reader) error {
		var oldest sql.NullInt64
		if err := r.q.QueryRowContext(ctx, `SELECT min(started_at) FROM sessions`).Scan(&oldest); err != nil {
			return err
		}
		if !oldest.Valid {
			return nil
		}
		kept, err := keptDays(ctx, r.q, oldest.Int64/dayMS, now/dayMS)
		if err != nil {
			return err
		}
		// Days that have ended; whether their sessions have is checked in
		// the transaction that keeps them.
		for day := oldest.Int64 / dayMS; len(todo) < limit && (day+1)*dayMS <= now; day++ {
			if kept[day] {
				continue
			}
			var any int
			if err := r.q.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM sessions
				WHERE started_at >= ? AND started_at < ? LIMIT 1)`, day*dayMS, (day+1)*dayMS).Scan(&any); err != nil {
				return err
			}
			if any > 0 {
				todo = append(todo, day)
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("report days: %w", err)
	}
	built := 0
	for _, day := range todo {
		if err := ctx.Err(); err != nil {
			return built, err
		}
		var done bool
		err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
			done = false
			// Checked again in the transaction: a session may have begun or
			// changed since the read above.
			var open int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sessions
				WHERE started_at >= ? AND started_at < ? AND ends_at > ?`, day*dayMS, (day+1)*dayMS, now).Scan(&open); err != nil {
				return false, err
			}
			if open > 0 {
				return false, nil // a session of it still runs: its lost count depends on the time
			}
			var facts []sessionFact
			if err := readSessionFacts(ctx, tx, day*dayMS, (day+1)*dayMS, 0, func(f *sessionFact) {
				facts = append(facts, *f)
			}); err != nil || len(facts) == 0 {
				return false, err
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR REPLACE INTO report_session_days (day, format, facts) VALUES (?, ?, ?)`,
				day, reportDaysFormat, encodeFacts(day, facts)); err != nil {
				return false, err
			}
			done = true
			return false, nil
		})
		if err != nil {
			return built, fmt.Errorf("report days: keep %s: %w", time.UnixMilli(day*dayMS).UTC().Format(time.DateOnly), err)
		}
		if done {
			built++
		}
	}
	return built, nil
}

// Flags of an encoded fact.
const (
	factClient = 1 << iota
	factMedia
	factUnanswered
	factPriced
	factWaited
)

// encodeFacts writes the facts of the sessions of day: their number, then
// per session varints (times relative to the day and to the start), the
// country, the flags and the costs as float64 bits, and the day last.
func encodeFacts(day int64, facts []sessionFact) []byte {
	buf := make([]byte, 0, 8+len(facts)*40)
	buf = binary.AppendUvarint(buf, uint64(len(facts)))
	for _, f := range facts {
		buf = binary.AppendVarint(buf, f.startedAt-day*dayMS)
		buf = binary.AppendVarint(buf, f.endsAt-f.startedAt)
		buf = binary.AppendVarint(buf, f.conversation)
		buf = binary.AppendVarint(buf, f.agent)
		buf = binary.AppendUvarint(buf, uint64(len(f.country)))
		buf = append(buf, f.country...)
		var flags byte
		for _, b := range []struct {
			on   bool
			flag byte
		}{{f.client, factClient}, {f.media, factMedia}, {f.unanswered, factUnanswered}, {f.priced, factPriced}, {f.firstWait >= 0, factWaited}} {
			if b.on {
				flags |= b.flag
			}
		}
		buf = append(buf, flags)
		buf = binary.AppendVarint(buf, f.used)
		buf = binary.AppendVarint(buf, f.peak)
		buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f.estimated))
		if f.priced {
			buf = binary.LittleEndian.AppendUint64(buf, math.Float64bits(f.reported))
		}
		if f.firstWait >= 0 {
			buf = binary.AppendVarint(buf, f.firstWait)
		}
	}
	// The day itself closes the record, so a blob filed under another day is
	// refused rather than misread.
	return binary.AppendVarint(buf, day)
}

// errBadFacts is a kept day that cannot be read; the report reads the
// sessions instead.
var errBadFacts = errors.New("kept report day: unreadable")

// decodeFacts reads what encodeFacts wrote for day into out (reusing its
// room); countries keeps one string per country code, not one per session.
func decodeFacts(day int64, blob []byte, out []sessionFact, countries map[string]string) ([]sessionFact, error) {
	d := factDecoder{buf: blob}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(blob)) {
		return out, errBadFacts
	}
	facts := slices.Grow(out[:0], int(n))[:n]
	for i := range facts {
		f := &facts[i]
		f.startedAt = d.varint() // relative to the day until the end is checked
		f.endsAt = d.varint()
		f.conversation = d.varint()
		f.agent = d.varint()
		code := d.bytes(d.uvarint())
		country, ok := countries[string(code)]
		if !ok {
			country = string(code)
			countries[country] = country
		}
		f.country = country
		flags := d.byte()
		f.client, f.media = flags&factClient != 0, flags&factMedia != 0
		f.unanswered, f.priced = flags&factUnanswered != 0, flags&factPriced != 0
		f.used = d.varint()
		f.peak = d.varint()
		f.estimated = math.Float64frombits(d.uint64())
		f.reported = 0
		if f.priced {
			f.reported = math.Float64frombits(d.uint64())
		}
		f.firstWait = -1
		if flags&factWaited != 0 {
			f.firstWait = d.varint()
		}
	}
	if filed := d.varint(); d.err != nil || len(d.buf) != 0 || filed != day {
		return out, errBadFacts
	}
	for i := range facts {
		facts[i].startedAt += day * dayMS
		facts[i].endsAt += facts[i].startedAt
	}
	return facts, nil
}

// factDecoder reads varints and bytes, remembering the first error.
type factDecoder struct {
	buf []byte
	err error
}

func (d *factDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	d.skip(n)
	return v // 0 when n <= 0
}

func (d *factDecoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	d.skip(n)
	return v // 0 when n <= 0
}

// skip moves past a varint of n bytes; n <= 0 (too short, or too long for
// 64 bits) is an error.
func (d *factDecoder) skip(n int) {
	if n <= 0 {
		d.err, d.buf = errBadFacts, nil
		return
	}
	d.buf = d.buf[n:]
}

func (d *factDecoder) bytes(n uint64) []byte {
	if n > uint64(len(d.buf)) {
		d.err, d.buf = errBadFacts, nil
		return nil
	}
	b := d.buf[:n]
	d.buf = d.buf[n:]
	return b
}

func (d *factDecoder) byte() byte {
	b := d.bytes(1)
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

func (d *factDecoder) uint64() uint64 {
	b := d.bytes(8)
	if len(b) < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}
