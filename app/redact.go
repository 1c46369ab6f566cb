package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// redactHandler keeps a secret out of every log line: the webhook secret is
// a path segment, and paths, URLs and errors that quote them end up in logs
// (the request log, a failed callback). It replaces the secret in the
// message, in keys and in every value, errors and groups included.
type redactHandler struct {
	next   slog.Handler
	secret string
}

// redactLogs wraps log so that secret never appears in its output.
func redactLogs(log *slog.Logger, secret string) *slog.Logger {
	if secret == "" {
		return log
	}
	return slog.New(&redactHandler{next: log.Handler(), secret: secret})
}

const redacted = "[redacted]"

func (h *redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return &redactHandler{next: h.next.WithAttrs(clean), secret: h.secret}
}

func (h *redactHandler) WithGroup(name string) slog.Handler {
	return &redactHandler{next: h.next.WithGroup(h.scrub(name)), secret: h.secret}
}

func (h *redactHandler) scrub(s string) string { return strings.ReplaceAll(s, h.secret, redacted) }

func (h *redactHandler) attr(a slog.Attr) slog.Attr {
	a.Key = h.scrub(a.Key)
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		a.Value = slog.StringValue(h.scrub(v.String()))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]slog.Attr, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		a.Value = slog.GroupValue(clean...)
	case slog.KindAny:
		// Errors, URLs, structs: judged by how they print.
		if s := fmt.Sprint(v.Any()); strings.Contains(s, h.secret) {
			a.Value = slog.StringValue(h.scrub(s))
		} else {
			a.Value = v
		}
	default:
		a.Value = v
	}
	return a
}
