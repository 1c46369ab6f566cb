package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// TokenPrefix begins every API token's secret. Other bearer tokens are the SSO
// proxy's business.
const TokenPrefix = "sdk_"

// tokenLen is the length of a secret: the prefix and 32 random bytes in
// unpadded base64url.
var tokenLen = len(TokenPrefix) + base64.RawURLEncoding.EncodedLen(32)

// tokenShownLen is how much of a secret is kept in clear, to tell tokens apart.
const tokenShownLen = len(TokenPrefix) + 6

// tokenTouchEvery is how often a token's last use is written at most.
const tokenTouchEvery = time.Minute

// MaxTokenNameLen is the longest token name, in code points.
const MaxTokenNameLen = 80

// ErrInvalidToken is a presented API token that is malformed, unknown or
// revoked: answer 401.
var ErrInvalidToken = errors.New("unknown or revoked API token")

// TokenInfo describes an API token; the secret itself is never kept.
type TokenInfo struct {
	ID     int64
	Name   string
	Prefix string // the secret's first characters, e.g. sdk_AbC123
	Role   string // the role it acts as: agent
	// AgentID is the agents row the token acts as (login token:<id>).
	AgentID       int64
	CreatedByName string
	CreatedAt     time.Time
	LastUsedAt    time.Time // zero when never used
	RevokedAt     time.Time // zero while it works
	RevokedByName string
}

// Revoked reports whether the token was revoked.
func (t TokenInfo) Revoked() bool { return !t.RevokedAt.IsZero() }

// hashToken is what is stored of a secret: the hex SHA-256. Looking a token up
// by its hash compares no secret byte by byte, so timing tells nothing.
func hashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken makes an API token that acts as an agent, on behalf of the admin
// adminID, and returns its secret: shown once, since only its hash is kept.
// The token, its agents row and the audit row are one transaction.
func (s *Store) CreateToken(ctx context.Context, adminID int64, name string) (string, TokenInfo, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > MaxTokenNameLen || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return "", TokenInfo{}, &InvalidError{Field: "name",
			Message: fmt.Sprintf("Give the token a name of 1 to %d characters, such as the integration that uses it.", MaxTokenNameLen)}
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", TokenInfo{}, fmt.Errorf("create API token: %w", err)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(raw)
	info := TokenInfo{Name: name, Prefix: secret[:tokenShownLen], Role: "agent"}
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		now := s.opts.Now()
		info.CreatedAt = fromMS(ms(now))
		res, err := tx.ExecContext(ctx, `
			INSERT INTO api_tokens (name, prefix, hash, role, created_by, created_at) VALUES (?, ?, ?, 'agent', ?, ?)`,
			name, info.Prefix, hashToken(secret), nullID(adminID), ms(now))
		if err != nil {
			return false, fmt.Errorf("save API token: %w", err)
		}
		info.ID, _ = res.LastInsertId()
		err = tx.QueryRowContext(ctx, `INSERT INTO agents (login, name, role, created_at) VALUES (?, ?, 'agent', ?)
			RETURNING id`, "token:"+strconv.FormatInt(info.ID, 10), tokenAgentName(name), ms(now)).Scan(&info.AgentID)
		if err != nil {
			return false, fmt.Errorf("save API token's agent: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET agent_id = ? WHERE id = ?`, info.AgentID, info.ID); err != nil {
			return false, fmt.Errorf("save API token: %w", err)
		}
		if err := tx.QueryRowContext(ctx, `SELECT coalesce((SELECT name FROM agents WHERE id = ?), '')`,
			adminID).Scan(&info.CreatedByName); err != nil {
			return false, fmt.Errorf("save API token: %w", err)
		}
		return false, appendAudit(ctx, tx, now, adminID, AuditTokenCreate, 0, 0,
			tokenDetail{TokenID: info.ID, Name: name, Prefix: info.Prefix})
	})
	if err != nil {
		return "", TokenInfo{}, fmt.Errorf("create API token %q: %w", name, err)
	}
	return secret, info, nil
}

func tokenAgentName(name string) string { return fmt.Sprintf("API token %q", name) }

