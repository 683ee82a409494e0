package coordinator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/minerproto"
)

// helloTimeout bounds the authentication exchange.
const helloTimeout = 10 * time.Second

// ServeMiner runs one miner's WebSocket session (GET /v1/miners/connect):
// challenge, signed hello, admission against the on-chain registry, then
// jobs out and acks, tokens and results in until either side closes.
//
// Before the hello is verified a connection may send one message of at
// most Limits.MaxHelloBytes, and at most Limits.MaxPendingHellos
// connections may be at that stage at once (more get 503 before the
// upgrade): unauthenticated sockets cannot make the coordinator buffer
// more than MaxPendingHellos × MaxHelloBytes.
func (s *Service) ServeMiner(w http.ResponseWriter, r *http.Request) {
	if !s.guard.enterHello() {
		w.Header().Set("Retry-After", "1")
		s.fail(w, errf(ErrOverloaded, "too many miner connections are authenticating; retry later"))
		return
	}
	pending := true
	leave := func() {
		if pending {
			pending = false
			s.guard.leaveHello()
		}
	}
	defer leave()
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(max(s.cfg.Limits.MaxHelloBytes, 1))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	hctx, hcancel := context.WithTimeout(ctx, helloTimeout)
	defer hcancel()
	if err := wsjson.Write(hctx, c, minerproto.Envelope{Type: minerproto.TypeChallenge, Nonce: hex.EncodeToString(nonce), Coordinator: s.cfg.Address.String(), ChainID: s.chainID}); err != nil {
		c.CloseNow()
		return
	}
	var hello minerproto.Envelope
	if err := wsjson.Read(hctx, c, &hello); err != nil || hello.Type != minerproto.TypeHello {
		s.refuse(ctx, c, "bad_hello", "expected a hello message")
		return
	}
	pub, err := minerproto.VerifyHello(hello.Hello, nonce, s.cfg.Address)
	if err != nil {
		s.refuse(ctx, c, "bad_hello", err.Error())
		return
	}
	h := hello.Hello
	mc := &minerConn{addr: h.Address, pub: pub, models: h.Models, slots: h.Slots, backend: h.Backend,
		hardware: h.Hardware, tokensPerSec: h.TokensPerSec, vision: visionOf(h), send: make(chan minerproto.Envelope, 256)}
	if err := s.admit(mc); err != nil {
		// A miner that registered moments ago may be newer than the
		// registry view: look again before refusing.
		s.refreshRegistry(ctx)
		if err = s.admit(mc); err != nil {
			s.refuse(ctx, c, "not_admitted", err.Error())
			return
		}
	}
	if err := wsjson.Write(hctx, c, minerproto.Envelope{Type: minerproto.TypeWelcome}); err != nil {
		s.drop(mc, "welcome failed")
		c.CloseNow()
		return
	}
	// Authenticated and admitted: larger messages (results) from here on.
	leave()
	if s.cfg.Limits.MaxMinerMessage > 0 {
		c.SetReadLimit(s.cfg.Limits.MaxMinerMessage)
	} else {
		c.SetReadLimit(-1)
	}

	// Writer: the dispatcher's messages, and pings that notice a dead peer.
	done := make(chan struct{})
	go func() {
		defer close(done)
		ping := time.NewTicker(10 * time.Second)
		defer ping.Stop()
		for {
			select {
			case e, ok := <-mc.send:
				if !ok {
					c.Close(websocket.StatusNormalClosure, "session ended")
					cancel()
					return
				}
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				err := wsjson.Write(wctx, c, e)
				wcancel()
				if err != nil {
					cancel()
					return
				}
			case <-ping.C:
				pctx, pcancel := context.WithTimeout(ctx, 10*time.Second)
				err := c.Ping(pctx)
				pcancel()
				if err != nil {
					cancel()
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var e minerproto.Envelope
		if err := wsjson.Read(ctx, c, &e); err != nil {
			s.drop(mc, "connection closed")
			break
		}
		s.handle(ctx, mc, e)
	}
	cancel()
	<-done
	c.CloseNow()
}

func (s *Service) refuse(ctx context.Context, c *websocket.Conn, code, msg string) {
	wctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = wsjson.Write(wctx, c, minerproto.Envelope{Type: minerproto.TypeError, Code: code, Message: msg})
	c.Close(websocket.StatusPolicyViolation, code)
	s.log.Info("miner refused", "code", code, "reason", msg)
}
