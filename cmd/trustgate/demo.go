package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/app"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/token"
)

// cmdDemo runs the whole flow in one process, printing each step.
func cmdDemo(args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: trustgate demo")
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := demo(ctx, stdout); err != nil {
		fmt.Fprintf(stdout, "\nDEMO FAILED: %v\n", err)
		return exitRejected
	}
	fmt.Fprintln(stdout, "\nAll steps held: a genuine, approved, fresh guest got its token and its secret, encrypted to its own key;")
	fmt.Fprintln(stdout, "the token used again, a replayed request and an unapproved build were refused.")
	return exitOK
}

func demo(ctx context.Context, w io.Writer) error {
	step := func(n int, format string, a ...any) { fmt.Fprintf(w, "\n[%d] "+format+"\n", append([]any{n}, a...)...) }
	say := func(format string, a ...any) { fmt.Fprintf(w, "    "+format+"\n", a...) }

	// 1. The verifier.
	dir, err := os.MkdirTemp("", "trustgate-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	approved := sim.DefaultMeasurement
	refPath := filepath.Join(dir, "reference-values.yaml")
	ref := fmt.Sprintf("measurements:\n  - value: %q\n    label: demo-build-1\n    resources: [db-password]\nallowed_vmpl: [0]\n", hex.EncodeToString(approved[:]))
	resDir := filepath.Join(dir, "resources")
	secret := []byte("demo-db-password-" + hex.EncodeToString(approved[:4]))
	if err := os.Mkdir(resDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(resDir, "db-password"), secret, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(refPath, []byte(ref), 0o600); err != nil {
		return err
	}
	cfg := config.Default()
	cfg.Listen, cfg.DevSimulator, cfg.Offline, cfg.ReferenceValues = "127.0.0.1:0", true, true, refPath
	cfg.CertCacheDir, cfg.Resources = filepath.Join(dir, "certs"), resDir
	cfg.ShutdownDelay = 0 // nothing balances load onto this verifier
	a, err := app.New(ctx, cfg, app.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return err
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Serve(srvCtx, ln) }()
	defer func() { stop(); <-done }()
	base := "http://" + ln.Addr().String()
	c := &client.Client{BaseURL: base}
	step(1, "Verifier listening on %s (in this process).", base)
	say("It trusts AMD's pinned roots and, because this is a demo (--dev-simulator), the simulator's AMD root key.")
	say("Approved build: measurement %s… labelled demo-build-1 (default policy: approved measurement, no DEBUG, VMPL 0),", hex.EncodeToString(approved[:6]))
	say("granted the resource db-password from its secret store (--resources, one owner-only file per resource).")

	// 2. Challenge.
	ch, err := c.Challenge(ctx)
	if err != nil {
		return err
	}
	step(2, "Guest asks POST /v1/challenge for a nonce.")
	say("nonce: 64 bytes, %s…, expires %s. The verifier kept no state: the nonce carries its own MAC and expiry.",
		hex.EncodeToString(ch.Nonce[:8]), ch.ExpiresAt.Format(time.RFC3339))

	// 3. Ephemeral key and REPORT_DATA.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	jwk := jose.JSONWebKey{Key: key.Public()}
	tp, _ := jwk.Thumbprint(crypto.SHA256)
	rd := attest.BindReportData(attest.Nonce(ch.Nonce), tp)
	step(3, "Guest makes an ephemeral P-256 key and binds it with the nonce into REPORT_DATA.")
	say("REPORT_DATA = SHA-512(nonce || JWK thumbprint) = %s…", hex.EncodeToString(rd[:8]))

	// 4. Report.
	dev, err := sim.New(sim.Options{})
	if err != nil {
		return err
	}
	report, table := dev.Report(rd)
	step(4, "The (simulated) AMD Secure Processor signs a %d-byte attestation report with its VCEK.", len(report))
	say("measurement %s…, with a certificate table carrying VCEK, ASK and ARK.", hex.EncodeToString(report[0x90:0x96]))

	// 5. Attest.
	pub, _ := json.Marshal(jwk)
	req := v1.AttestRequest{Nonce: ch.Nonce, TEE: v1.TEESEVSNP, Evidence: v1.SNPEvidence{Report: report, CertTable: table}, TEEPubKey: pub}
	resp, err := c.Attest(ctx, req)
	if err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	step(5, "Guest sends POST /v1/attest. The verifier checks the chain to the root, the signature, the report,")
	say("that REPORT_DATA binds its nonce and this key, then the policy; only then it consumes the nonce.")
	say("→ %s, token %s…", resp.Status, resp.Token[:24])

	// 6. Token.
	jwks, err := c.JWKS(ctx)
	if err != nil {
		return err
	}
	ear, err := token.Verify(resp.Token, jwks, "trustgate", time.Now())
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	sm := ear.Submods[v1.TEESEVSNP]
	if sm.TEEPubKey == nil || !sm.TEEPubKey.Key.(*ecdsa.PublicKey).Equal(key.Public()) {
		return errors.New("token does not carry the guest's key")
	}
	step(6, "A relying party checks the token (EAR JWT, ES256) against GET /.well-known/jwks.json.")
	say("ear.status=%s, label=%s, policy=%s…, bound key present, expires %s; no measurement or chip id inside.",
		sm.Status, sm.Label, sm.PolicyID[:min(len(sm.PolicyID), 20)], ear.Expiry.Time().Format(time.RFC3339))

	// 7. Release.
	jwe, err := c.Release(ctx, resp.Token, []string{"db-password"})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	got, err := client.OpenRelease(jwe, client.ReleaseCheck{Key: key, Token: resp.Token, Resources: []string{"db-password"}, VerifierKeys: jwks})
	if err != nil {
		return fmt.Errorf("release: %w", err)
	}
	if !bytes.Equal(got["db-password"], secret) {
		return errors.New("release: the decrypted resource is not the stored one")
	}
	step(7, "Guest sends POST /v1/release with the token as bearer, asking for db-password.")
	say("→ a compact JWE (ECDH-ES to the guest's ephemeral key, A256GCM), %d bytes; only that key opens it.", len(jwe))
	say("Inside, a JWS signed with the token key and bound to this token and key: the guest checks it against the JWKS,")
	say("so nobody on the path can hand it values of his own. db-password, %d bytes, equal to the verifier's file.", len(got["db-password"]))
	say("The verifier kept only the token's id.")

	// 8. The token again.
	step(8, "Someone who copied the token tries to release with it again.")
	_, err = c.Release(ctx, resp.Token, []string{"db-password"})
	reason, err := rejection(v1.AttestResponse{}, err)
	if err != nil {
		return err
	}
	if reason != string(attest.ReasonTokenReplayed) {
		return fmt.Errorf("second release: got %q, want token_replayed", reason)
	}
	say("→ REJECTED: %s (a token releases once)", reason)

	// 9. Replay.
	step(9, "An attacker replays the very same attest request.")
	reason, err = rejection(c.Attest(ctx, req))
	if err != nil {
		return err
	}
	if reason != string(attest.ReasonNonceReplayed) {
		return fmt.Errorf("replay: got %q, want nonce_replayed", reason)
	}
	say("→ REJECTED: %s", reason)

	// 10. Unapproved build.
	other := [48]byte(bytes.Repeat([]byte{0x11}, 48))
	rogue, err := sim.New(sim.Options{Measurement: &other})
	if err != nil {
		return err
	}
	ch2, err := c.Challenge(ctx)
	if err != nil {
		return err
	}
	rd2 := attest.BindReportData(attest.Nonce(ch2.Nonce), tp)
	r2, t2 := rogue.Report(rd2)
	step(10, "A guest running an unapproved build (measurement 1111…) attests with a fresh nonce.")
	reason, err = rejection(c.Attest(ctx, v1.AttestRequest{Nonce: ch2.Nonce, TEE: v1.TEESEVSNP,
		Evidence: v1.SNPEvidence{Report: r2, CertTable: t2}, TEEPubKey: pub}))
	if err != nil {
		return err
	}
	if reason != string(attest.ReasonMeasurementMismatch) {
		return fmt.Errorf("unapproved build: got %q, want measurement_mismatch", reason)
	}
	say("→ REJECTED: %s", reason)
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
