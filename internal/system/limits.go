package system

import (
	"github.com/aitbc/aitbc/internal/httpx"
)

// Descriptors are shared by everything in the process: the chain's
// stores and CometBFT's write-ahead log, its P2P and RPC connections, and
// every HTTP listener. When connections took them all, CometBFT could not
// open its WAL and panicked, taking every service of the process down.
// So the HTTP listeners together may hold only part of the limit:
//
//	reserved  = fdReserveMin + limit/fdReserveShare   (stores, WAL, CometBFT's own
//	                                                   RPC and peers, clients)
//	per listener = (limit − reserved) / fdListeners,   within [fdMinConns, httpx.DefaultMaxConns]
//
// A listener's MaxConns set in its config is lowered to that share too.
const (
	fdReserveMin   = 1024 // CometBFT RPC (256 connections, internal/node/config.go) and peers, WAL, stores, outgoing clients
	fdReserveShare = 8    // plus an eighth of the limit
	fdListeners    = 8    // node REST, wallet daemon, coordinator, web, exchange, … as they come
	fdMinConns     = 16   // a listener always gets at least this many
)

// connShare is the connection cap one HTTP listener may have under a
// descriptor limit (0: unknown, the default cap).
func connShare(limit int) int {
	if limit <= 0 {
		return httpx.DefaultMaxConns
	}
	free := limit - fdReserveMin - limit/fdReserveShare
	return min(max(free/fdListeners, fdMinConns), httpx.DefaultMaxConns)
}

// listenerLimits fills l's defaults and fits its connection caps into
// this process's share of descriptors.
func listenerLimits(l httpx.Limits) httpx.Limits {
	share := connShare(openFileLimit())
	if l.MaxConns == 0 || l.MaxConns > share {
		l.MaxConns = share
	}
	l = l.WithDefaults()
	if l.MaxConnsPerClient > l.MaxConns && l.MaxConns > 0 {
		l.MaxConnsPerClient = l.MaxConns
	}
	return l
}
