package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/app"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/token"
)

// cmdDemo runs the whole flow in one process, printing each step; --tee
// tdx runs it with the TDX simulator, --tee nitro with the Nitro one.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate demo", stdout, stderr, func(w io.Writer) {
		fmt.Fprint(w, "usage: trustgate demo [--tee sev-snp|tdx|azure-snp|azure-tdx|nitro]\n\nRuns the whole attestation flow in one process with a simulated guest, printing each step;\nexit 0 when every step held.\n\n")
		fs.PrintDefaults()
	})
	tee := fs.String("tee", v1.TEESEVSNP, "the simulated guest's TEE: sev-snp, tdx, azure-snp, azure-tdx or nitro")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() != 0 || !slices.Contains([]string{v1.TEESEVSNP, v1.TEETDX, v1.TEEAzureSNP, v1.TEEAzureTDX, v1.TEENitro}, *tee) {
		fmt.Fprintln(stderr, "usage: trustgate demo [--tee sev-snp|tdx|azure-snp|azure-tdx|nitro]")
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := demo(ctx, stdout, *tee); err != nil {
		fmt.Fprintf(stdout, "\nDEMO FAILED: %v\n", err)
		return exitRejected
	}
	fmt.Fprintln(stdout, "\nAll steps held: a genuine, approved, fresh guest got its token and its secret, encrypted to its own key;")
	fmt.Fprintln(stdout, "the token used again, a replayed request and an unapproved build were refused.")
	return exitOK
}

// demoRun is the state the demo's steps share.
type demoRun struct {
	w      io.Writer
	tee    string // v1.TEESEVSNP, v1.TEETDX, v1.TEEAzureSNP, v1.TEEAzureTDX or v1.TEENitro
	c      *client.Client
	secret []byte // the stored db-password
	key    *agent.EphemeralKey
	req    v1.AttestRequest // the guest's affirmed request
	token  string
	jwks   jose.JSONWebKeySet
}

func (d *demoRun) step(n int, format string, a ...any) {
	fmt.Fprintf(d.w, "\n[%d] "+format+"\n", append([]any{n}, a...)...)
}

func (d *demoRun) say(format string, a ...any) { fmt.Fprintf(d.w, "    "+format+"\n", a...) }

