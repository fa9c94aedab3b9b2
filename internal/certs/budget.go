package certs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/lru"
)

// Refusals of clientBudget.admit.
var (
	errClientBudget = errors.New("this client has used up its budget of KDS requests; retry later")
	errNonceSpent   = errors.New("this nonce already caused a KDS request for another chip or TCB; get a new challenge")
	errAnonBudget   = errors.New("the clients without a verified certificate have used up their budget of KDS requests; retry later")
)

// refusal is a KDS request refused before it was made, on behalf of the
// client and nonce that started the fetch. A caller that joined that
// fetch with another client or nonce is not bound by it (lookup retries).
type refusal struct {
	err      error
	client   string
	nonce    attest.Nonce
	hasNonce bool
	after    time.Duration
}

func (r *refusal) Error() string             { return r.err.Error() }
func (r *refusal) Unwrap() error             { return r.err }
func (r *refusal) RetryAfter() time.Duration { return r.after }

// of reports whether the refusal was of this client and nonce.
func (r *refusal) of(client string, n attest.Nonce, hasNonce bool) bool {
	return r.client == client && r.hasNonce == hasNonce && r.nonce == n
}

// chipTCB is a vkey without its product: the chip and TCB a nonce may
// cause KDS requests for (a version 2 report is tried as Milan and as
// Genoa; both count as one).
type chipTCB struct {
	hwid [64]byte
	n    uint8
	tcb  uint64
}

// clientBudget bounds the KDS VCEK requests that lookups of one client
// (attest.ClientOf) and of one nonce (attest.NonceOf) may cause: a token
// bucket per client (one request per every, burst at once) and one chip
// and TCB per nonce. A client with a verified certificate
// (attest.CertClient) has its own bucket only; every other client (an
// address) also draws from one bucket shared by all of them (one request
// per every*2/DefaultClientMissFactor, twice the burst: two thirds of the
// KDS rate at the default), so that a few addresses cannot take the whole
// KDS rate from the clients with certificates. Lookups without a client or nonce are not bounded by
// the respective rule. Both are remembered for the maxTracked most
// recently seen clients and nonces.
type clientBudget struct {
	every time.Duration // <= 0: no per-client bucket
	burst int
	now   func() time.Time

	mu      sync.Mutex // serialises admit
	clients *lru.Cache[string, *bucket]
	anon    bucket // shared by the clients without a verified certificate
	nonces  *lru.Cache[attest.Nonce, chipTCB]
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newClientBudget(every time.Duration, burst int, now func() time.Time) *clientBudget {
	b := &clientBudget{every: every, burst: burst, now: now,
		clients: lru.New[string, *bucket](maxTracked), nonces: lru.New[attest.Nonce, chipTCB](maxTracked)}
	b.anon = bucket{tokens: float64(b.anonBurst()), last: now()}
	return b
}

// anonEvery and anonBurst are the shared bucket's rate and burst.
func (b *clientBudget) anonEvery() time.Duration { return b.every * 2 / DefaultClientMissFactor }
func (b *clientBudget) anonBurst() int           { return 2 * b.burst }

// refill adds the tokens bk earned since its last use, up to burst.
func (bk *bucket) refill(now time.Time, every time.Duration, burst int) {
	if now.After(bk.last) {
		bk.tokens = min(float64(burst), bk.tokens+float64(now.Sub(bk.last))/float64(every))
		bk.last = now
	}
}

// admit charges one KDS request for k to ctx's client and nonce, or
// refuses it (*refusal) and charges nothing.
func (b *clientBudget) admit(ctx context.Context, k vkey) error {
	client := attest.ClientOf(ctx)
	n, hasNonce := attest.NonceOf(ctx)
	ck := chipTCB{hwid: k.hwid, n: k.n, tcb: uint64(k.tcb)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if hasNonce {
		if prev, ok := b.nonces.Get(n); ok && prev != ck {
			return &refusal{err: errNonceSpent, client: client, nonce: n, hasNonce: true}
		}
	}
	if client != "" && b.every > 0 {
		now := b.now()
		bk, ok := b.clients.Get(client)
		if !ok {
			bk = &bucket{tokens: float64(b.burst), last: now}
			b.clients.Put(client, bk)
		}
		bk.refill(now, b.every, b.burst)
		if bk.tokens < 1 {
			after := time.Duration((1 - bk.tokens) * float64(b.every))
			return &refusal{err: fmt.Errorf("%w (one request per %s, %d at once)", errClientBudget, b.every, b.burst),
				client: client, nonce: n, hasNonce: hasNonce, after: after}
		}
		anon := !attest.CertClient(client)
		if anon {
			b.anon.refill(now, b.anonEvery(), b.anonBurst())
			if b.anon.tokens < 1 {
				after := time.Duration((1 - b.anon.tokens) * float64(b.anonEvery()))
				return &refusal{err: fmt.Errorf("%w (clients without a verified certificate together: one request per %s, %d at once)",
					errAnonBudget, b.anonEvery(), b.anonBurst()), client: client, nonce: n, hasNonce: hasNonce, after: after}
			}
			b.anon.tokens--
		}
		bk.tokens--
	}
	if hasNonce {
		b.nonces.Put(n, ck)
	}
	return nil
}
