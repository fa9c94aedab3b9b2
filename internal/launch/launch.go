package launch

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
)

// KeySize is the size of a generated launch key, in bytes; MinKeySize the
// least a key file may hold.
const (
	KeySize    = 32
	MinKeySize = 32
)

// DefaultRetention is Options.Retention when it is 0: a record is dropped
// 24 h after the last attestation of its launch.
const DefaultRetention = 24 * time.Hour

// AnomalyNewChip is the kind of trustgate_launch_anomalies_total counted
// when a launch is attested from another chip than the one it was first
// attested from.
const AnomalyNewChip = "launch_on_new_chip"

// Anomalies is the closed set of anomaly kinds.
func Anomalies() []string { return []string{AnomalyNewChip} }

// ErrConflict is Commit's answer when the launch's record changed since
// Lookup (another attestation of the same launch was committed first).
var ErrConflict = errors.New("launch: record changed since it was looked up")

// GenerateKey returns a new random launch key of KeySize bytes.
func GenerateKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k)
	return k
}

// Pseudonym is a keyed pseudonym: HMAC-SHA256 under the launch key. The
// zero Pseudonym means "none" (no chip identity).
type Pseudonym [sha256.Size]byte

// IsZero reports whether p is the zero Pseudonym ("none").
func (p Pseudonym) IsZero() bool { return p == Pseudonym{} }

// String is p in lowercase hex (64 characters), "" for the zero Pseudonym.
func (p Pseudonym) String() string {
	if p.IsZero() {
		return ""
	}
	return hex.EncodeToString(p[:])
}

// Prefix is the first 8 bytes of p in hex (16 characters), "" for the zero
// Pseudonym: enough to tell records apart in a listing.
func (p Pseudonym) Prefix() string {
	if p.IsZero() {
		return ""
	}
	return hex.EncodeToString(p[:8])
}