func demo(ctx context.Context, w io.Writer, tee string) error {
	d := &demoRun{w: w, tee: tee}
	stop, err := d.startVerifier(ctx)
	if err != nil {
		return err
	}
	defer stop()
	for _, step := range []func(context.Context) error{d.attest, d.checkToken, d.release, d.refusals} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// demoDir makes the demo's working directory under the temporary directory
// or, where there is none (the container image is FROM scratch: no /tmp),
// under the user cache directory, which the image provides as a writable
// volume even with a read-only root.
func demoDir() (string, error) {
	dir, err := os.MkdirTemp("", "trustgate-demo-")
	if err == nil {
		return dir, nil
	}
	cache, cerr := os.UserCacheDir()
	if cerr != nil {
		return "", fmt.Errorf("no working directory: %w (and no cache directory: %v)", err, cerr)
	}
	base := filepath.Join(cache, "trustgate")
	if merr := os.MkdirAll(base, 0o700); merr != nil {
		return "", fmt.Errorf("no working directory: %w (nor %v)", err, merr)
	}
	return os.MkdirTemp(base, "demo-")
}

// startVerifier is step 1: a verifier with the simulator's root trusted,
// one approved build and its secret, serving on loopback in this process.
// stop shuts it down and removes its files.
func (d *demoRun) startVerifier(ctx context.Context) (stop func(), err error) {
	dir, err := demoDir()
	if err != nil {
		return nil, err
	}
	cleanups := []func(){func() { os.RemoveAll(dir) }}
	stop = func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}
	defer func() {
		if err != nil {
			stop()
		}
	}()
	approved := sim.DefaultMeasurement
	refPath := filepath.Join(dir, "reference-values.yaml")
	ref := fmt.Sprintf("measurements:\n  - value: %q\n    label: demo-build-1\n    resources: [db-password]\nallowed_vmpl: [0]\n", hex.EncodeToString(approved[:]))
	if azureTEE(d.tee) {
		pcrs := sim.DefaultPCRs()
		ref = fmt.Sprintf("measurements:\n  - tee: %s\n    value: \"\"\n    label: demo-az-1\n    pcrs: {pcr04: %q, pcr07: %q}\n    resources: [db-password]\n",
			d.tee, hex.EncodeToString(pcrs[4][:]), hex.EncodeToString(pcrs[7][:]))
	}
	if d.tee == v1.TEETDX {
		ref = fmt.Sprintf("measurements:\n  - tee: tdx\n    value: %q\n    label: demo-td-1\n    resources: [db-password]\ntdx_tcb_status: [UpToDate]\n", hex.EncodeToString(approved[:]))
	}
	if d.tee == v1.TEENitro {
		ref = fmt.Sprintf("measurements:\n  - tee: nitro\n    value: %q\n    label: demo-enclave-1\n    resources: [db-password]\n    pcrs:\n      pcr1: %q\n",
			hex.EncodeToString(approved[:]), hex.EncodeToString(sim.NitroPCRs(approved)[1]))
	}
	resDir := filepath.Join(dir, "resources")
	d.secret = []byte("demo-db-password-" + hex.EncodeToString(approved[:4]))
	if err := os.Mkdir(resDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(resDir, "db-password"), d.secret, 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(refPath, []byte(ref), 0o600); err != nil {
		return nil, err
	}
	cfg := config.Default()
	cfg.Listen, cfg.DevSimulator, cfg.Offline, cfg.ReferenceValues = "127.0.0.1:0", true, true, refPath
	cfg.CertCacheDir, cfg.Resources = filepath.Join(dir, "certs"), resDir
	cfg.ShutdownDelay = 0 // nothing balances load onto this verifier
	a, err := app.New(ctx, cfg, app.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil, err
	}
	cleanups = append(cleanups, func() { a.Close() })
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, err
	}
	srvCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(srvCtx, ln) }()
	cleanups = append(cleanups, func() { cancel(); <-done })
	base := "http://" + ln.Addr().String()
	d.c = &client.Client{BaseURL: base}
	d.step(1, "Verifier listening on %s (in this process).", base)
	if azureTEE(d.tee) {
		d.say("It trusts AMD's and Intel's pinned roots and, because this is a demo (--dev-simulator), the simulators' roots.")
		d.say("Approved Azure VM: tee %s whose vTPM PCR4 (boot loader) and PCR7 (Secure Boot) are pinned, labelled demo-az-1,", d.tee)
		d.say("granted the resource db-password from its secret store.")
		return stop, nil
	}
	if d.tee == v1.TEETDX {
		d.say("It trusts the pinned Intel SGX Root CA and, because this is a demo (--dev-simulator), the TDX simulator's")
		d.say("Intel-like root, whose platform's collateral (TCB info, QE identity, CRLs) the simulator signs itself.")
		d.say("Approved TD: MRTD %s… labelled demo-td-1 (default policy: approved MRTD of tee tdx, not debuggable,", hex.EncodeToString(approved[:6]))
		d.say("TCB status UpToDate), granted the resource db-password from its secret store.")
		return stop, nil
	}
	if d.tee == v1.TEENitro {
		d.say("It trusts the pinned AWS Nitro Enclaves Root-G1 and, because this is a demo (--dev-simulator), the Nitro")
		d.say("simulator's AWS-like root. Approved enclave: PCR0 %s… with PCR1 pinned, labelled demo-enclave-1", hex.EncodeToString(approved[:6]))
		d.say("(default policy: approved PCR0 of tee nitro, every pcrs pin held, not in debug mode), granted db-password.")
		return stop, nil
	}
	d.say("It trusts AMD's pinned roots and, because this is a demo (--dev-simulator), the simulator's AMD root key.")
	d.say("Approved build: measurement %s… labelled demo-build-1 (default policy: approved measurement, no DEBUG, VMPL 0),", hex.EncodeToString(approved[:6]))
	d.say("granted the resource db-password from its secret store (--resources, one owner-only file per resource).")
	return stop, nil
}

