package session

import "fmt"

// Code is a stable, machine-readable reason for refusing a send. The API returns it
// as-is and scripts match on it, so existing values never change.
type Code string

// The refusal codes.
const (
	NoSession         Code = "no_session"         // the client has not opened a session
	WindowClosed      Code = "window_closed"      // the session's window is over (S2)
	AwaitingClient    Code = "awaiting_client"    // the unanswered limit is reached (S4)
	CapReached        Code = "cap_reached"        // the cap is reached and AfterCap is Close (S3)
	NeedsConfirmation Code = "needs_confirmation" // the send would begin a new billed session (S3)
	InvalidType       Code = "invalid_type"       // not text, image or file, or nothing at all (S5)
	TextTooLong       Code = "text_too_long"      // over the text limit
	FileRejected      Code = "file_rejected"      // an attachment failed validation
	AlreadyRetried    Code = "already_retried"    // "send again" was already used on this failed message
)

// Refusal says why the rules refuse a send, with a sentence an agent understands.
type Refusal struct {
	Code    Code
	Message string
}

// Error implements error.
func (r *Refusal) Error() string { return string(r.Code) + ": " + r.Message }

// Refuse returns a Refusal with the given code and message.
func Refuse(code Code, message string) *Refusal { return &Refusal{Code: code, Message: message} }

func refusef(code Code, format string, args ...any) *Refusal {
	return &Refusal{Code: code, Message: fmt.Sprintf(format, args...)}
}
