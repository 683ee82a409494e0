package bridge

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aitbc/aitbc/internal/httpx"
)

// Handler serves the daemon's report (docs/api/bridge.openapi.yaml):
// GET /api/v1/bridge/status (Status: halted and why, heights, reserve) and
// GET /metrics (reg, where the daemon's metrics are registered).
func (d *Daemon) Handler(reg prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/bridge/status", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, d.Status())
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "the bridge daemon serves GET /api/v1/bridge/status and GET /metrics")
	})
	return mux
}
