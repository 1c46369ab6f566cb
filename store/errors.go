package store

import "errors"

// ErrNotFound is returned when the conversation, message or contact asked for does not exist.
var ErrNotFound = errors.New("not found")

// InvalidError is input the store refuses to keep; Message is safe to show.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }
