package verifier

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/token"
)

// seqTokens records the appraisals it signs.
type seqTokens struct{ got []token.Appraisal }

func (f *seqTokens) Issue(a token.Appraisal) (string, string, time.Time, error) {
	f.got = append(f.got, a)
	return "tok", "jti", time.Now(), nil
}

// viewPolicy records input.launch and refuses a launch on a new chip when
// noClones is set (what a custom policy does with input.launch).
type viewPolicy struct {
	noClones bool
	seen     []attest.Launch
}

func (p *viewPolicy) Evaluate(_ context.Context, v attest.Verified) (attest.Decision, error) {
	c := v.(*attest.Claims)
	if c.Launch != nil {
		p.seen = append(p.seen, *c.Launch)
		if p.noClones && c.Launch.NewChip {
			return attest.Decision{Reasons: []string{"policy_clone"}}, nil
		}
	}
	return attest.Decision{Allow: true, Label: "b"}, nil
}
func (*viewPolicy) ID() string { return "sha256:test" }

// racingStore commits another attestation of the same launch (from chip
// other) just before the first Commit it is asked for.
type racingStore struct {
	launch.Store
	raced bool
	other launch.Pseudonym
}

func (r *racingStore) Commit(ctx context.Context, l launch.Pseudonym, tee string, chip launch.Pseudonym, prev uint64, now time.Time, ret time.Duration) error {
	if !r.raced {
		r.raced = true
		if err := r.Store.Commit(ctx, l, tee, r.other, prev, now, ret); err != nil {
			return err
		}
	}
	return r.Store.Commit(ctx, l, tee, chip, prev, now, ret)
}

// failingStore does not answer.
type failingStore struct {
	launch.Store
	failGet bool
}

func (f failingStore) Get(ctx context.Context, l launch.Pseudonym) (launch.Record, bool, error) {
	if f.failGet {
		return launch.Record{}, false, attest.Errorf(attest.ReasonStoreUnavailable, "down")
	}
	return f.Store.Get(ctx, l)
}

func (f failingStore) Commit(context.Context, launch.Pseudonym, string, launch.Pseudonym, uint64, time.Time, time.Duration) error {
	return attest.Errorf(attest.ReasonStoreUnavailable, "down")
}

func launchClaims(chip byte) *attest.Claims {
	n := attest.Nonce{1, 2, 3}
	return &attest.Claims{TEE: attest.TEESEVSNP, ReportData: n[:], ReportID: bytes.Repeat([]byte{0x42}, 32), ChipID: bytes.Repeat([]byte{chip}, 64)}
}

