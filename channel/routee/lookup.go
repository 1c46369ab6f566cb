package routee

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"sessiondesk/channel"
	"sessiondesk/store"
)

// Looking a message up at Routee, after a try whose answer was lost.
//
// GET {api}/viber/tracking/{trackingId} answers one message when we know its
// tracking id. Otherwise POST {api}/viber/session lists the client's sessions,
// newest first, each with its sessionMessages (trackingId, to, direction,
// status {status, date}, message, imageUrl, file {fileName, fileUrl}; label
// when Routee returns it, which its documentation does not promise). Our
// message is an outbound one to the client that carries our label, or, without
// labels, the same text (image URL, file) with a status dated after the try
// began (less a margin for clock skew).

// lookupPages bounds the pages of sessions read in one lookup, and lookupSize
// is the page size asked for: a try being looked up is recent, so it is on the
// first page unless the client had very many sessions since.
const (
	lookupPages = 3
	lookupSize  = 50
	// clockSkew is how much earlier than our try Routee's status date of the
	// message may be (the two clocks differ).
	clockSkew = 2 * time.Minute
)

var _ channel.Checker = (*Client)(nil)

// Check implements channel.Checker. With providerID it asks the tracking
// endpoint first; then the session lookup by the client's number. It returns
// channel.Found with the candidates' tracking ids, best first (a label match
// before a match by content), channel.Absent when Routee answered and lists no
// such message, and channel.Unknown with an error when a lookup failed.
func (c *Client) Check(ctx context.Context, msg store.Outgoing, triedAt time.Time, providerID string) (channel.Lookup, []string, error) {
	if providerID != "" {
		found, err := c.tracking(ctx, providerID)
		if err != nil {
			return channel.Unknown, nil, err
		}
		if found {
			return channel.Found, []string{providerID}, nil
		}
	}
	if msg.Paid != nil {
		// Routee's session list is not documented to hold paid messages, and
		// an SMS or failover is in neither lookup: "absent" could not be
		// believed, and sending a billed message twice is worse than asking.
		return channel.Unknown, nil, errors.New("routee: a paid message cannot be looked up by content; an agent decides")
	}
	var byLabel, byContent []string
	label := strconv.FormatInt(msg.ID, 10)
	for page := 0; page < lookupPages; page++ {
		sessions, last, err := c.sessions(ctx, msg.Phone, page)
		if err != nil {
			return channel.Unknown, nil, err
		}
		for _, s := range sessions {
			for _, m := range s.Messages {
				switch {
				case !m.outboundTo(msg.Phone) || m.TrackingID == "":
				case m.Label != "":
					if m.Label == label {
						byLabel = append(byLabel, m.TrackingID)
					}
				case m.sameContent(msg) && m.recentSince(triedAt):
					byContent = append(byContent, m.TrackingID)
				}
			}
		}
		if last {
			break
		}
	}
	if ids := append(byLabel, byContent...); len(ids) > 0 {
		return channel.Found, ids, nil
	}
	return channel.Absent, nil, nil
}

// tracking asks GET /viber/tracking/{id}: found on 200, not found on 404.
func (c *Client) tracking(ctx context.Context, trackingID string) (bool, error) {
	u := c.viberURL + "/tracking/" + url.PathEscape(trackingID)
	status, body, _, err := c.call(ctx, http.MethodGet, u, nil)
	switch {
	case err != nil:
		return false, fmt.Errorf("routee: look up tracking id %s: %w", trackingID, err)
	case status == http.StatusNotFound:
		return false, nil
	case status < 200 || status > 299:
		return false, fmt.Errorf("routee: look up tracking id %s: answered %s: %s", trackingID, statusText(status), excerpt(body))
	}
	return true, nil
}

// sessionMessage is one message of a session, as the session lookup lists it.
type sessionMessage struct {
	TrackingID string `json:"trackingId"`
	To         string `json:"to"`
	Direction  string `json:"direction"`
	Label      string `json:"label"`
	Message    string `json:"message"`
	ImageURL   string `json:"imageUrl"`
	ImageURL2  string `json:"imageURL"`
	File       *struct {
		FileName string `json:"fileName"`
		FileURL  string `json:"fileUrl"`
		FileURL2 string `json:"fileURL"`
	} `json:"file"`
	Status struct {
		Date string `json:"date"`
	} `json:"status"`
}

// routeeSession is one session of the lookup's answer.
type routeeSession struct {
	SessionID string           `json:"sessionId"`
	Messages  []sessionMessage `json:"sessionMessages"`
}

type sessionPage struct {
	Content []routeeSession `json:"content"`
	Last    *bool           `json:"last"`
}

// sessions reads one page of a number's sessions.
func (c *Client) sessions(ctx context.Context, phone string, page int) ([]routeeSession, bool, error) {
	payload, err := json.Marshal(map[string]string{"phone": phone})
	if err != nil {
		return nil, false, fmt.Errorf("routee: session lookup: %w", err)
	}
	u := c.viberURL + "/session?" + url.Values{"page": {strconv.Itoa(page)}, "size": {strconv.Itoa(lookupSize)}}.Encode()
	status, body, _, err := c.call(ctx, http.MethodPost, u, payload)
	if err != nil {
		return nil, false, fmt.Errorf("routee: session lookup of %s: %w", phone, err)
	}
	if status < 200 || status > 299 {
		return nil, false, fmt.Errorf("routee: session lookup of %s: answered %s: %s", phone, statusText(status), excerpt(body))
	}
	var p sessionPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, false, fmt.Errorf("routee: session lookup of %s: the answer is not the documented JSON: %s", phone, excerpt(body))
	}
	if p.Content == nil {
		return nil, false, errors.New("routee: session lookup of " + phone + ": the answer has no content list")
	}
	last := p.Last == nil || *p.Last || len(p.Content) == 0
	return p.Content, last, nil
}

func (m sessionMessage) outboundTo(phone string) bool {
	return strings.EqualFold(m.Direction, "outbound") && (m.To == "" || m.To == phone)
}

// sameContent compares the listed message with ours by what it carries.
func (m sessionMessage) sameContent(msg store.Outgoing) bool {
	switch {
	case m.File != nil && (m.File.FileURL != "" || m.File.FileURL2 != ""):
		return msg.MediaURL != "" && (m.File.FileURL == msg.MediaURL || m.File.FileURL2 == msg.MediaURL)
	case m.ImageURL != "" || m.ImageURL2 != "":
		return msg.MediaURL != "" && (m.ImageURL == msg.MediaURL || m.ImageURL2 == msg.MediaURL)
	}
	return m.Message != "" && m.Message == msg.Body && msg.MediaURL == ""
}

// recentSince reports whether the listed message's status is dated after the
// try began (less the skew); a message without a date is taken as recent.
func (m sessionMessage) recentSince(triedAt time.Time) bool {
	at := parseTime(m.Status.Date)
	return at.IsZero() || !at.Before(triedAt.Add(-clockSkew))
}
