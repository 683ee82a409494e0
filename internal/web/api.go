package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/aitbc/aitbc/internal/httpx"
)

// apiRoutes mounts the JSON behind the pages (docs/api/web.openapi.yaml).
// Each answers what its page shows, from the same functions.
func (s *Server) apiRoutes() {
	s.handle("GET /api/explorer/blocks", s.apiBlocks)
	s.handle("GET /api/explorer/blocks/{height}", s.apiBlock)
	s.handle("GET /api/explorer/transactions", s.apiTxs)
	s.handle("GET /api/explorer/transactions/{hash}", s.apiTx)
	s.handle("GET /api/explorer/addresses/{address}", s.apiAddress)
	s.handle("GET /api/explorer/jobs/{id}", s.apiJob)
	s.handle("GET /api/explorer/miners", s.apiMiners)
	s.handle("GET /api/explorer/validators", s.apiValidators)
	s.handle("GET /api/explorer/supply", s.apiSupply)
	s.handle("GET /api/explorer/stats", s.apiStats)
	s.handle("GET /api/explorer/search", s.apiSearch)
	s.handle("GET /api/explorer/live", s.apiLive)
	s.handle("GET /api/explorer/swarm", s.apiSwarm)
	s.handle("GET /api/marketplace/services", s.apiServices)
}

func ok(w http.ResponseWriter, v any) error {
	httpx.WriteJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) apiBlocks(w http.ResponseWriter, r *http.Request) error {
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	d, err := s.blockList(r.Context(), before)
	if err != nil {
		return err
	}
	if d.Blocks == nil {
		d.Blocks = []BlockRow{}
	}
	return ok(w, map[string]any{"blocks": d.Blocks, "older": d.Older})
}

func (s *Server) apiBlock(w http.ResponseWriter, r *http.Request) error {
	h, err := parseHeight(r.PathValue("height"))
	if err != nil {
		return err
	}
	d, err := s.block(r.Context(), h)
	if err != nil {
		return err
	}
	txs := d.Txs
	if txs == nil {
		txs = []TxRow{}
	}
	return ok(w, map[string]any{"block": d.Block, "transactions": txs, "total": d.Total})
}

func (s *Server) apiTxs(w http.ResponseWriter, _ *http.Request) error {
	_, txs, height := s.feed.latest(0, 50)
	return ok(w, map[string]any{"height": height, "transactions": txs})
}

func (s *Server) apiTx(w http.ResponseWriter, r *http.Request) error {
	d, err := s.txData(r.Context(), r.PathValue("hash"))
	if err != nil {
		return err
	}
	d.Tx.Raw = ""
	// summary is the row the lists show: the recipient, amount and job
	// read from the body, whichever module's it is.
	return ok(w, map[string]any{"transaction": d.Tx, "summary": d.Row, "effects": orEmpty(d.Effects)})
}

func (s *Server) apiAddress(w http.ResponseWriter, r *http.Request) error {
	a, err := parseAddress(r.PathValue("address"))
	if err != nil {
		return err
	}
	d, err := s.addressData(r.Context(), a)
	if err != nil {
		return err
	}
	out := map[string]any{"account": d.Account, "transactions": orEmpty(d.Txs), "job_ids": orEmpty(d.JobIDs)}
	if d.Miner != nil {
		out["miner"] = d.Miner
	}
	if d.Stake.Own != nil {
		out["staking"] = d.Stake.Own
	}
	if d.Stake.Op != nil {
		out["operator"] = d.Stake.Op
	}
	if d.Stake.Err != "" {
		out["staking_error"] = d.Stake.Err
	}
	if d.Market {
		out["listings"] = orEmpty(d.Listings)
	}
	return ok(w, out)
}

func orEmpty[T any](v []T) []T {
	if v == nil {
		return []T{}
	}
	return v
}

func (s *Server) apiJob(w http.ResponseWriter, r *http.Request) error {
	d, err := s.jobData(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := map[string]any{"job": d.Job}
	if d.Receipt != nil {
		out["receipt"], out["settle_tx"], out["miner_pubkey"] = d.Receipt, d.SettleTx, d.MinerPubKey
	}
	if d.Private { // private.go: a commitment, no receipt figures
		out["private"], out["commitment"], out["settle_tx"] = true, d.Commitment, d.SettleTx
	}
	return ok(w, out)
}

func (s *Server) apiMiners(w http.ResponseWriter, r *http.Request) error {
	lb, err := s.ranked(r.Context(), r.URL.Query().Get("sort"))
	if err != nil {
		return err
	}
	out := map[string]any{"window": lb.Window, "sort": lb.Sort, "miners": orEmpty(lb.Rows)}
	if lb.CoordErr != "" {
		out["coordinator_error"] = lb.CoordErr
	}
	if lb.StakeErr != "" {
		out["staking_error"] = lb.StakeErr
	}
	return ok(w, out)
}

func (s *Server) apiValidators(w http.ResponseWriter, r *http.Request) error {
	vs, err := s.validatorSet(r.Context())
	if err != nil {
		return err
	}
	return ok(w, vs)
}

func (s *Server) apiSupply(w http.ResponseWriter, r *http.Request) error {
	d, err := s.supplyData(r.Context())
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"chain": d.Info, "audit": d.Audit})
}

func (s *Server) apiStats(w http.ResponseWriter, _ *http.Request) error {
	st := s.stats()
	series := map[string]any{}
	for _, c := range st.charts() {
		pts := make([]map[string]any, 0, len(c.Points))
		for _, p := range c.Points {
			pts = append(pts, map[string]any{"label": p.Label, "value": p.Value})
		}
		series[c.ID[2:]] = map[string]any{"title": c.Title, "unit": c.Unit, "points": pts}
	}
	return ok(w, map[string]any{"height": st.Height, "window": st.Window, "avg_block_time_s": st.AvgBlockTime.Seconds(), "series": series})
}

func (s *Server) apiSearch(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query().Get("q")
	target, err := s.searchTarget(r.Context(), q)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"query": q, "found": target != "", "target": target})
}

func (s *Server) apiServices(w http.ResponseWriter, r *http.Request) error {
	d, err := s.marketData(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	if len(d.Problems) > 0 {
		return errf(ErrBadRequest, "%s", d.Problems[0])
	}
	out := map[string]any{"services": orEmpty(d.Services), "total": d.Total, "market_module": d.Market}
	if d.Market {
		out["listings"] = orEmpty(d.Listings)
	}
	if d.CoordErr != "" {
		out["coordinator_error"] = d.CoordErr
	}
	return ok(w, out)
}

// apiLive is the explorer's live feed: a "block" event per new block and a
// "tx" event per transaction in it, each with the block's height as its
// id, so that a browser that reconnects gets what it missed.
func (s *Server) apiLive(w http.ResponseWriter, r *http.Request) error {
	since, _ := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
	ctx, cancel := s.streamContext(r.Context())
	defer cancel()
	events, stop := s.feed.subscribe(since)
	defer stop()
	sse, err := startSSE(w)
	if err != nil {
		return err
	}
	_, _, height := s.feed.latest(0, 0)
	if err := sse.send("hello", "", map[string]int64{"height": height}); err != nil {
		return nil
	}
	keepAlive := time.NewTicker(15 * time.Second)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, open := <-events:
			if !open {
				return nil
			}
			if sse.send(e.Name, strconv.FormatInt(e.ID, 10), e.Data) != nil {
				return nil
			}
		case <-keepAlive.C:
			if _, err := w.Write([]byte(": keep-alive\n\n")); err != nil {
				return nil
			}
			sse.fl.Flush()
		}
	}
}
