package launch_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/testkit"
)

var key = bytes.Repeat([]byte{7}, 32)

func snp(reportID, chipID byte) *attest.Claims {
	c := &attest.Claims{TEE: attest.TEESEVSNP, ReportID: bytes.Repeat([]byte{reportID}, 32)}
	c.ChipID = bytes.Repeat([]byte{chipID}, 64)
	return c
}

type counter struct {
	mu        sync.Mutex
	anomalies int
	seqs      []uint64
}

func (c *counter) LaunchAnomaly(kind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind == launch.AnomalyNewChip {
		c.anomalies++
	}
}

func (c *counter) LaunchCommitted(seq uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seqs = append(c.seqs, seq)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// stores returns the stores every behaviour is checked on: in memory and
// in a real Redis.
func stores(t *testing.T) map[string]func(*clock) launch.Store {
	rdb := testkit.StartRedis(t)
	return map[string]func(*clock) launch.Store{
		"memory": func(clk *clock) launch.Store { return launch.NewMemoryStore(0, clk.Now) },
		"redis":  func(*clock) launch.Store { return launch.NewRedisStore(rdb, launch.RedisOptions{}) },
	}
}

func attestOnce(t *testing.T, tr *launch.Tracker, c *attest.Claims) (*attest.Launch, uint64) {
	t.Helper()
	p, err := tr.Lookup(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	view := c.Launch
	seq, err := tr.Commit(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	return view, seq
}

// Sequence numbers count the affirmed attestations of each launch; the
// view the policy sees says what the next one will be; a launch on
// another chip is flagged and counted.
func TestSequenceAndNewChip(t *testing.T) {
	t.Parallel()
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
			st := mk(clk)
			obs := &counter{}
			tr, err := launch.New(launch.Options{Key: key, Store: st, Observer: obs, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			v, seq := attestOnce(t, tr, snp(1, 0xa))
			if seq != 1 || v.Seq != 1 || v.FirstSeen != "" || v.NewChip {
				t.Fatalf("first: seq %d view %+v", seq, v)
			}
			clk.Add(time.Minute)
			v, seq = attestOnce(t, tr, snp(1, 0xa))
			if seq != 2 || v.Seq != 2 || v.FirstSeen != "2026-12-01T09:00:00Z" || v.NewChip {
				t.Fatalf("second: seq %d view %+v", seq, v)
			}
			// Another launch starts at 1.
			if _, seq = attestOnce(t, tr, snp(2, 0xa)); seq != 1 {
				t.Fatalf("other launch: seq %d", seq)
			}
			// The same launch from another chip: flagged, counted, numbered on.
			v, seq = attestOnce(t, tr, snp(1, 0xb))
			if seq != 3 || !v.NewChip {
				t.Fatalf("clone: seq %d view %+v", seq, v)
			}
			if obs.anomalies != 1 {
				t.Fatalf("anomalies %d, want 1", obs.anomalies)
			}
			// A masked chip id (zeros) is no chip: never an anomaly.
			if v, _ = attestOnce(t, tr, snp(1, 0)); v.NewChip {
				t.Fatal("a masked chip id was taken for a new chip")
			}
			recs, err := st.List(context.Background(), 100)
			if err != nil || len(recs) != 2 {
				t.Fatalf("list: %v %d records", err, len(recs))
			}
			for _, r := range recs {
				if r.Seq == 4 && !r.Anomaly || r.Seq == 1 && r.Anomaly {
					t.Fatalf("record %+v", r)
				}
			}
		})
	}
}

// A refused attestation (looked up, never committed) does not advance the
// sequence; a commit on a stale lookup is a conflict.
func TestConflictAndNoCommit(t *testing.T) {
	t.Parallel()
	for name, mk := range stores(t) {
		t.Run(name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
			st := mk(clk)
			tr, _ := launch.New(launch.Options{Key: key, Store: st, Now: clk.Now})
			ctx := context.Background()
			c := snp(3, 1)
			if _, err := tr.Lookup(ctx, c); err != nil { // refused: never committed
				t.Fatal(err)
			}
			a, _ := tr.Lookup(ctx, snp(3, 1))
			b, _ := tr.Lookup(ctx, snp(3, 1))
			if seq, err := tr.Commit(ctx, a); err != nil || seq != 1 {
				t.Fatalf("a: %d %v", seq, err)
			}
			if _, err := tr.Commit(ctx, b); !errors.Is(err, launch.ErrConflict) {
				t.Fatalf("b: %v, want ErrConflict", err)
			}
			cb := snp(3, 1)
			if err := tr.Refresh(ctx, b, cb); err != nil || cb.Launch.Seq != 2 {
				t.Fatalf("refresh: %v %+v", err, cb.Launch)
			}
			if seq, err := tr.Commit(ctx, b); err != nil || seq != 2 {
				t.Fatalf("b again: %d %v", seq, err)
			}
		})
	}
}

// A record is dropped retention after the launch's last attestation.
func TestRetention(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	tr, _ := launch.New(launch.Options{Key: key, Store: launch.NewMemoryStore(0, clk.Now), Retention: time.Hour, Now: clk.Now})
	attestOnce(t, tr, snp(4, 1))
	clk.Add(50 * time.Minute)
	if _, seq := attestOnce(t, tr, snp(4, 1)); seq != 2 {
		t.Fatalf("within retention: seq %d", seq)
	}
	clk.Add(61 * time.Minute)
	if v, seq := attestOnce(t, tr, snp(4, 1)); seq != 1 || v.FirstSeen != "" {
		t.Fatalf("after retention: seq %d %+v", seq, v)
	}

	// Redis: the record's key expires (retention 1 ms here).
	rdb := testkit.StartRedis(t)
	rt, _ := launch.New(launch.Options{Key: key, Store: launch.NewRedisStore(rdb, launch.RedisOptions{}), Retention: time.Millisecond})
	attestOnce(t, rt, snp(4, 1))
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := rdb.DBSize(context.Background()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the record did not expire")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A memory store holds at most its max records, dropping the least
// recently seen.
func TestMemoryBound(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	st := launch.NewMemoryStore(2, clk.Now)
	tr, _ := launch.New(launch.Options{Key: key, Store: st, Now: clk.Now})
	for i := byte(1); i <= 3; i++ {
		attestOnce(t, tr, snp(i, 1))
		clk.Add(time.Second)
	}
	recs, _ := st.List(context.Background(), 10)
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	if _, seq := attestOnce(t, tr, snp(1, 1)); seq != 1 {
		t.Fatalf("the oldest record was kept (seq %d)", seq)
	}
}

// A store that does not answer is store_unavailable, for reads and
// commits.
func TestRedisUnavailable(t *testing.T) {
	t.Parallel()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer rdb.Close()
	tr, _ := launch.New(launch.Options{Key: key, Store: launch.NewRedisStore(rdb, launch.RedisOptions{Timeout: 200 * time.Millisecond})})
	_, err := tr.Lookup(context.Background(), snp(1, 1))
	var ae *attest.Error
	if !errors.As(err, &ae) || ae.Reason != attest.ReasonStoreUnavailable {
		t.Fatalf("lookup: %v, want store_unavailable", err)
	}
	err = launch.NewRedisStore(rdb, launch.RedisOptions{Timeout: 200 * time.Millisecond}).Commit(context.Background(), launch.Pseudonym{1}, "sev-snp", launch.Pseudonym{}, 0, time.Now(), time.Hour)
	if !errors.As(err, &ae) || ae.Reason != attest.ReasonStoreUnavailable {
		t.Fatalf("commit: %v, want store_unavailable", err)
	}
}

// Pseudonyms depend on the key, the TEE and the kind of identity; a chip
// without identity has none; TDX launches are their RTMR-free identity.
func TestPseudonyms(t *testing.T) {
	t.Parallel()
	k1, _ := launch.NewKeyer(key)
	k2, _ := launch.NewKeyer(bytes.Repeat([]byte{8}, 32))
	id := bytes.Repeat([]byte{1}, 32)
	if k1.Launch("sev-snp", id) == k2.Launch("sev-snp", id) {
		t.Fatal("pseudonym does not depend on the key")
	}
	if k1.Launch("sev-snp", id) == k1.Chip("sev-snp", id) || k1.Launch("sev-snp", id) == k1.Launch("tdx", id) {
		t.Fatal("pseudonyms of different kinds or TEEs collide")
	}
	if !k1.Chip("sev-snp", nil).IsZero() {
		t.Fatal("no chip identity must give no pseudonym")
	}
	if _, err := launch.NewKeyer(key[:31]); err == nil {
		t.Fatal("a short key was accepted")
	}
	td := &attest.TDXClaims{TEE: attest.TEETDX, MRTD: bytes.Repeat([]byte{1}, 48), MRConfigID: make([]byte, 48), MROwner: make([]byte, 48), MROwnerConfig: make([]byte, 48),
		RTMR0: bytes.Repeat([]byte{9}, 48)}
	l1, chip, ok := launch.Identity(td)
	td2 := *td
	td2.RTMR0 = bytes.Repeat([]byte{8}, 48) // run-time registers do not change the launch
	l2, _, _ := launch.Identity(&td2)
	td2.MRConfigID = bytes.Repeat([]byte{2}, 48) // a per-launch MRCONFIGID does
	l3, _, _ := launch.Identity(&td2)
	if !ok || chip != nil || !bytes.Equal(l1, l2) || bytes.Equal(l1, l3) {
		t.Fatalf("TDX identity: ok %v chip %x same-after-rtmr %v differs-by-config %v", ok, chip, bytes.Equal(l1, l2), !bytes.Equal(l1, l3))
	}
	td.PlatformID = bytes.Repeat([]byte{3}, 16)
	if _, chip, _ := launch.Identity(td); !bytes.Equal(chip, td.PlatformID) {
		t.Fatal("TDX chip is not the PPID")
	}
}

// A launch key file is created owner-only when absent, read back the
// same, and refused when open to others or too short.
func TestKeyFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := dir + "/launch.key"
	k1, src, err := launch.LoadOrCreateKey(p)
	if err != nil || src != launch.KeyCreated || len(k1) != launch.KeySize {
		t.Fatalf("create: %v %v %d", err, src, len(k1))
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	k2, src, err := launch.LoadOrCreateKey(p)
	if err != nil || src != launch.KeyRead || !bytes.Equal(k1, k2) {
		t.Fatalf("read back: %v %v", err, src)
	}
	os.Chmod(p, 0o644)
	if _, _, err := launch.LoadOrCreateKey(p); err == nil {
		t.Fatal("a key file open to others was accepted")
	}
	short := dir + "/short.key"
	os.WriteFile(short, []byte("abcd"), 0o600)
	if _, err := launch.ReadKey(short); err == nil {
		t.Fatal("a short key was accepted")
	}
	if _, src, _ := launch.LoadOrCreateKey(""); src != launch.KeyEphemeral {
		t.Fatal("no path must give an ephemeral key")
	}
}

// With a replica connected to the primary, a commit counts only once the
// replica has it: a stalled replica makes it store_unavailable within the
// timeout, as for single-use records; over a cluster the record's primary
// is written and waited on; listing scans every primary.
func TestRedisCommitWaitsForAReplica(t *testing.T) {
	t.Parallel()
	primary, replica := testkit.StartRedisReplicated(t)
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	// A generous timeout while the replica is in sync (a busy machine),
	// a short one to give up on the stalled replica.
	st := launch.NewRedisStore(rdb, launch.RedisOptions{Timeout: 10 * time.Second})
	tr, _ := launch.New(launch.Options{Key: key, Store: st})
	if _, seq := attestOnce(t, tr, snp(5, 1)); seq != 1 {
		t.Fatalf("seq %d", seq)
	}
	if n, _ := replica.Client.DBSize(context.Background()).Result(); n != 1 {
		t.Fatal("a commit was answered before the replica had it")
	}
	short, _ := launch.New(launch.Options{Key: key, Store: launch.NewRedisStore(rdb, launch.RedisOptions{Timeout: 500 * time.Millisecond})})
	p, err := tr.Lookup(context.Background(), snp(5, 1))
	if err != nil {
		t.Fatal(err)
	}
	replica.Stop()
	_, err = short.Commit(context.Background(), p)
	replica.Cont()
	var ae *attest.Error
	if !errors.As(err, &ae) || ae.Reason != attest.ReasonStoreUnavailable {
		t.Fatalf("with the replica stalled: %v, want store_unavailable", err)
	}

	cp, _, _ := testkit.StartRedisCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{cp.Addr}, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	cs := launch.NewRedisStore(cc, launch.RedisOptions{Timeout: 10 * time.Second})
	ct, _ := launch.New(launch.Options{Key: key, Store: cs})
	attestOnce(t, ct, snp(6, 1))
	if _, seq := attestOnce(t, ct, snp(6, 1)); seq != 2 {
		t.Fatalf("cluster: seq %d", seq)
	}
	if recs, err := cs.List(context.Background(), 10); err != nil || len(recs) != 1 || recs[0].Seq != 2 {
		t.Fatalf("cluster list: %v %+v", err, recs)
	}
}

// nonceUse is a launch.Consumer of one nonce of iss.
type nonceUse struct {
	iss *challenge.Issuer
	n   attest.Nonce
}

func (u nonceUse) Joint() bool { return u.iss.Joint() }
func (u nonceUse) Consume(ctx context.Context, j *challenge.Joint) ([]any, error) {
	return u.iss.ConsumeJoint(ctx, u.n, j)
}

// SPEC "The store's cost": with Redis an attestation's nonce and its
// launch commit are one script. A commit on a record read before (a
// policy that reads input.launch) that lost a race records nothing, not
// even the nonce, and hands back the record as it is now (the claims' view
// too), so that the same nonce then commits; a commit begun without a
// read (Begin) takes the next number and never conflicts; a launch from
// another chip is counted once; a used nonce is nonce_replayed and
// advances nothing.
func TestCommitConsumingOneScript(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	ctx := context.Background()
	rs := challenge.NewRedisStore(rdb, challenge.RedisOptions{})
	if err := rs.Init(ctx, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	iss, err := challenge.New(challenge.Options{Key: bytes.Repeat([]byte{9}, 32), Store: rs})
	if err != nil {
		t.Fatal(err)
	}
	obs := &counter{}
	tr, _ := launch.New(launch.Options{Key: key, Store: launch.NewRedisStore(rdb, launch.RedisOptions{}), Observer: obs})
	ca, cb := snp(9, 1), snp(9, 1)
	a, _ := tr.Lookup(ctx, ca)
	b, _ := tr.Lookup(ctx, cb)
	na, _ := iss.Issue()
	nb, _ := iss.Issue()
	if seq, err := tr.CommitConsuming(ctx, a, nonceUse{iss, na}); seq != 1 || err != nil {
		t.Fatalf("a: %d %v", seq, err)
	}
	if _, err := tr.CommitConsuming(ctx, b, nonceUse{iss, nb}); !errors.Is(err, launch.ErrConflict) {
		t.Fatalf("b after a: %v, want ErrConflict", err)
	}
	if cb.Launch == nil || cb.Launch.Seq != 2 || cb.Launch.FirstSeen == "" {
		t.Fatalf("b's view after the conflict: %+v, want seq 2 and a first_seen", cb.Launch)
	}
	// A fresh lookup (no memory of b's first try): on a path that consumed
	// the nonce before the commit, this would be nonce_replayed.
	b2, _ := tr.Lookup(ctx, snp(9, 1))
	if seq, err := tr.CommitConsuming(ctx, b2, nonceUse{iss, nb}); seq != 2 || err != nil {
		t.Fatalf("b again with the same nonce: %d %v (the refused script must not have consumed it)", seq, err)
	}
	// Begun without a read, from another chip: the next number, counted.
	c := tr.Begin(snp(9, 2))
	if seq, err := tr.CommitConsuming(ctx, c, nonceUse{iss, mustIssue(iss)}); seq != 3 || err != nil {
		t.Fatalf("begun: %d %v", seq, err)
	}
	// A replayed nonce: refused, nothing advanced.
	if _, err := tr.CommitConsuming(ctx, tr.Begin(snp(9, 1)), nonceUse{iss, na}); attest.ReasonOf(err) != attest.ReasonNonceReplayed {
		t.Fatalf("replayed nonce: %v", err)
	}
	r, _, _ := tr.Store().Get(ctx, a.Launch())
	if r.Seq != 3 || !r.Anomaly || obs.anomalies != 1 || len(obs.seqs) != 3 {
		t.Fatalf("record %+v, anomalies %d, seqs %v", r, obs.anomalies, obs.seqs)
	}
}

func mustIssue(iss *challenge.Issuer) attest.Nonce {
	n, _ := iss.Issue()
	return n
}
