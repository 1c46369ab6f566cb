package live

import (
	"context"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// readLimit bounds what a browser may send: control frames and the tiny
// typing messages (maxInput); a longer frame ends the socket.
const readLimit = 4 << 10

// page is one connected inbox page. An idle page costs one goroutine (the
// reader, which gorilla needs for pongs and the close handshake) and no write
// buffer: writes run on a goroutine started only while frames are waiting,
// and the write buffer comes from the upgrader's shared pool.
type page struct {
	hub     *Hub
	conn    *websocket.Conn
	viewing int64
	done    func()
	expiry  *time.Timer

	agent     int64 // whose page it is (presence, mentions), 0 when unknown
	agentName string
	// presenceSent is the presence line last queued to the page; nil: none
	// yet, and what the page shows is not known (a page that reconnects
	// keeps the line of its old socket), so its first line always goes, the
	// empty one included. Only the hub goroutine uses it.
	presenceSent []byte

	lastPing time.Time // guarded by hub.mu
	// joined numbers the page's registration (hub.joins), and countsDue says
	// that it has not had its agent's counts since (sendCounts); guarded by
	// hub.mu.
	joined    uint64
	countsDue bool

	mu      sync.Mutex
	queue   []outgoing
	queued  int  // bytes waiting in queue
	writing bool // a writer runs (or the replay is being written): it drains queue
	closing bool // no more frames
	recheck *time.Timer
}

// outgoing is one thing to write: a shared frame, a ping, or the reload
// frame that ends a page which fell behind.
type outgoing struct {
	msg    *websocket.PreparedMessage
	size   int
	after  func() // called once the frame was written
	ping   bool
	reload bool
}

// enqueue adds o to the page's queue and starts a writer if none runs. It
// never blocks: a page whose queue outgrows the bound is told to reload and
// dropped, so a slow browser cannot hold the server's memory.
func (p *page) enqueue(o outgoing) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return
	}
	if p.queued+o.size > p.hub.opts.QueueBytes {
		p.queue, p.queued, p.closing = append(p.queue[:0], outgoing{reload: true}), 0, true
		p.hub.stats.dropped.Add(1)
		p.hub.stats.reloads.Add(1)
	} else {
		p.queue = append(p.queue, o)
		p.queued += o.size
	}
	if !p.writing {
		p.writing = true
		go p.flush()
	}
}

// release lets the frames queued during the replay go out.
func (p *page) release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) > 0 {
		go p.flush()
	} else {
		p.writing = false
	}
}

// flush writes the queue until it is empty, then ends.
func (p *page) flush() {
	var q []outgoing
	for {
		p.mu.Lock()
		q, p.queue, p.queued = p.queue, q[:0], 0
		if len(q) == 0 {
			p.writing = false
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		for i, o := range q {
			if !p.write(o) {
				// Dead or dropped: close it; the reader ends the page. writing
				// stays true, so nothing writes to this socket again.
				p.conn.Close()
				return
			}
			q[i] = outgoing{}
		}
	}
}

// write writes one item; false ends the socket.
func (p *page) write(o outgoing) bool {
	deadline := time.Now().Add(p.hub.opts.WriteWait)
	switch {
	case o.ping:
		return p.conn.WriteControl(websocket.PingMessage, nil, deadline) == nil
	case o.reload:
		p.hub.writeReload(context.Background(), p.conn)
		return false
	}
	_ = p.conn.SetWriteDeadline(deadline)
	if err := p.conn.WritePreparedMessage(o.msg); err != nil {
		return false
	}
	if o.after != nil {
		o.after()
	}
	return true
}

// close sends a close frame with code and closes the socket; the reader then
// ends the page. Safe to call from any goroutine, more than once.
func (p *page) close(code int, reason string) {
	p.mu.Lock()
	p.closing, p.queue, p.queued = true, nil, 0
	p.mu.Unlock()
	_ = p.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	p.conn.Close()
}

// read reads what the browser sends, which keeps the pong and close handlers
// running, until the connection ends; then the page leaves. The only messages
// it takes are {"typing":true|false}, at a bounded rate; anything else is
// ignored (a frame over readLimit ends the socket).
func (p *page) read() {
	defer func() {
		p.hub.sendPresence(p, presenceLeave)
		p.hub.leave(p)
		if p.expiry != nil {
			p.expiry.Stop()
		}
		p.mu.Lock()
		if p.recheck != nil {
			p.recheck.Stop()
		}
		p.closing = true
		p.mu.Unlock()
		p.conn.Close()
		if p.done != nil {
			p.done()
		}
	}()
	wait := p.hub.opts.PongWait
	p.conn.SetReadLimit(readLimit)
	_ = p.conn.SetReadDeadline(time.Now().Add(wait))
	p.conn.SetPongHandler(func(string) error { return p.conn.SetReadDeadline(time.Now().Add(wait)) })
	var limit inputLimiter
	for {
		kind, r, err := p.conn.NextReader()
		if err != nil {
			return
		}
		if kind != websocket.TextMessage {
			p.hub.stats.ignored.Add(1)
			if _, err := io.Copy(io.Discard, r); err != nil {
				return // over readLimit
			}
			continue
		}
		data, err := io.ReadAll(io.LimitReader(r, maxInput+1))
		if err != nil {
			return
		}
		// Read the rest too: gorilla checks readLimit only on what is read,
		// and a message over it must end the socket, not be skipped.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
		typing, ok := parseInput(data)
		if !ok || !limit.allow(time.Now()) || p.viewing == 0 {
			p.hub.stats.ignored.Add(1)
			continue
		}
		if typing {
			p.hub.sendPresence(p, presenceTyping)
		} else {
			p.hub.sendPresence(p, presenceIdle)
		}
	}
}

// scheduleRecheck asks allowed, every period, whether the page may stay, and
// closes it with 1013 when not; allowed nil closes it at the first check, so
// that the page comes back through the sign-in. A timer, not a goroutine,
// waits in between.
func (p *page) scheduleRecheck(period time.Duration, allowed func(context.Context) bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing {
		return
	}
	p.recheck = time.AfterFunc(period, func() {
		if allowed == nil {
			p.close(CloseTryAgain, "sign-in check")
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.hub.opts.WriteWait)
		defer cancel()
		if !allowed(ctx) {
			p.close(CloseTryAgain, "access changed")
			return
		}
		p.scheduleRecheck(period, allowed)
	})
}
