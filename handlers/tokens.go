package handlers

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"
)

// TokenStore holds the IMDSv2 session tokens one tenant has minted. A token
// is valid only in the store that minted it, which is what binds it to its
// tenant: tenant B's store has never heard of tenant A's tokens.
//
// Memory is bounded twice. Past perSource live tokens of one source
// address, minting evicts that source's oldest; past max live tokens in
// all, it evicts the oldest token of the source holding the most. Either
// way a client minting in a loop pushes out its own tokens, never those of
// the tenant's other sources (whose clients would have to answer a 401 by
// fetching a new one).
type TokenStore struct {
	now       func() time.Time
	rand      io.Reader
	max       int
	perSource int

	mu       sync.RWMutex
	tokens   map[string]minted
	bySource map[netip.Addr]*sourceTokens
}

// minted is what the store knows of a token.
type minted struct {
	expiry time.Time
	src    netip.Addr
}

// sourceTokens are one source's tokens in mint order, oldest first; order
// may hold tokens already gone, live counts the ones in the store.
type sourceTokens struct {
	order []string
	live  int
}

// tokenBytes makes 56-character tokens, the length of real ones.
const tokenBytes = 42

// NewTokenStore returns an empty store that keeps at most limit live
// tokens, and at most perSource of them minted by one source address.
func NewTokenStore(limit, perSource int, now func() time.Time, random io.Reader) *TokenStore {
	// The maps are made by the first Mint: most tenants of a large
	// configuration never mint a token, and reading a nil map is safe.
	return &TokenStore{now: now, rand: random, max: limit, perSource: min(perSource, limit)}
}

// Mint creates a token valid for ttl for a client at src.
func (s *TokenStore) Mint(src netip.Addr, ttl time.Duration) (string, error) {
	var b [tokenBytes]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tokens == nil {
		s.tokens, s.bySource = map[string]minted{}, map[netip.Addr]*sourceTokens{}
	}
	for st := s.bySource[src]; st != nil && st.live >= s.perSource && s.evictOldest(src, st); {
	}
	for len(s.tokens) >= s.max && s.evictOldest(s.largest()) {
	}
	st := s.bySource[src] // after evicting, which drops a source left with none
	if st == nil {
		st = &sourceTokens{}
		s.bySource[src] = st
	}
	s.tokens[tok] = minted{expiry: now.Add(ttl), src: src}
	st.order = append(st.order, tok)
	st.live++
	if len(st.order) > 2*st.live+16 {
		s.compact(st, now)
	}
	return tok, nil
}

// largest is the source holding the most tokens.
func (s *TokenStore) largest() (netip.Addr, *sourceTokens) {
	var src netip.Addr
	var most *sourceTokens
	for a, st := range s.bySource {
		if most == nil || st.live > most.live {
			src, most = a, st
		}
	}
	return src, most
}

// evictOldest removes the oldest token of a source; false if it has none.
func (s *TokenStore) evictOldest(src netip.Addr, st *sourceTokens) bool {
	for st != nil && len(st.order) > 0 {
		tok := st.order[0]
		st.order = st.order[1:]
		if _, ok := s.tokens[tok]; ok {
			s.forget(tok, src, st)
			return true
		}
	}
	return false
}

// forget removes a token held by the store. The lock is held for writing.
func (s *TokenStore) forget(tok string, src netip.Addr, st *sourceTokens) {
	delete(s.tokens, tok)
	st.live--
	if st.live == 0 {
		delete(s.bySource, src)
	}
}

// compact drops a source's expired tokens and forgets ones already gone,
// so that its order queue stays within a constant of its live tokens.
func (s *TokenStore) compact(st *sourceTokens, now time.Time) {
	kept := make([]string, 0, st.live)
	for _, tok := range st.order {
		m, ok := s.tokens[tok]
		switch {
		case !ok:
		case !now.Before(m.expiry):
			s.forget(tok, m.src, st)
		default:
			kept = append(kept, tok)
		}
	}
	st.order = kept
}

// Remaining reports how long a token stays valid; ok is false when the token
// is unknown to this store or expired.
//
// A nil store has none: it is made by the tenant's first PUT.
func (s *TokenStore) Remaining(tok string) (time.Duration, bool) {
	if s == nil {
		return 0, false
	}
	s.mu.RLock()
	m, ok := s.tokens[tok]
	s.mu.RUnlock()
	if !ok {
		return 0, false
	}
	left := m.expiry.Sub(s.now())
	if left <= 0 {
		s.mu.Lock()
		if _, still := s.tokens[tok]; still {
			s.forget(tok, m.src, s.bySource[m.src])
		}
		s.mu.Unlock()
		return 0, false
	}
	return left, true
}

// Len is the number of tokens held, expired ones not yet swept included.
func (s *TokenStore) Len() int {
	if s == nil {
		return 0
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.tokens)
}
