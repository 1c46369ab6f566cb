package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// PaidTemplate is an approved text for paid messages (some countries require
// registered templates for transactional traffic).
type PaidTemplate struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
	Body string `json:"body"`
}

func paidTemplate(ctx context.Context, q queryer, id int64) (PaidTemplate, error) {
	t := PaidTemplate{ID: id}
	err := q.QueryRowContext(ctx, `SELECT name, body FROM paid_templates WHERE id = ? AND deleted = 0`, id).Scan(&t.Name, &t.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return PaidTemplate{}, &InvalidError{Field: "template_id", Message: fmt.Sprintf("There is no template %d.", id)}
	}
	if err != nil {
		return PaidTemplate{}, fmt.Errorf("paid template %d: %w", id, err)
	}
	return t, nil
}

// PaidTemplates returns the templates, by name.
func (r *Reader) PaidTemplates(ctx context.Context) ([]PaidTemplate, error) {
	rows, err := r.q.QueryContext(ctx, `SELECT id, name, body FROM paid_templates WHERE deleted = 0 ORDER BY name, id`)
	if err != nil {
		return nil, fmt.Errorf("paid templates: %w", err)
	}
	defer rows.Close()
	out := []PaidTemplate{}
	for rows.Next() {
		var t PaidTemplate
		if err := rows.Scan(&t.ID, &t.Name, &t.Body); err != nil {
			return nil, fmt.Errorf("paid templates: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

type templateDetail struct {
	Op       string       `json:"op"` // add or delete
	Template PaidTemplate `json:"template"`
}

// AddPaidTemplate stores a new template, audited.
func (s *Store) AddPaidTemplate(ctx context.Context, agentID int64, name, body string) (PaidTemplate, error) {
	name, body = strings.TrimSpace(name), strings.TrimSpace(strings.ReplaceAll(body, "\r\n", "\n"))
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxTemplateName {
		return PaidTemplate{}, &InvalidError{Field: "name", Message: fmt.Sprintf("A template needs a name of 1 to %d characters.", MaxTemplateName)}
	}
	if n := utf8.RuneCountInString(body); n == 0 || n > MaxPaidText {
		return PaidTemplate{}, &InvalidError{Field: "body", Message: fmt.Sprintf("A template needs a text of 1 to %d characters.", MaxPaidText)}
	}
	var out PaidTemplate
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM paid_templates WHERE deleted = 0`).Scan(&n); err != nil {
			return false, fmt.Errorf("count paid templates: %w", err)
		}
		if n >= MaxPaidTemplates {
			return false, &InvalidError{Field: "name", Message: fmt.Sprintf("At most %d templates.", MaxPaidTemplates)}
		}
		now := s.opts.Now()
		res, err := tx.ExecContext(ctx, `INSERT INTO paid_templates (name, body, created_at) VALUES (?, ?, ?)`, name, body, ms(now))
		if err != nil {
			return false, fmt.Errorf("add paid template: %w", err)
		}
		id, _ := res.LastInsertId()
		out = PaidTemplate{ID: id, Name: name, Body: body}
		return false, appendAudit(ctx, tx, now, agentID, AuditTemplate, 0, 0, templateDetail{Op: "add", Template: out})
	})
	return out, err
}

// DeletePaidTemplate retires a template (messages sent with it keep its id), audited.
func (s *Store) DeletePaidTemplate(ctx context.Context, agentID, id int64) error {
	return s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		t, err := paidTemplate(ctx, tx, id)
		if err != nil {
			return false, fmt.Errorf("paid template %d: %w", id, ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE paid_templates SET deleted = 1 WHERE id = ?`, id); err != nil {
			return false, fmt.Errorf("delete paid template %d: %w", id, err)
		}
		return false, appendAudit(ctx, tx, s.opts.Now(), agentID, AuditTemplate, 0, 0, templateDetail{Op: "delete", Template: t})
	})
}
