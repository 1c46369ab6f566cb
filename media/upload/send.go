package upload

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"sessiondesk/media"
	"sessiondesk/session"
	"sessiondesk/store"
)

const (
	// MaxFiles is how many attachments one send may carry: more than the
	// unanswered limit could ever take.
	MaxFiles = 10
	// ThumbSize is the square the thread's image previews fit in.
	ThumbSize = 320
	// textMargin is added to the text field's byte limit (4 bytes a character
	// at most in UTF-8, a line break sent as CRLF included) for slack.
	textMargin = 4 << 10
)

// The fields of a send, from the composer (text, files, confirm_new_session)
// and the API (type, text, file, confirm_new_session).
const (
	fieldText    = "text"
	fieldType    = "type"
	fieldConfirm = "confirm_new_session"
)

// Sender takes in an agent's send with attachments.
type Sender struct {
	Store  *store.Store
	Media  *media.Store
	Limits media.Limits
}

// Send is a read multipart send.
type Send struct {
	Text    string
	Kind    string // the API's "type"; "" from the composer, which decides by the bytes
	Confirm bool   // confirm_new_session
	Files   []File
}

// Spec is what a send's form may hold: its text up to the rules' length in
// bytes (four a character, plus a margin), the type and confirmation, and up
// to MaxFiles files of the largest attachment size each.
func (s *Sender) Spec() Spec {
	return Spec{
		Fields: map[string]int64{
			fieldText:    int64(s.Store.Rules().MaxTextLen)*4 + textMargin,
			fieldType:    16,
			fieldConfirm: 16,
		},
		Files:       []string{"files", "file"},
		MaxFiles:    MaxFiles,
		MaxFileSize: max(s.Limits.ImageMax, s.Limits.FileMax),
	}
}

// MaxRequest is the most bytes a send's body may have at all, whatever the
// rules: MaxFiles files at the largest attachment size, and room for the rest.
func MaxRequest(lim media.Limits) int64 {
	return MaxFiles*max(lim.ImageMax, lim.FileMax) + 4*media.MB
}

// Read reads a send's multipart body (see Read and Sender.Spec).
func (s *Sender) Read(contentType string, body io.Reader) (Send, error) {
	form, err := Read(contentType, body, s.Spec(), s.Media)
	up := Send{
		// Browsers submit line breaks as CRLF; the limit counts what the client sees.
		Text:    strings.ReplaceAll(form.Fields[fieldText], "\r\n", "\n"),
		Kind:    form.Fields[fieldType],
		Confirm: form.Fields[fieldConfirm] == "1" || form.Fields[fieldConfirm] == "true",
		Files:   form.Files,
	}
	return up, err
}

// Send checks a send and stores it: first every attachment by its bytes (type,
// size, name, pixels), then the whole send against the session rules, and only
// when both allow it are thumbnails made and the messages accepted (the rules
// decide again in the store's transaction). It returns the accepted messages
// and any warnings (an attachment larger than the provider recommends).
// Refusals are *session.Refusal.
func (s *Sender) Send(ctx context.Context, up Send, convID, agentID int64) ([]store.Message, []string, error) {
	switch session.Kind(up.Kind) {
	case "", session.Image, session.File, session.Text:
	default:
		return nil, nil, session.Refuse(session.InvalidType,
			fmt.Sprintf("Viber session messages are text, image or file; %s is not supported.", quoteShort(up.Kind)))
	}
	send, info, warnings, err := s.checked(up, convID, agentID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Store.CheckBusinessSend(ctx, send); err != nil {
		return nil, nil, err
	}
	for i, a := range send.Attachments {
		if a == nil || send.Parts[i].Kind != session.Image {
			continue
		}
		thumb, tw, th, err := s.Media.Thumbnail(a.Hash, ThumbSize)
		if err != nil {
			return nil, nil, session.Refuse(session.FileRejected, fmt.Sprintf("%q: the image could not be read (%v).", info[i].name, err))
		}
		a.ThumbHash = thumb.Hash
		a.Width, a.Height = media.Displayed(info[i].width, info[i].height, tw, th)
	}
	msgs, err := s.Store.AcceptBusinessMessages(ctx, send)
	if err != nil {
		return nil, nil, err
	}
	return msgs, warnings, nil
}

// partInfo is what checking found of one part, for its thumbnail.
type partInfo struct {
	name          string // as uploaded
	width, height int    // as stored
}

// checked turns a send into its parts (S5: the text first, then the
// attachments in the order attached), checking every file by its bytes; info
// has an entry for each part.
func (s *Sender) checked(up Send, convID, agentID int64) (store.BusinessSend, []partInfo, []string, error) {
	send := store.BusinessSend{ConversationID: convID, AgentID: agentID, ConfirmNewSession: up.Confirm}
	var (
		info     []partInfo
		warnings []string
	)
	if strings.TrimSpace(up.Text) != "" || len(up.Files) == 0 {
		send.Parts = append(send.Parts, session.Part{Kind: session.Text, Text: up.Text})
		send.Attachments = append(send.Attachments, nil)
		info = append(info, partInfo{})
	}
	for _, f := range up.Files {
		kind := session.File
		if up.Kind == string(session.Image) || (up.Kind == "" && isImageName(f.Name)) {
			kind = session.Image
		}
		var (
			checked media.Checked
			refusal *session.Refusal
		)
		if kind == session.Image {
			checked, refusal = media.CheckImage(f.Blob.Head, f.Blob.Size, s.Limits)
		} else {
			checked, refusal = media.CheckFile(f.Name, f.Blob.Head, f.Blob.Size, s.Limits)
		}
		if refusal != nil {
			return send, nil, nil, session.Refuse(refusal.Code, fmt.Sprintf("%q: %s", f.Name, refusal.Message))
		}
		a := &store.NewAttachment{Hash: f.Blob.Hash, Size: f.Blob.Size, MIME: checked.MIME, Name: media.SanitizeName(f.Name),
			Width: checked.Width, Height: checked.Height}
		if checked.Name != "" {
			a.Name = checked.Name
		}
		if checked.Warning != "" {
			warnings = append(warnings, checked.Warning)
		}
		send.Parts = append(send.Parts, session.Part{Kind: kind})
		send.Attachments = append(send.Attachments, a)
		info = append(info, partInfo{f.Name, checked.Width, checked.Height})
	}
	return send, info, warnings, nil
}

// isImageName reports a name the composer sends as an image.
func isImageName(name string) bool {
	switch strings.ToLower(path.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}
