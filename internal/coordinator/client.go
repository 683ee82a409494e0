package coordinator

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/aitbc/aitbc/internal/httpx"
)

// Client talks to a coordinator's API as one tenant.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
	// Fallbacks are other coordinators of the same marketplace, in the
	// order to try them when BaseURL cannot be reached (Picker's ranking):
	// a read goes to the next on any transport error, a write only when
	// the connection was refused (nothing was sent, so it cannot run twice).
	Fallbacks []string
}

// NewClient returns a client for the coordinator at baseURL using key.
func NewClient(baseURL, key string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), APIKey: key, HTTP: &http.Client{Timeout: 60 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	h := http.Header{}
	if c.APIKey != "" {
		h.Set("X-API-Key", c.APIKey)
	}
	err := httpx.Do(ctx, c.HTTP, method, c.BaseURL+path, h, body, out)
	for _, fb := range c.Fallbacks {
		if !movesOn(ctx, method, err) {
			break
		}
		err = httpx.Do(ctx, c.HTTP, method, strings.TrimRight(fb, "/")+path, h, body, out)
	}
	if err != nil {
		if api, ok := err.(*httpx.APIError); ok {
			return fromAPIError(api) // errors.Is finds the coordinator's sentinel
		}
		return fmt.Errorf("coordinator at %s is not reachable (is `aitbc devnet` running? set --coordinator or AITBC_COORDINATOR): %w", c.BaseURL, err)
	}
	return nil
}

// Health returns GET /v1/health.
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	return h, c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
}

// Register obtains an API key for an address (see RegisterRequest).
func (c *Client) Register(ctx context.Context, r RegisterRequest) (string, error) {
	var out struct {
		APIKey string `json:"api_key"`
	}
	return out.APIKey, c.do(ctx, http.MethodPost, "/v1/tenants", r, &out)
}

// Submit submits a job.
func (c *Client) Submit(ctx context.Context, r JobRequest) (JobView, error) {
	var v JobView
	return v, c.do(ctx, http.MethodPost, "/v1/jobs", r, &v)
}

// Status returns a job's status.
func (c *Client) Status(ctx context.Context, id string) (JobView, error) {
	var v JobView
	return v, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/status", nil, &v)
}

// Results returns a job with its result text and receipt.
func (c *Client) Results(ctx context.Context, id string) (JobView, error) {
	var v JobView
	return v, c.do(ctx, http.MethodGet, "/v1/jobs/"+url.PathEscape(id)+"/results", nil, &v)
}

// Jobs lists the tenant's newest jobs.
func (c *Client) Jobs(ctx context.Context, limit int) ([]JobView, error) {
	var out struct {
		Jobs []JobView `json:"jobs"`
	}
	return out.Jobs, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/jobs?limit=%d", limit), nil, &out)
}

// Receipts lists the tenant's newest receipts, or one job's.
func (c *Client) Receipts(ctx context.Context, limit int, jobID string) ([]ReceiptView, error) {
	var out struct {
		Receipts []ReceiptView `json:"receipts"`
	}
	q := fmt.Sprintf("/v1/receipts?limit=%d", limit)
	if jobID != "" {
		q += "&job_id=" + url.QueryEscape(jobID)
	}
	return out.Receipts, c.do(ctx, http.MethodGet, q, nil, &out)
}

// Miners lists the miners connected to the coordinator.
func (c *Client) Miners(ctx context.Context) ([]MinerView, error) {
	var out struct {
		Miners []MinerView `json:"miners"`
	}
	return out.Miners, c.do(ctx, http.MethodGet, "/v1/miners", nil, &out)
}

// Stream follows a job over WebSocket, calling onEvent for each event
// until the job is done or ctx ends. Events arrive in order and none is
// dropped; a "requeued" status event means the text so far is void and
// the job starts over (see Event).
func (c *Client) Stream(ctx context.Context, id string, onEvent func(Event)) error {
	u := strings.Replace(c.BaseURL, "http", "ws", 1) + "/v1/jobs/" + url.PathEscape(id) + "/stream"
	h := http.Header{}
	h.Set("X-API-Key", c.APIKey)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusNotFound {
			return errf(ErrJobNotFound, "job %s not found", id)
		}
		return fmt.Errorf("coordinator stream: %w", err)
	}
	defer conn.CloseNow()
	for {
		var e Event
		if err := wsjson.Read(ctx, conn, &e); err != nil {
			if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
				return nil
			}
			return err
		}
		onEvent(e)
		if e.Type == EventDone {
			return nil
		}
	}
}

// Allocate reserves miner slots for an agent.
func (c *Client) Allocate(ctx context.Context, r AllocateRequest) (Allocation, error) {
	var a Allocation
	return a, c.do(ctx, http.MethodPost, "/v1/resources", r, &a)
}

// Allocations lists the tenant's allocations (one agent's when agentID is set).
func (c *Client) Allocations(ctx context.Context, agentID string) ([]Allocation, error) {
	var out struct {
		Allocations []Allocation `json:"allocations"`
	}
	q := "/v1/resources"
	if agentID != "" {
		q += "?agent_id=" + url.QueryEscape(agentID)
	}
	return out.Allocations, c.do(ctx, http.MethodGet, q, nil, &out)
}

// Deallocate releases an agent's allocation.
func (c *Client) Deallocate(ctx context.Context, agentID string) (Allocation, error) {
	var a Allocation
	return a, c.do(ctx, http.MethodDelete, "/v1/resources/"+url.PathEscape(agentID), nil, &a)
}

// Utilization summarises slot use over a period.
func (c *Client) Utilization(ctx context.Context, typ string, period time.Duration) (Utilization, error) {
	var u Utilization
	return u, c.do(ctx, http.MethodGet, fmt.Sprintf("/v1/resources/utilization?type=%s&period=%s", url.QueryEscape(typ), period), nil, &u)
}
