package challenge

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// DefaultTTL is how long a nonce stays valid when Options.TTL is 0.
const DefaultTTL = 120 * time.Second

// MinKeySize is the smallest accepted nonce MAC key.
const MinKeySize = 32

// nonceVersion is the layout of doc.go. Version 1 (no issue time) is no
// longer accepted (see Check): nothing could tell whether a store that lost
// its records had seen it.
const nonceVersion = 2

// ErrIssuedBeforeRecords is a Store's answer for a record issued before
// the store's records begin: the store was restarted or lost its data
// since, so it cannot confirm the record was not used before. It is an
// outcome the store cannot confirm (store_unavailable), not a replay.
var ErrIssuedBeforeRecords = errors.New("issued before the single-use records begin (the store restarted or lost its data since)")

// Store records consumed nonces and token ids. Consume must be atomic: of
// concurrent calls with the same id, exactly one gets first == true.
type Store interface {
	// Consume records id, issued at the given time, until the given time
	// and reports whether it was not recorded before. A record issued
	// before the store's records begin (a restart or a loss of data since)
	// is refused with an error wrapping ErrIssuedBeforeRecords; any error
	// means the outcome is unknown, never that the id was used.
	Consume(ctx context.Context, id string, issued, until time.Time) (first bool, err error)
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
	// Replica, when not nil (ReplicaIDSize bytes), is this process's id:
	// it goes into every nonce (bytes 13..20, under the MAC) and Check
	// refuses a nonce that names another replica (store_unavailable: this
	// store cannot confirm it unused). For a Store that is not
	// shared between processes, so that replicas sharing Key cannot each
	// accept the same nonce once. nil: nonces name no replica.
	Replica []byte
}

// ReplicaIDSize is the size of Options.Replica.
const ReplicaIDSize = 8

// NewReplicaID returns a random replica id.
func NewReplicaID() []byte {
	b := make([]byte, ReplicaIDSize)
	rand.Read(b)
	return b
}

// Issuer issues, checks and consumes nonces. It is safe for concurrent use.
type Issuer struct {
	key     []byte
	replica []byte
	ttl     time.Duration
	store   Store
	now     func() time.Time
	// macs holds keyed HMAC-SHA256 states (hash.Hash) for reuse: keying
	// one costs two SHA-256 blocks and five allocations per nonce.
	macs sync.Pool
}

// New returns an Issuer.
func New(o Options) (*Issuer, error) {
	if len(o.Key) < MinKeySize {
		return nil, fmt.Errorf("nonce key must be at least %d bytes", MinKeySize)
	}
	if o.Store == nil {
		return nil, errors.New("nonce store is required")
	}
	if o.Replica != nil && len(o.Replica) != ReplicaIDSize {
		return nil, fmt.Errorf("replica id must be %d bytes", ReplicaIDSize)
	}
	i := &Issuer{key: append([]byte(nil), o.Key...), replica: bytes.Clone(o.Replica), ttl: o.TTL, store: o.Store, now: o.Now}
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
	now := i.now().Truncate(time.Millisecond)
	exp := now.Add(i.ttl).Truncate(time.Millisecond)
	n[0] = nonceVersion
	putMillis48(n[1:7], now)
	putMillis48(n[7:13], exp)
	rand.Read(n[13:32])
	copy(n[13:], i.replica) // nothing without a replica id
	copy(n[32:], i.mac(n[:32]))
	return n, exp
}

// putMillis48 writes t as Unix milliseconds, 48 bits big-endian (good
// until the year 10889).
func putMillis48(b []byte, t time.Time) {
	var w [8]byte
	binary.BigEndian.PutUint64(w[:], uint64(t.UnixMilli()))
	copy(b, w[2:])
}

func millis48(b []byte) time.Time {
	var w [8]byte
	copy(w[2:], b)
	return time.UnixMilli(int64(binary.BigEndian.Uint64(w[:])))
}

func (i *Issuer) mac(b []byte) []byte {
	m, _ := i.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, i.key)
	}
	m.Write(b)
	sum := m.Sum(make([]byte, 0, sha256.Size))
	m.Reset()
	i.macs.Put(m)
	return sum
}

