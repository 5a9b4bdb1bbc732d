package handlers

import (
	"encoding/base64"
	"fmt"
	"io"
	"sync"
	"time"
)

// TokenStore holds the IMDSv2 session tokens one tenant has minted. A token
// is valid only in the store that minted it, which is what binds it to its
// tenant: tenant B's store has never heard of tenant A's tokens.
//
// Memory is bounded: past max live tokens, minting evicts the oldest, so a
// runaway client can only push out its own tenant's tokens (whose clients
// answer a 401 by fetching a new one).
type TokenStore struct {
	now  func() time.Time
	rand io.Reader
	max  int

	mu     sync.RWMutex
	expiry map[string]time.Time
	order  []string // mint order, oldest first; may hold tokens already gone
}

// tokenBytes makes 56-character tokens, the length of real ones.
const tokenBytes = 42

// NewTokenStore returns an empty store that keeps at most limit live tokens.
func NewTokenStore(limit int, now func() time.Time, random io.Reader) *TokenStore {
	return &TokenStore{now: now, rand: random, max: limit, expiry: map[string]time.Time{}}
}

// Mint creates a token valid for ttl.
func (s *TokenStore) Mint(ttl time.Duration) (string, error) {
	var b [tokenBytes]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()

	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.expiry) >= s.max && len(s.order) > 0 {
		delete(s.expiry, s.order[0])
		s.order = s.order[1:]
	}
	s.expiry[tok] = now.Add(ttl)
	s.order = append(s.order, tok)
	if len(s.order) > 2*s.max+16 {
		s.compact(now)
	}
	return tok, nil
}

// compact drops expired tokens and forgets ones already gone, so the order
// queue stays within a constant of max.
func (s *TokenStore) compact(now time.Time) {
	kept := make([]string, 0, len(s.expiry))
	for _, tok := range s.order {
		exp, ok := s.expiry[tok]
		switch {
		case !ok:
		case !now.Before(exp):
			delete(s.expiry, tok)
		default:
			kept = append(kept, tok)
		}
	}
	s.order = kept
}

// Remaining reports how long a token stays valid; ok is false when the token
// is unknown to this store or expired.
func (s *TokenStore) Remaining(tok string) (time.Duration, bool) {
	s.mu.RLock()
	exp, ok := s.expiry[tok]
	s.mu.RUnlock()
	if !ok {
		return 0, false
	}
	left := exp.Sub(s.now())
	if left <= 0 {
		s.mu.Lock()
		delete(s.expiry, tok)
		s.mu.Unlock()
		return 0, false
	}
	return left, true
}

// Len is the number of tokens held, expired ones not yet swept included.
func (s *TokenStore) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.expiry)
}
