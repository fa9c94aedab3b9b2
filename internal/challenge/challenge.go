package challenge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// DefaultTTL is how long a nonce stays valid when Options.TTL is 0.
const DefaultTTL = 120 * time.Second

// MinKeySize is the smallest accepted nonce MAC key.
const MinKeySize = 32

const nonceVersion = 1

// Store records consumed nonces. Consume must be atomic: of concurrent
// calls with the same id, exactly one gets first == true.
type Store interface {
	// Consume records id until the given time and reports whether it was
	// not recorded before.
	Consume(ctx context.Context, id string, until time.Time) (first bool, err error)
}

// Options configures an Issuer.
type Options struct {
	// Key is the MAC key, at least MinKeySize bytes. Required.
	Key []byte
	// TTL is the nonce lifetime; 0 means DefaultTTL.
	TTL time.Duration
	// Store records consumed nonces. Required.
	Store Store
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issuer issues, checks and consumes nonces. It is safe for concurrent use.
type Issuer struct {
	key   []byte
	ttl   time.Duration
	store Store
	now   func() time.Time
}

// New returns an Issuer.
func New(o Options) (*Issuer, error) {
	if len(o.Key) < MinKeySize {
		return nil, fmt.Errorf("nonce key must be at least %d bytes", MinKeySize)
	}
	if o.Store == nil {
		return nil, errors.New("nonce store is required")
	}
	i := &Issuer{key: append([]byte(nil), o.Key...), ttl: o.TTL, store: o.Store, now: o.Now}
	if i.ttl <= 0 {
		i.ttl = DefaultTTL
	}
	if i.now == nil {
		i.now = time.Now
	}
	return i, nil
}

// GenerateKey returns a fresh random nonce key.
func GenerateKey() []byte {
	k := make([]byte, MinKeySize)
	rand.Read(k)
	return k
}

// Issue returns a fresh nonce and its expiry.
func (i *Issuer) Issue() (attest.Nonce, time.Time) {
	var n attest.Nonce
	exp := i.now().Add(i.ttl).Truncate(time.Millisecond)
	n[0] = nonceVersion
	binary.BigEndian.PutUint64(n[1:9], uint64(exp.UnixMilli()))
	rand.Read(n[9:32])
	copy(n[32:], i.mac(n[:32]))
	return n, exp
}

func (i *Issuer) mac(b []byte) []byte {
	m := hmac.New(sha256.New, i.key)
	m.Write(b)
	return m.Sum(nil)
}

// Check reports whether n is one of this verifier's nonces and unexpired,
// without consuming it: nonce_invalid or nonce_expired otherwise.
func (i *Issuer) Check(n attest.Nonce) error {
	if !hmac.Equal(i.mac(n[:32]), n[32:]) || n[0] != nonceVersion {
		return attest.Errorf(attest.ReasonNonceInvalid, "nonce was not issued by this verifier")
	}
	if !i.now().Before(expiry(n)) {
		return attest.Errorf(attest.ReasonNonceExpired, "nonce expired at %s", expiry(n).UTC().Format(time.RFC3339))
	}
	return nil
}

func expiry(n attest.Nonce) time.Time {
	return time.UnixMilli(int64(binary.BigEndian.Uint64(n[1:9])))
}

// Consume checks n and records it as used: nonce_replayed if it was used
// before, store_unavailable if the store cannot tell.
func (i *Issuer) Consume(ctx context.Context, n attest.Nonce) error {
	if err := i.Check(n); err != nil {
		return err
	}
	// The MAC half identifies the nonce; it is not secret once issued.
	first, err := i.store.Consume(ctx, "nonce:"+hex.EncodeToString(n[32:]), expiry(n))
	if err != nil {
		return attest.Errorf(attest.ReasonStoreUnavailable, "recording the nonce: %w", err)
	}
	if !first {
		return attest.Errorf(attest.ReasonNonceReplayed, "nonce was already used")
	}
	return nil
}
