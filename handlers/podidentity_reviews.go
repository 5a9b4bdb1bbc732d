package handlers

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// What a peer can make the endpoint spend on the API server is bounded:
// reviews in flight, requests waiting for one, and the answers remembered.
// Everything else (its rate, its refusals) is bounded per source before a
// token is read.
const (
	// maxReviewsInFlight is how many TokenReviews run at once.
	maxReviewsInFlight = 4
	// maxReviewsPending is how many distinct tokens may be under review
	// or waiting for a slot; past it a new token gets 503 at once.
	maxReviewsPending = 64
	// maxCachedReviews bounds the answers remembered (a few hundred
	// bytes each).
	maxCachedReviews = 4096
	// reviewTTL is how long an authenticated token is believed without
	// asking again (never past its own expiry): a deleted pod's token
	// keeps working at most this long, as with the API server's own
	// webhook token cache.
	reviewTTL = time.Minute
	// refusedTTL is how long a refused token stays refused unasked.
	refusedTTL = 10 * time.Second
	// reviewTimeout bounds the wait for a slot and the review itself.
	reviewTimeout = 5 * time.Second
)

// errReviewsBusy: maxReviewsPending tokens are already being reviewed.
var errReviewsBusy = errors.New("too many token reviews pending")

// errNoReviewer: the server was made without Options.TokenReviewer.
var errNoReviewer = errors.New("no token reviewer: the Pod Identity endpoint needs the Kubernetes API server")

// podReviews remembers TokenReview answers by the SHA-256 of the token
// (never the token), asks once for requests that carry the same token at
// the same time, and bounds the reviews in flight.
type podReviews struct {
	reviewer TokenReviewer
	now      func() time.Time
	slots    chan struct{}
	asked    atomic.Uint64 // reviews sent to the reviewer

	mu      sync.Mutex
	answers map[[32]byte]*reviewAnswer
	pending int
}

// reviewAnswer is one token's answer; until is zero while it is pending.
type reviewAnswer struct {
	done  chan struct{} // closed once id and err are set
	id    PodIdentity
	err   error
	until time.Time
}

func newPodReviews(r TokenReviewer, now func() time.Time) *podReviews {
	return &podReviews{reviewer: r, now: now, slots: make(chan struct{}, maxReviewsInFlight),
		answers: make(map[[32]byte]*reviewAnswer)}
}

// review returns the identity of token, from memory when it was reviewed
// recently. A token that cannot be a pod's (empty, too long, not a JWT, or
// whose own claims say it has expired or is for another audience) is
// refused without asking: the claims are read unverified, and only ever
// to refuse.
func (p *podReviews) review(ctx context.Context, token string) (PodIdentity, error) {
	now := p.now()
	exp, ok := plausibleToken(token, now)
	if !ok {
		return PodIdentity{}, ErrTokenRefused
	}
	key := sha256.Sum256([]byte(token))
	p.mu.Lock()
	if a := p.answers[key]; a != nil {
		if a.until.IsZero() {
			p.mu.Unlock()
			select {
			case <-a.done:
				return a.id, a.err
			case <-ctx.Done():
				return PodIdentity{}, ctx.Err()
			}
		}
		if now.Before(a.until) {
			p.mu.Unlock()
			return a.id, a.err
		}
		delete(p.answers, key)
	}
	if p.pending >= maxReviewsPending {
		p.mu.Unlock()
		return PodIdentity{}, errReviewsBusy
	}
	p.pending++
	p.makeRoom(now)
	a := &reviewAnswer{done: make(chan struct{})}
	p.answers[key] = a
	p.mu.Unlock()

	id, err := p.ask(ctx, token)
	now = p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending--
	a.id, a.err = id, err
	switch {
	case err == nil:
		a.until = now.Add(reviewTTL)
		if !exp.IsZero() && exp.Before(a.until) {
			a.until = exp
		}
	case errors.Is(err, ErrTokenRefused):
		a.id = PodIdentity{}
		a.until = now.Add(refusedTTL)
	default:
		// Not the token's fault: the next request asks again.
		a.until = now
		delete(p.answers, key)
	}
	close(a.done)
	return a.id, a.err
}

// ask reviews token in a slot. The review belongs to every request that
// waits for it, so a client that hangs up does not cancel it; it is
// bounded by reviewTimeout instead.
func (p *podReviews) ask(ctx context.Context, token string) (PodIdentity, error) {
	if p.reviewer == nil {
		return PodIdentity{}, errNoReviewer
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reviewTimeout)
	defer cancel()
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return PodIdentity{}, errReviewsBusy
	}
	defer func() { <-p.slots }()
	p.asked.Add(1)
	return p.reviewer.Review(ctx, token)
}

// makeRoom keeps the answers under maxCachedReviews: the expired go first,
// then, if that is not enough, settled ones at random down to seven
// eighths, so that a full table is swept once per many insertions. Pending
// answers stay: their requests wait for them. p.mu is held.
func (p *podReviews) makeRoom(now time.Time) {
	if len(p.answers) < maxCachedReviews {
		return
	}
	for k, a := range p.answers {
		if !a.until.IsZero() && !now.Before(a.until) {
			delete(p.answers, k)
		}
	}
	for k, a := range p.answers {
		if len(p.answers) < maxCachedReviews*7/8 {
			return
		}
		if !a.until.IsZero() {
			delete(p.answers, k)
		}
	}
}

// plausibleToken reports whether token may be a projected service account
// token for PodIdentityAudience that has not expired at now, and its
// expiry if it says one. The claims are not verified: this only spares the
// API server tokens it would refuse.
func plausibleToken(token string, now time.Time) (exp time.Time, ok bool) {
	if token == "" || len(token) > MaxPodIdentityToken {
		return time.Time{}, false
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp int64     `json:"exp"`
		Aud audiences `json:"aud"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return time.Time{}, false
	}
	if claims.Aud != nil && !slices.Contains(claims.Aud, PodIdentityAudience) {
		return time.Time{}, false
	}
	if claims.Exp != 0 {
		exp = time.Unix(claims.Exp, 0)
		if !now.Before(exp) {
			return time.Time{}, false
		}
	}
	return exp, true
}

// audiences is a JWT's aud claim: one string or a list of them.
type audiences []string

func (a *audiences) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*a = audiences{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*a = audiences(many)
	return nil
}