func launchService(t *testing.T, st launch.Store, pol Policy, nonces *fakeNonces, toks *seqTokens, chip byte) *Service {
	t.Helper()
	tr, err := launch.New(launch.Options{Key: bytes.Repeat([]byte{1}, 32), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{SNP: fakeSNP{claims: launchClaims(chip)}, Policy: pol, Nonces: nonces, Tokens: toks, Launches: tr})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Each affirmed attestation of a launch gets the next sequence number in
// its token, and the policy sees it (input.launch) before the token is
// issued; refused attestations (policy, replayed nonce) do not advance it.
func TestLaunchSequenceInToken(t *testing.T) {
	t.Parallel()
	st := launch.NewMemoryStore(0, nil)
	in := AttestInput{Nonce: attest.Nonce{1, 2, 3}, TEE: attest.TEESEVSNP}
	toks, pol := &seqTokens{}, &viewPolicy{noClones: true}
	s := launchService(t, st, pol, &fakeNonces{}, toks, 0xa)
	for range 2 {
		if _, err := s.Attest(context.Background(), in); err != nil {
			t.Fatal(err)
		}
	}
	// A replayed nonce: verified, looked up, refused at consumption.
	replay := launchService(t, st, pol, &fakeNonces{consumeErr: attest.Errorf(attest.ReasonNonceReplayed, "used")}, toks, 0xa)
	if _, err := replay.Attest(context.Background(), in); attest.ReasonOf(err) != attest.ReasonNonceReplayed {
		t.Fatalf("replay: %v", err)
	}
	// A clone on another chip, refused by the policy.
	clone := launchService(t, st, pol, &fakeNonces{}, toks, 0xb)
	if _, err := clone.Attest(context.Background(), in); attest.ReasonOf(err) != "policy_clone" {
		t.Fatalf("clone: %v", err)
	}
	if _, err := s.Attest(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, a := range toks.got {
		seqs = append(seqs, a.LaunchSeq)
	}
	if len(seqs) != 3 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
		t.Fatalf("token sequence numbers %v, want [1 2 3]", seqs)
	}
	want := []attest.Launch{{Seq: 1}, {Seq: 2}, {Seq: 3}, {Seq: 3, NewChip: true}, {Seq: 3}}
	if len(pol.seen) != len(want) {
		t.Fatalf("policy saw %+v", pol.seen)
	}
	for i, w := range want {
		if got := pol.seen[i]; got.Seq != w.Seq || got.NewChip != w.NewChip || (got.Seq > 1) != (got.FirstSeen != "") {
			t.Fatalf("policy view %d: %+v, want %+v", i, got, w)
		}
	}
}

// When another attestation of the same launch commits between lookup and
// commit, the policy is asked again with the new record: a clone that
// raced its original is refused, not numbered.
func TestLaunchCommitRace(t *testing.T) {
	t.Parallel()
	in := AttestInput{Nonce: attest.Nonce{1, 2, 3}, TEE: attest.TEESEVSNP}
	k, _ := launch.NewKeyer(bytes.Repeat([]byte{1}, 32))

	// Same chip: renumbered.
	toks, pol := &seqTokens{}, &viewPolicy{noClones: true}
	s := launchService(t, &racingStore{Store: launch.NewMemoryStore(0, nil), other: k.Chip(attest.TEESEVSNP, bytes.Repeat([]byte{0xa}, 64))}, pol, &fakeNonces{}, toks, 0xa)
	if _, err := s.Attest(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if len(toks.got) != 1 || toks.got[0].LaunchSeq != 2 || len(pol.seen) != 2 || pol.seen[1].Seq != 2 {
		t.Fatalf("tokens %+v, policy saw %+v", toks.got, pol.seen)
	}

	// The racer was another chip: the second evaluation refuses.
	toks, pol = &seqTokens{}, &viewPolicy{noClones: true}
	s = launchService(t, &racingStore{Store: launch.NewMemoryStore(0, nil), other: k.Chip(attest.TEESEVSNP, bytes.Repeat([]byte{0xc}, 64))}, pol, &fakeNonces{}, toks, 0xa)
	if _, err := s.Attest(context.Background(), in); attest.ReasonOf(err) != "policy_clone" {
		t.Fatalf("raced clone: %v, want policy_clone", err)
	}
	if len(toks.got) != 0 {
		t.Fatal("a token was issued")
	}
}

// A launch store that does not answer is 503 store_unavailable, never a
// token without a sequence number; on lookup the nonce stays unused.
func TestLaunchStoreUnavailable(t *testing.T) {
	t.Parallel()
	in := AttestInput{Nonce: attest.Nonce{1, 2, 3}, TEE: attest.TEESEVSNP}
	for _, failGet := range []bool{true, false} {
		nonces, toks := &fakeNonces{}, &seqTokens{}
		s := launchService(t, failingStore{Store: launch.NewMemoryStore(0, nil), failGet: failGet}, &viewPolicy{}, nonces, toks, 0xa)
		_, err := s.Attest(context.Background(), in)
		var ae *attest.Error
		if !errors.As(err, &ae) || ae.Reason != attest.ReasonStoreUnavailable {
			t.Fatalf("failGet %v: %v, want store_unavailable", failGet, err)
		}
		if len(toks.got) != 0 || (failGet && nonces.consumed != 0) {
			t.Fatalf("failGet %v: issued %d, consumed %d", failGet, len(toks.got), nonces.consumed)
		}
	}
}

// TDX launches are numbered by the RTMR-free TD identity: quotes of one
// MRTD (and zero MRCONFIGID, MROWNER, MROWNERCONFIG) are one launch
// whatever their RTMRs; another MRTD is another launch. The fake PCK has
// no PPID: no chip, so never an anomaly.
func TestLaunchTDX(t *testing.T) {
	t.Parallel()
	chain, err := testkit.NewTDXChain(testkit.TDXChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tdxV := tdx.New(tdx.Options{Roots: chain.Roots, NoCollateral: true})
	tr, _ := launch.New(launch.Options{Key: bytes.Repeat([]byte{1}, 32), Store: launch.NewMemoryStore(0, nil)})
	pol := &tdxViewPolicy{}
	toks := &seqTokens{}
	s, err := New(Options{TEEs: map[string]TEE{"tdx": tdxV}, Policy: pol, Nonces: &fakeNonces{}, Tokens: toks, Launches: tr})
	if err != nil {
		t.Fatal(err)
	}
	n := attest.Nonce{7}
	m1, m2 := [48]byte{0x5a}, [48]byte{0x5b}
	for _, f := range []testkit.TDXQuoteFields{
		{MRTD: &m1}, {MRTD: &m1, RTMR: [4][48]byte{{1}}}, {MRTD: &m2}, {MRTD: &m1, RTMR: [4][48]byte{{2}, {3}}},
	} {
		f.ReportData = n
		if _, err := s.Attest(context.Background(), AttestInput{Nonce: n, TEE: "tdx", Quote: chain.Quote(f)}); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	for _, a := range toks.got {
		seqs = append(seqs, a.LaunchSeq)
	}
	if len(seqs) != 4 || seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 1 || seqs[3] != 3 {
		t.Fatalf("TDX sequence numbers %v, want [1 2 1 3]", seqs)
	}
	if pol.newChip {
		t.Fatal("a TD without PPID was taken for a clone")
	}
}

type tdxViewPolicy struct{ newChip bool }

func (p *tdxViewPolicy) Evaluate(_ context.Context, v attest.Verified) (attest.Decision, error) {
	c := v.(*attest.TDXClaims)
	if c.Launch == nil {
		return attest.Decision{}, nil
	}
	p.newChip = p.newChip || c.Launch.NewChip
	return attest.Decision{Allow: true}, nil
}
func (*tdxViewPolicy) ID() string { return "sha256:test" }
