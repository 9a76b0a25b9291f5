package apiserver

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/contrib/websocket"
	"github.com/gofiber/fiber/v2"
	"github.com/google/uuid"
)

// wsWriteTimeout bounds one write to a client; a client that cannot take an
// event in this time is disconnected.
const wsWriteTimeout = 10 * time.Second

// wsLiveTimeout bounds the wait for the event hub's Redis subscription
// before a client is told to come back later.
const wsLiveTimeout = 5 * time.Second

// ws upgrades to a WebSocket that streams the caller's organization's job
// events (GET /ws?jobs=<id>,<id> narrows them to some jobs).
func (s *Server) ws(c *fiber.Ctx) error {
	if s.hub == nil {
		return problem(fiber.StatusServiceUnavailable, "unavailable", "live events are not enabled on this server")
	}
	if !websocket.IsWebSocketUpgrade(c) {
		return problem(fiber.StatusUpgradeRequired, "upgrade-required", "connect with a WebSocket client (Upgrade: websocket)")
	}
	var jobs []uuid.UUID
	if raw := c.Query("jobs"); raw != "" {
		for _, part := range strings.Split(raw, ",") {
			id, err := uuid.Parse(strings.TrimSpace(part))
			if err != nil {
				return invalidField("jobs", "must be comma-separated job ids")
			}
			jobs = append(jobs, id)
		}
		if len(jobs) > 1000 {
			return invalidField("jobs", "at most 1000 job ids")
		}
	}
	sub := s.hub.Subscribe(principal(c).OrgID, jobs)
	// The hub listens on Redis only while it has clients: the upgrade waits
	// until it does, so the client misses nothing published after it.
	wait, cancel := context.WithTimeout(c.UserContext(), wsLiveTimeout)
	err := s.hub.WaitLive(wait)
	cancel()
	if err != nil {
		s.hub.Unsubscribe(sub)
		s.log.WarnContext(c.UserContext(), "websocket refused: the event hub is not subscribed", slog.Any("error", err))
		c.Set(fiber.HeaderRetryAfter, "5")
		return problem(fiber.StatusServiceUnavailable, "unavailable", "live events are unavailable for now; retry shortly")
	}
	upgrade := websocket.New(func(conn *websocket.Conn) {
		defer s.hub.Unsubscribe(sub)
		closed := make(chan struct{})
		defer func() {
			// The connection and its buffers go back to fasthttp's pools when
			// this handler returns: the reader must be done with them first.
			_ = conn.NetConn().SetReadDeadline(time.Now())
			<-closed
		}()
		go func() { // read side: notice the client leaving; clients send nothing
			defer close(closed)
			for {
				if _, _, err := conn.ReadMessage(); err != nil {
					return
				}
			}
		}()
		var once sync.Once
		cutOff := func() { // tell a dropped client why, if it can still hear, and hang up
			once.Do(func() {
				_ = conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, "too slow: events were dropped; reconnect and read faster"),
					time.Now().Add(time.Second))
				// Reset rather than close: the events still queued in the
				// kernel for a client this slow are stale, and a long-stalled
				// receiver may not reopen its TCP window for minutes.
				resetOnClose(conn.NetConn())
				// A hijacked fasthttp connection is closed only when this
				// handler returns (its Close is a no-op), so an expired
				// deadline is what ends a write blocked on the stalled client.
				_ = conn.NetConn().SetDeadline(time.Now())
			})
		}
		done := make(chan struct{})
		defer close(done)
		go func() { // cut a dropped client off at once, even mid-write
			select {
			case <-sub.Dropped:
				cutOff()
			case <-done:
			}
		}()
		ping := time.NewTicker(30 * time.Second)
		defer ping.Stop()
		for {
			select {
			case <-closed:
				return
			case <-sub.Dropped:
				cutOff()
				return
			case <-ping.C:
				if err := conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(wsWriteTimeout)); err != nil {
					return
				}
			case msg := <-sub.C:
				select { // a dropped client gets nothing more, even what was buffered
				case <-sub.Dropped:
					cutOff()
					return
				default:
				}
				_ = conn.SetWriteDeadline(time.Now().Add(wsWriteTimeout))
				if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
					return
				}
			}
		}
	})
	if err := upgrade(c); err != nil {
		// A failed handshake never runs the handler: its subscription would
		// keep the hub listening for nobody.
		s.hub.Unsubscribe(sub)
		return err
	}
	return nil
}

// resetOnClose makes closing c send a TCP reset, discarding unsent data.
// fasthttp hands handlers a wrapper of the TCP connection; UnsafeConn is
// how it exposes the connection underneath.
func resetOnClose(c net.Conn) {
	if w, ok := c.(interface{ UnsafeConn() net.Conn }); ok {
		c = w.UnsafeConn()
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
}