// attest is steps 2 to 5: challenge, ephemeral key and REPORT_DATA,
// report, attestation.
func (d *demoRun) attest(ctx context.Context) error {
	ch, err := d.c.Challenge(ctx)
	if err != nil {
		return err
	}
	d.step(2, "Guest asks POST /v1/challenge for a nonce.")
	d.say("nonce: 64 bytes, %s…, expires %s. The verifier kept no state: the nonce carries its own MAC and expiry.",
		hex.EncodeToString(ch.Nonce[:8]), ch.ExpiresAt.Format(time.RFC3339))

	if d.key, err = agent.NewEphemeralKey(); err != nil {
		return err
	}
	rd := d.key.ReportData(attest.Nonce(ch.Nonce))
	d.step(3, "Guest makes an ephemeral P-256 key and binds it with the nonce into REPORT_DATA.")
	d.say("REPORT_DATA = SHA-512(nonce || JWK thumbprint) = %s…", hex.EncodeToString(rd[:8]))

	ev, err := d.evidence(nil, rd)
	if err != nil {
		return err
	}
	if azureTEE(d.tee) {
		d.step(4, "The guest writes REPORT_DATA to the vTPM; the (simulated) Azure paravisor makes an HCL report whose %s", d.tee)
		d.say("hardware report binds SHA-256 of its runtime data (the vTPM attestation key HCLAkPub and this user-data); the vTPM")
		d.say("quotes PCRs 0–23 with that key and REPORT_DATA cut to 48 bytes as extraData. Evidence: %d bytes of JSON.", len(ev.Azure))
	} else if d.tee == v1.TEENitro {
		d.step(4, "The (simulated) Nitro Security Module signs a %d-byte attestation document (COSE_Sign1, ES384).", len(ev.Document))
		d.say("PCR0 as approved, nonce = REPORT_DATA; the document carries its certificate and the CA bundle up to the root.")
	} else if d.tee == v1.TEETDX {
		d.step(4, "The (simulated) TDX module and Quoting Enclave sign a %d-byte version 4 quote of the TD.", len(ev.Quote))
		d.say("MRTD %s…, REPORTDATA as above; the QE's report is signed by the PCK key, whose certificate chain it carries.", hex.EncodeToString(ev.Quote[48+0x88:48+0x8e]))
	} else {
		d.step(4, "The (simulated) AMD Secure Processor signs a %d-byte attestation report with its VCEK.", len(ev.Report))
		d.say("measurement %s…, with a certificate table carrying VCEK, ASK and ARK.", hex.EncodeToString(ev.Report[0x90:0x96]))
	}

	d.req = v1.AttestRequest{Nonce: ch.Nonce, TEE: d.tee, Evidence: ev, TEEPubKey: d.key.JWK}
	resp, err := d.c.Attest(ctx, d.req)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	d.token = resp.Token
	if azureTEE(d.tee) {
		d.step(5, "Guest sends POST /v1/attest with tee %q. The verifier checks the hardware report (chain, signature),", d.tee)
		d.say("that it binds the runtime data, the TPM quote's signature by HCLAkPub, the PCRs against the quote, that extraData")
		d.say("and user-data bind its nonce and this key, then the policy (pinned PCRs); only then it consumes the nonce.")
	} else if d.tee == v1.TEENitro {
		d.step(5, "Guest sends POST /v1/attest with tee \"nitro\". The verifier checks the chain to the root, the document's")
		d.say("signature, its fields, that the nonce is REPORT_DATA binding its nonce and this key, then the policy;")
		d.say("only then it consumes the nonce.")
	} else if d.tee == v1.TEETDX {
		d.step(5, "Guest sends POST /v1/attest with tee \"tdx\". The verifier checks the PCK chain to the root, the QE report and")
		d.say("the quote signatures, the collateral and TCB level (UpToDate), that REPORT_DATA binds its nonce and this key,")
		d.say("then the policy; only then it consumes the nonce.")
	} else {
		d.step(5, "Guest sends POST /v1/attest. The verifier checks the chain to the root, the signature, the report,")
		d.say("that REPORT_DATA binds its nonce and this key, then the policy; only then it consumes the nonce.")
	}
	d.say("→ %s, token %s…", resp.Status, resp.Token[:24])
	return nil
}

