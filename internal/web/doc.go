// Package web serves AITBC's pages on 127.0.0.1:8016: the explorer
// (/explorer), the marketplace (/marketplace) and the miner dashboard
// (/miner), with the JSON behind them under /api/explorer/.
//
// Pages are html/template documents embedded in the binary, rendered on
// the server; charts are SVG drawn on the server. The only script is
// static/app.js (live blocks and transactions over server-sent events, a
// job's token stream, the receipt check), so the Content-Security-Policy
// forbids inline script and every third-party request.
//
// Every figure comes from a chain node's REST API (Node) or a
// coordinator's API (Coordinator): the package never imports the node or
// the chain's application (internal/system/boundaries_test.go holds that).
// The market module (listings, bids, agreements, ratings, reputation) is
// behind the Market interface; ChainMarket implements it over the node's
// /api/v1/market/ routes with the module's typed queries, and StartWeb
// always sets it. While it is nil the pages say so instead of showing
// figures.
//
// Signing in: a wallet held by the wallet daemon signs a one-time
// challenge (domain AITBC/web-signin/v1) after its owner types its
// password here; the session is a random id in an HttpOnly, SameSite=Strict
// cookie that lasts at most 24 hours, and every form that changes
// something carries the session's CSRF token and must come from this
// origin. The server never keeps a password, and signs only with the
// signed-in session's own wallet.
//
// Imported by internal/system (StartWeb), the CLI's web command and the
// web benchmark.
package web