// RevokeToken stops a token from working, at once. Revoking a revoked token
// changes nothing; an unknown one is ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, adminID, tokenID int64) error {
	err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
		var (
			name, prefix string
			revoked      int64
		)
		err := tx.QueryRowContext(ctx, `SELECT name, prefix, revoked_at FROM api_tokens WHERE id = ?`, tokenID).
			Scan(&name, &prefix, &revoked)
		if errors.Is(err, sql.ErrNoRows) {
			return false, fmt.Errorf("API token %d: %w", tokenID, ErrNotFound)
		}
		if err != nil || revoked != 0 {
			return false, err
		}
		now := s.opts.Now()
		if _, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ?, revoked_by = ? WHERE id = ?`,
			ms(now), nullID(adminID), tokenID); err != nil {
			return false, err
		}
		return false, appendAudit(ctx, tx, now, adminID, AuditTokenRevoke, 0, 0,
			tokenDetail{TokenID: tokenID, Name: name, Prefix: prefix})
	})
	if err != nil {
		return fmt.Errorf("revoke API token %d: %w", tokenID, err)
	}
	return nil
}

const (
	tokenColumns = `
SELECT t.id, t.name, t.prefix, t.role, coalesce(t.agent_id, 0), coalesce(c.name, ''), t.created_at,
       t.last_used_at, t.revoked_at, coalesce(r.name, '')`
	tokenFrom = `
FROM api_tokens t
LEFT JOIN agents c ON c.id = t.created_by
LEFT JOIN agents r ON r.id = t.revoked_by`
)

func scanToken(row interface{ Scan(...any) error }, extra ...any) (TokenInfo, error) {
	var (
		t                      TokenInfo
		created, used, revoked int64
	)
	err := row.Scan(append([]any{&t.ID, &t.Name, &t.Prefix, &t.Role, &t.AgentID, &t.CreatedByName, &created,
		&used, &revoked, &t.RevokedByName}, extra...)...)
	t.CreatedAt, t.LastUsedAt, t.RevokedAt = fromMS(created), fromMS(used), fromMS(revoked)
	return t, err
}

// Tokens returns every API token, the working ones first, newest first.
func (r *Reader) Tokens(ctx context.Context) ([]TokenInfo, error) {
	rows, err := r.q.QueryContext(ctx, tokenColumns+tokenFrom+` ORDER BY t.revoked_at <> 0, t.id DESC`)
	if err != nil {
		return nil, fmt.Errorf("list API tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list API tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenAgent resolves a presented secret to the agent its token acts as. A
// malformed, unknown or revoked secret is ErrInvalidToken. It records the
// token's last use, at most once a minute.
func (s *Store) TokenAgent(ctx context.Context, secret string) (Agent, TokenInfo, error) {
	if len(secret) != tokenLen || !strings.HasPrefix(secret, TokenPrefix) {
		return Agent{}, TokenInfo{}, ErrInvalidToken
	}
	var (
		a       Agent
		created int64
	)
	t, err := scanToken(s.read.QueryRowContext(ctx, tokenColumns+`, a.id, a.login, a.name, a.role, a.created_at`+
		tokenFrom+` JOIN agents a ON a.id = t.agent_id WHERE t.hash = ?`, hashToken(secret)), &a.ID, &a.Login, &a.Name, &a.Role, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return Agent{}, TokenInfo{}, ErrInvalidToken
	}
	if err != nil {
		return Agent{}, TokenInfo{}, fmt.Errorf("look up API token: %w", err)
	}
	if t.Revoked() {
		return Agent{}, TokenInfo{}, fmt.Errorf("API token %s… was revoked: %w", t.Prefix, ErrInvalidToken)
	}
	a.CreatedAt = fromMS(created)
	// The token's own role rules, whatever its agents row says: a sign-in that
	// claimed the login token:<id> must not lend it another role.
	a.Role = t.Role
	now := s.opts.Now()
	if now.Sub(t.LastUsedAt) >= tokenTouchEvery {
		err := s.writeTx(ctx, func(ctx context.Context, tx queryer) (bool, error) {
			_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND last_used_at <= ?`,
				ms(now), t.ID, ms(now.Add(-tokenTouchEvery)))
			return false, err
		})
		if err != nil {
			return Agent{}, TokenInfo{}, fmt.Errorf("record use of API token %d: %w", t.ID, err)
		}
		t.LastUsedAt = fromMS(ms(now))
	}
	return a, t, nil
}