// checkToken is step 6: a relying party checks the token.
func (d *demoRun) checkToken(ctx context.Context) error {
	var err error
	if d.jwks, err = d.c.JWKS(ctx); err != nil {
		return err
	}
	ear, err := token.Verify(d.token, d.jwks, "trustgate", time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	sm := ear.Submods[d.tee]
	if sm.TEEPubKey == nil || !sm.TEEPubKey.Key.(*ecdsa.PublicKey).Equal(d.key.Private.Public()) {
		return errors.New("token does not carry the guest's key")
	}
	d.step(6, "A relying party checks the token (EAR JWT, ES256) against GET /.well-known/jwks.json.")
	d.say("ear.status=%s, label=%s, policy=%s…, bound key present, expires %s; no measurement or chip id inside.",
		sm.Status, sm.Label, sm.PolicyID[:min(len(sm.PolicyID), 20)], ear.Expiry.Time().Format(time.RFC3339))
	return nil
}

// release is step 7: the guest gets its secret.
func (d *demoRun) release(ctx context.Context) error {
	jwe, err := d.c.Release(ctx, d.token, []string{"db-password"})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	got, err := client.OpenRelease(jwe, client.ReleaseCheck{Key: d.key.Private, Token: d.token, Resources: []string{"db-password"}, VerifierKeys: d.jwks})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if !bytes.Equal(got["db-password"], d.secret) {
		return errors.New("release: the decrypted resource is not the stored one")
	}
	d.step(7, "Guest sends POST /v1/release with the token as bearer, asking for db-password.")
	d.say("→ a compact JWE (ECDH-ES to the guest's ephemeral key, A256GCM), %d bytes; only that key opens it.", len(jwe))
	d.say("Inside, a JWS signed with the token key and bound to this token and key: the guest checks it against the JWKS,")
	d.say("so nobody on the path can hand it values of his own. db-password, %d bytes, equal to the verifier's file.", len(got["db-password"]))
	d.say("The verifier kept only the token's id.")
	return nil
}

// refusals is steps 8 to 10: the token again, a replayed request and an
// unapproved build are refused.
func (d *demoRun) refusals(ctx context.Context) error {
	d.step(8, "Someone who copied the token tries to release with it again.")
	_, err := d.c.Release(ctx, d.token, []string{"db-password"})
	if err := d.refused(v1.AttestResponse{}, err, attest.ReasonTokenReplayed, "second release", " (a token releases once)"); err != nil {
		return err
	}

	d.step(9, "An attacker replays the very same attest request.")
	resp, err := d.c.Attest(ctx, d.req)
	if err := d.refused(resp, err, attest.ReasonNonceReplayed, "replay", ""); err != nil {
		return err
	}

	other := [48]byte(bytes.Repeat([]byte{0x11}, 48))
	ch, err := d.c.Challenge(ctx)
	if err != nil {
		return err
	}
	ev, err := d.evidence(&other, d.key.ReportData(attest.Nonce(ch.Nonce)))
	if err != nil {
		return err
	}
	if azureTEE(d.tee) {
		d.step(10, "An Azure VM that booted another kernel (PCR4 differs) attests with a fresh nonce.")
	} else {
		d.step(10, "A guest running an unapproved build (measurement 1111…) attests with a fresh nonce.")
	}
	resp, err = d.c.Attest(ctx, v1.AttestRequest{Nonce: ch.Nonce, TEE: d.tee, Evidence: ev, TEEPubKey: d.key.JWK})
	return d.refused(resp, err, attest.ReasonMeasurementMismatch, "unapproved build", "")
}

// evidence is the simulated guest's evidence binding rd: an SEV-SNP report
// and certificate table, a TDX quote, or a Nitro attestation document; measurement nil means the
// simulator's default (the approved build).
func (d *demoRun) evidence(measurement *[48]byte, rd [64]byte) (v1.Evidence, error) {
	if d.tee == v1.TEENitro {
		dev, err := sim.NewNitro(sim.NitroOptions{PCR0: measurement})
		if err != nil {
			return v1.Evidence{}, err
		}
		doc, err := dev.Document(rd)
		return v1.Evidence{Document: doc}, err
	}
	if azureTEE(d.tee) {
		return azureDemoEvidence(d.tee, measurement != nil, rd)
	}
	if d.tee == v1.TEETDX {
		dev, err := sim.NewTDX(sim.TDXOptions{MRTD: measurement})
		if err != nil {
			return v1.Evidence{}, err
		}
		return v1.Evidence{Quote: dev.Quote(rd)}, nil
	}
	dev, err := sim.New(sim.Options{Measurement: measurement})
	if err != nil {
		return v1.Evidence{}, err
	}
	report, table := dev.Report(rd)
	return v1.Evidence{Report: report, CertTable: table}, nil
}

// refused checks that a request was refused for want, and says so.
func (d *demoRun) refused(resp v1.AttestResponse, err error, want attest.Reason, what, why string) error {
	reason, err := rejection(resp, err)
	if err != nil {
		return err
	}
	if reason != string(want) {
		return fmt.Errorf("%s: got %q, want %s", what, reason, want)
	}
	d.say("→ REJECTED: %s%s", reason, why)
	return nil
}

// rejection returns the reason of a request that must be refused.
func rejection(_ v1.AttestResponse, err error) (string, error) {
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		if err == nil {
			return "", errors.New("the verifier accepted what it must refuse")
		}
		return "", err
	}
	return apiErr.Reason, nil
}

func azureTEE(tee string) bool { return tee == v1.TEEAzureSNP || tee == v1.TEEAzureTDX }

// azureDemoEvidence is a simulated Azure VM's evidence binding rd; other
// boots it with another PCR4.
func azureDemoEvidence(tee string, other bool, rd [64]byte) (v1.Evidence, error) {
	pcrs := sim.DefaultPCRs()
	if other {
		pcrs[4][0] ^= 0xff
	}
	dev, err := simAzure(tee, nil, &pcrs)
	if err != nil {
		return v1.Evidence{}, err
	}
	ev, err := dev.Evidence(rd)
	if err != nil {
		return v1.Evidence{}, err
	}
	wire, err := azure.EncodeEvidence(ev)
	return v1.Evidence{Azure: wire}, err
}