// Check reports whether n is one of this verifier's nonces and unexpired,
// without consuming it: nonce_invalid or nonce_expired otherwise. A
// version 1 nonce under this verifier's key (issued before an upgrade) is
// store_unavailable: it carries no issue time, so no store can confirm it
// unused; the guest's retry asks a new challenge.
func (i *Issuer) Check(n attest.Nonce) error {
	if !hmac.Equal(i.mac(n[:32]), n[32:]) || (n[0] != nonceVersion && n[0] != 1) {
		return attest.Errorf(attest.ReasonNonceInvalid, "nonce was not issued by this verifier")
	}
	if i.replica != nil && !bytes.Equal(n[13:13+ReplicaIDSize], i.replica) {
		// As for a record issued before a store's records begin: this
		// store cannot confirm it unused (503; the guest's retry asks a
		// new challenge).
		return attest.Errorf(attest.ReasonStoreUnavailable, "nonce was issued by another replica (or before a restart); without a shared store (redis) only the process that issued a nonce accepts it")
	}
	if n[0] == 1 {
		return attest.Errorf(attest.ReasonStoreUnavailable, "a version 1 nonce (issued before an upgrade) cannot be confirmed unused; ask a new challenge")
	}
	if !i.now().Before(expiry(n)) {
		return attest.Errorf(attest.ReasonNonceExpired, "nonce expired at %s", expiry(n).UTC().Format(time.RFC3339))
	}
	return nil
}

// nonceID is n's record id: the MAC half identifies the nonce; it is not
// secret once issued.
func nonceID(n attest.Nonce) string { return "nonce:" + hex.EncodeToString(n[32:]) }

func issued(n attest.Nonce) time.Time { return millis48(n[1:7]) }
func expiry(n attest.Nonce) time.Time { return millis48(n[7:13]) }

// Consume checks n and records it as used: nonce_replayed if it was used
// before, store_unavailable if the store cannot tell (it does not answer,
// or n was issued before the store's records begin).
func (i *Issuer) Consume(ctx context.Context, n attest.Nonce) error {
	if err := i.Check(n); err != nil {
		return err
	}
	first, err := i.store.Consume(ctx, nonceID(n), issued(n), expiry(n))
	if err != nil {
		return attest.Errorf(attest.ReasonStoreUnavailable, "recording the nonce: %w", err)
	}
	if !first {
		return attest.Errorf(attest.ReasonNonceReplayed, "nonce was already used")
	}
	return nil
}

// JointStore is a Store that can do one more write together with a
// record's first use, atomically (RedisStore).
type JointStore interface {
	Store
	ConsumeJoint(ctx context.Context, id string, issued, until time.Time, j *Joint) (first bool, reply []any, err error)
}

// Joint reports whether the issuer's store does joint writes (ConsumeJoint
// with a Joint).
func (i *Issuer) Joint() bool {
	_, ok := i.store.(JointStore)
	return ok
}

// ConsumeJoint is Consume with j's write done in the same store step, only
// if n is a first use: j's reply then. When j's check refused, nothing is
// recorded: ErrJointRefused and the refusal. A nil j is Consume; a j given
// to an issuer whose store does no joint writes is internal_error.
func (i *Issuer) ConsumeJoint(ctx context.Context, n attest.Nonce, j *Joint) ([]any, error) {
	if j == nil {
		return nil, i.Consume(ctx, n)
	}
	if err := i.Check(n); err != nil {
		return nil, err
	}
	js, ok := i.store.(JointStore)
	if !ok {
		return nil, attest.Errorf(attest.ReasonInternalError, "the nonce store (%T) does no joint writes", i.store)
	}
	first, reply, err := js.ConsumeJoint(ctx, nonceID(n), issued(n), expiry(n), j)
	switch {
	case errors.Is(err, ErrJointRefused):
		return reply, err
	case err != nil:
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "recording the nonce: %w", err)
	case !first:
		return nil, attest.Errorf(attest.ReasonNonceReplayed, "nonce was already used")
	}
	return reply, nil
}
