package handlers

import "sync/atomic"

// kept is what a tenant keeps by name across reloads: its request counts,
// its IMDSv2 tokens and its lifecycle events. Most tenants of a large
// configuration never mint a token nor get an event: the token store and
// the event board are made on first use, once for every site sharing kept,
// so that a reload racing the first PUT or event loses neither.
type kept struct {
	counts requestCounts
	tokens atomic.Pointer[TokenStore] // nil: none minted yet
	events atomic.Pointer[eventBoard] // nil: no event yet
}

// board returns the tenant's event board, made if it has none.
func (k *kept) board() *eventBoard {
	if b := k.events.Load(); b != nil {
		return b
	}
	k.events.CompareAndSwap(nil, &eventBoard{})
	return k.events.Load()
}

// tokens returns the site's token store, made if it has none.
func (s *Server) tokens(si *site) *TokenStore {
	if ts := si.kept.tokens.Load(); ts != nil {
		return ts
	}
	si.kept.tokens.CompareAndSwap(nil, NewTokenStore(s.opts.MaxTokensPerTenant, s.opts.MaxTokensPerSource, s.opts.Now, s.opts.Rand))
	return si.kept.tokens.Load()
}