// ParsePseudonym parses 64 hex characters ("" gives the zero Pseudonym).
func ParsePseudonym(s string) (Pseudonym, error) {
	var p Pseudonym
	if s == "" {
		return p, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(p) {
		return p, errors.New("a pseudonym is 64 hex characters")
	}
	copy(p[:], b)
	return p, nil
}

// Keyer computes pseudonyms under one key. It is safe for concurrent use.
type Keyer struct{ key []byte }

// NewKeyer returns a Keyer over key (at least MinKeySize bytes; copied).
func NewKeyer(key []byte) (*Keyer, error) {
	if len(key) < MinKeySize {
		return nil, fmt.Errorf("launch key is %d bytes, want at least %d", len(key), MinKeySize)
	}
	return &Keyer{key: append([]byte(nil), key...)}, nil
}

// Kinds of identity a pseudonym names (domain separation).
const (
	kindLaunch = "launch"
	kindChip   = "chip"
)

func (k *Keyer) sum(kind, tee string, id []byte) Pseudonym {
	m := hmac.New(sha256.New, k.key)
	m.Write([]byte("trustgate " + kind + " v1\x00" + tee + "\x00"))
	m.Write(id)
	var p Pseudonym
	m.Sum(p[:0])
	return p
}

// Launch is the pseudonym of a launch identity of tee (see Identity).
func (k *Keyer) Launch(tee string, id []byte) Pseudonym { return k.sum(kindLaunch, tee, id) }

// Chip is the pseudonym of a chip identity of tee; the zero Pseudonym
// when id is empty (no chip identity).
func (k *Keyer) Chip(tee string, id []byte) Pseudonym {
	if len(id) == 0 {
		return Pseudonym{}
	}
	return k.sum(kindChip, tee, id)
}

// Identity returns the launch and chip identities of verified evidence
// (see the package doc); chip is nil when the evidence names none; ok is
// false when v is of no TEE this package knows.
func Identity(v attest.Verified) (launch, chip []byte, ok bool) {
	switch c := v.(type) {
	case *attest.Claims:
		if c == nil || allZero(c.ReportID) { // firmware never gives a zero REPORT_ID
			return nil, nil, false
		}
		if !allZero(c.ChipID) {
			chip = c.ChipID
		}
		return c.ReportID, chip, true
	case *attest.TDXClaims:
		if c == nil || len(c.MRTD) == 0 {
			return nil, nil, false
		}
		id := make([]byte, 0, 4*48)
		id = append(append(append(append(id, c.MRTD...), c.MRConfigID...), c.MROwner...), c.MROwnerConfig...)
		if !allZero(c.PlatformID) {
			chip = c.PlatformID
		}
		return id, chip, true
	case *attest.AzureSNPClaims: // an Azure VM's launch is its hardware report's
		if c == nil || c.Claims == nil {
			return nil, nil, false
		}
		return Identity(c.Claims)
	case *attest.AzureTDXClaims:
		if c == nil || c.TDXClaims == nil {
			return nil, nil, false
		}
		return Identity(c.TDXClaims)
	}
	return nil, nil, false
}

// SetView gives v's policy input the launch view (input.launch); false
// when v is of no TEE this package knows.
func SetView(v attest.Verified, l *attest.Launch) bool {
	switch c := v.(type) {
	case *attest.Claims:
		c.Launch = l
	case *attest.TDXClaims:
		c.Launch = l
	case *attest.AzureSNPClaims:
		return c.Claims != nil && SetView(c.Claims, l)
	case *attest.AzureTDXClaims:
		return c.TDXClaims != nil && SetView(c.TDXClaims, l)
	default:
		return false
	}
	return true
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}

// Record is what is kept of one launch: pseudonyms, never identities.
type Record struct {
	Launch Pseudonym
	TEE    string
	// Chip is the chip the launch was first attested from (zero: none
	// known yet).
	Chip Pseudonym
	// Seq is the number of affirmed attestations of the launch within the
	// retention (the last token's trustgate.launch_seq).
	Seq       uint64
	FirstSeen time.Time
	LastSeen  time.Time
	// Anomaly is set once an attestation of the launch from another chip
	// than Chip was affirmed.
	Anomaly bool
}

// Store keeps records. Implementations bound every call by their own
// timeout and return an *attest.Error with store_unavailable when the
// outcome is unknown.
type Store interface {
	// Get returns the launch's record; found false when there is none
	// (never attested, or dropped after the retention).
	Get(ctx context.Context, l Pseudonym) (r Record, found bool, err error)
	// Commit records one more affirmed attestation of launch l from chip
	// at now, if the record's Seq is still prevSeq (0: no record):
	// Seq becomes prevSeq+1, LastSeen now, FirstSeen now on the first,
	// Chip set when it was none, Anomaly set when chip differs from it;
	// the record is kept for retention from now. ErrConflict otherwise.
	Commit(ctx context.Context, l Pseudonym, tee string, chip Pseudonym, prevSeq uint64, now time.Time, retention time.Duration) error
	// List returns at most limit records (any order).
	List(ctx context.Context, limit int) ([]Record, error)
}

// Observer is told of each launch anomaly (kind AnomalyNewChip) when an
// attestation's evidence verified, whatever the policy then decides, and
// of each committed sequence number.
type Observer interface {
	LaunchAnomaly(kind string)
	LaunchCommitted(seq uint64)
}

// Options configure a Tracker. Key and Store are required.
type Options struct {
	// Key is the pseudonym key (at least MinKeySize bytes).
	Key []byte
	// Store keeps the records (NewMemoryStore, NewRedisStore).
	Store Store
	// Retention is how long a record is kept after the last attestation
	// of its launch; 0 means DefaultRetention.
	Retention time.Duration
	// Observer, if not nil, counts anomalies and sequence numbers.
	Observer Observer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Tracker numbers the attestations of each launch.
type Tracker struct {
	o     Options
	keyer *Keyer
}

// New returns a Tracker.
func New(o Options) (*Tracker, error) {
	k, err := NewKeyer(o.Key)
	if err != nil {
		return nil, err
	}
	if o.Store == nil {
		return nil, errors.New("launch: a store is required")
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Tracker{o: o, keyer: k}, nil
}

// Keyer returns the tracker's pseudonym keyer.
func (t *Tracker) Keyer() *Keyer { return t.keyer }

// Store returns the tracker's store.
func (t *Tracker) Store() Store { return t.o.Store }

// Pending is one attestation's launch, looked up (or begun) and not yet
// committed.
type Pending struct {
	tee          string
	launch, chip Pseudonym
	prev         Record
	found        bool
	counted      bool            // the anomaly, if any, was counted
	v            attest.Verified // the claims whose view this is
	read         bool            // prev was read: Commit is a compare-and-set on it
	consumed     bool            // the nonce was consumed (not jointly)
}

// Launch is the pseudonym of p's launch.
func (p *Pending) Launch() Pseudonym { return p.launch }

// View is the policy's input.launch for p.
func (p *Pending) View() *attest.Launch {
	v := &attest.Launch{Seq: p.prev.Seq + 1, NewChip: p.newChip()}
	if p.found {
		v.FirstSeen = p.prev.FirstSeen.UTC().Format(time.RFC3339)
	}
	return v
}

func (p *Pending) newChip() bool {
	return p.found && !p.prev.Chip.IsZero() && !p.chip.IsZero() && p.prev.Chip != p.chip
}

// Lookup reads the record of v's launch and gives v's policy input its
// View. It returns nil (and no error) for evidence without a launch
// identity. An anomaly is counted here, once the evidence verified,
// whether or not the attestation is then affirmed.
func (t *Tracker) Lookup(ctx context.Context, v attest.Verified) (*Pending, error) {
	id, chip, ok := Identity(v)
	if !ok {
		return nil, nil
	}
	tee := v.TEEName()
	p := &Pending{tee: tee, launch: t.keyer.Launch(tee, id), chip: t.keyer.Chip(tee, chip), v: v, read: true}
	if err := t.read(ctx, p); err != nil {
		return nil, err
	}
	SetView(v, p.View())
	return p, nil
}

// Begin is Lookup without reading the record, for a policy that never
// reads input.launch: v gets no view, and CommitConsuming gives the
// attestation the next sequence number, whatever the record holds by
// then (concurrent attestations of the launch never conflict). nil for
// evidence without a launch identity.
func (t *Tracker) Begin(v attest.Verified) *Pending {
	id, chip, ok := Identity(v)
	if !ok {
		return nil
	}
	tee := v.TEEName()
	return &Pending{tee: tee, launch: t.keyer.Launch(tee, id), chip: t.keyer.Chip(tee, chip), v: v}
}

// Refresh reads p's record again after ErrConflict and gives v (the same
// evidence) the new View.
func (t *Tracker) Refresh(ctx context.Context, p *Pending, v attest.Verified) error {
	if err := t.read(ctx, p); err != nil {
		return err
	}
	SetView(v, p.View())
	return nil
}

func (t *Tracker) read(ctx context.Context, p *Pending) error {
	r, found, err := t.o.Store.Get(ctx, p.launch)
	if err != nil {
		return err
	}
	t.saw(p, r, found)
	return nil
}

// saw sets p's record as read (or as a joint script found it), counting
// its anomaly once.
func (t *Tracker) saw(p *Pending, r Record, found bool) {
	p.prev, p.found = r, found
	if p.newChip() && !p.counted && t.o.Observer != nil {
		p.counted = true
		t.o.Observer.LaunchAnomaly(AnomalyNewChip)
	}
}

// Commit records p's attestation as affirmed and returns its sequence
// number; ErrConflict when the record changed since p was read.
func (t *Tracker) Commit(ctx context.Context, p *Pending) (uint64, error) {
	if err := t.o.Store.Commit(ctx, p.launch, p.tee, p.chip, p.prev.Seq, t.o.Now(), t.o.Retention); err != nil {
		return 0, err
	}
	return t.committed(p.prev.Seq + 1), nil
}

func (t *Tracker) committed(seq uint64) uint64 {
	if t.o.Observer != nil {
		t.o.Observer.LaunchCommitted(seq)
	}
	return seq
}

// Consumer consumes one attestation's nonce (challenge.Issuer, bound to
// the nonce).
type Consumer interface {
	// Joint reports whether Consume can do a joint write (the nonce's
	// store is Redis).
	Joint() bool
	// Consume consumes the nonce, with j's write in the same store step
	// when j is not nil (challenge.Issuer.ConsumeJoint).
	Consume(ctx context.Context, j *challenge.Joint) ([]any, error)
}

// jointStore is a Store whose commits can go with a nonce's consumption
// in one script (RedisStore).
type jointStore interface {
	joint(p *Pending, now time.Time, retention time.Duration) *challenge.Joint
}

// CommitConsuming consumes the attestation's nonce through c and commits
// p, in one store step (one Redis script) when both are in Redis; else
// the nonce first, once, then the record. The sequence number follows the
// record p read (Lookup): a compare-and-set, ErrConflict when it changed
// since, and p and its claims' view then hold the record as it is now (a
// Redis script read it in the same step, and consumed nothing); ask the
// policy again, then call CommitConsuming again. A p begun without a read
// (Begin) gets the next sequence number, with no conflict.
func (t *Tracker) CommitConsuming(ctx context.Context, p *Pending, c Consumer) (uint64, error) {
	if js, ok := t.o.Store.(jointStore); ok && c.Joint() && !p.consumed {
		reply, err := c.Consume(ctx, js.joint(p, t.o.Now(), t.o.Retention))
		if err != nil && !errors.Is(err, challenge.ErrJointRefused) {
			return 0, err
		}
		r, found, perr := parseJointReply(p, reply)
		if perr != nil {
			return 0, attest.Errorf(attest.ReasonInternalError, "launch record: %w", perr)
		}
		t.saw(p, r, found)
		if err != nil { // refused: the record changed since p read it
			SetView(p.v, p.View())
			return 0, ErrConflict
		}
		return t.committed(r.Seq + 1), nil
	}
	if !p.consumed {
		if _, err := c.Consume(ctx, nil); err != nil {
			return 0, err
		}
		p.consumed = true
	}
	for {
		if err := ctx.Err(); err != nil {
			return 0, attest.Errorf(attest.ReasonStoreUnavailable, "launch record: %w", err)
		}
		if !p.read {
			if err := t.read(ctx, p); err != nil {
				return 0, err
			}
		}
		seq, err := t.Commit(ctx, p)
		if !errors.Is(err, ErrConflict) {
			return seq, err
		}
		if p.read {
			if err := t.Refresh(ctx, p, p.v); err != nil {
				return 0, err
			}
			return 0, ErrConflict
		}
	}
}
