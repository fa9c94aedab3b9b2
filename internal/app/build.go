package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/secretfile"
	"github.com/trustgate/trustgate/internal/state"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// admitReference is the check of a signed reference-values file's
// version (nil without refvalues_trust_key: unsigned files carry no
// version worth trusting): not below the highest seen by this replica
// (state_dir) or, with Redis, by the fleet.
func admitReference(trust *ecdsa.PublicKey, dir *state.Dir, rdb redis.UniversalClient, cfg config.Config, log *slog.Logger) func(context.Context, *refvalues.Set) error {
	if trust == nil {
		return nil
	}
	v := state.NewVersions(state.VersionsOptions{Dir: dir, Redis: rdb, Timeout: cfg.StoreTimeout, Logger: log})
	return func(ctx context.Context, s *refvalues.Set) error {
		return v.Admit(ctx, "reference_values", state.Mark{Version: s.Version, Digest: s.Digest()})
	}
}

// newRemotePolicy is the external policy engine of policy_url: TLS
// verified against policy_ca when given; a plain http:// URL that is not
// loopback only with insecure_http (config refuses it otherwise), warned.
func newRemotePolicy(cfg config.Config, log *slog.Logger) (*policy.Remote, error) {
	o := policy.RemoteOptions{URL: cfg.PolicyURL, Timeout: cfg.PolicyTimeout, ReasonCodes: cfg.PolicyReasonCodeList()}
	if cfg.PolicyCA != "" {
		var err error
		if o.RootCAs, err = readCAPool("policy_ca", cfg.PolicyCA); err != nil {
			return nil, err
		}
	}
	if u, err := url.Parse(cfg.PolicyURL); err == nil && u.Scheme == "http" && !config.IsLoopback(u.Hostname()) {
		log.Warn("insecure_http: the external policy engine is asked over plain HTTP off loopback: whoever is on the path can answer allow and reads every claim")
	}
	return policy.NewRemote(o)
}

// readCAPool reads the PEM certificates of the config key's file.
func readCAPool(key, path string) (*x509.CertPool, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("%s %s: no PEM certificates", key, path)
	}
	return pool, nil
}

// serverTLS is the TLS configuration of cfg: nil without tls_cert; with
// client_ca, client certificates are verified against it when given (the
// API handler then refuses requests without one).
func serverTLS(cfg config.Config) (*tls.Config, error) {
	if cfg.TLSCert == "" {
		return nil, nil
	}
	certPEM, err := os.ReadFile(cfg.TLSCert)
	if err != nil {
		return nil, fmt.Errorf("tls_cert: %w", err)
	}
	// The TLS key is a key file like the others: owner-only.
	keyPEM, err := secretfile.Read(cfg.TLSKey, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("tls_key: %w", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	clear(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("tls_cert/tls_key: %w", err)
	}
	t := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCA != "" {
		if t.ClientCAs, err = readCAPool("client_ca", cfg.ClientCA); err != nil {
			return nil, err
		}
		t.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return t, nil
}

// newCertService builds the AMD certificate service of cfg: memory, disk
// (cert_cache_dir) and Redis tiers in front of the KDS, and revocation over
// AMD's CRLs. The simulator's chains are not AMD's and no CRL covers them;
// only with dev_simulator are they let past the revocation check.
func newCertService(cfg config.Config, roots *snp.Roots, rdb redis.UniversalClient, obs certs.Observer, now func() time.Time, log *slog.Logger) (*certs.Service, error) {
	c := certs.Config{
		Settings: tiered.Settings{
			Offline:      cfg.Offline,
			Dir:          cfg.CertCacheDir,
			Clock:        now,
			Logger:       log,
			RateInterval: certsDuration(cfg.KDSRate),
			MaxStaleness: certsDuration(cfg.CertMaxStaleness),
			FetchWait:    certsDuration(cfg.CertFetchWait),
		},
		KDSURL: cfg.KDSURL, Roots: roots, Observer: obs, CRLGrace: certsDuration(cfg.CRLGrace),
		SkipRevocationForUnpinned: cfg.DevSimulator,
	}
	if rdb != nil {
		c.Redis = rdb
	}
	svc, err := certs.New(c)
	if err != nil {
		return nil, fmt.Errorf("certificate service: %w", err)
	}
	return svc, nil
}

// certsDuration is a config duration as certs.Config takes it: the one
// place where the two zero conventions meet. In config.Config every key
// holds its value (Default fills the defaults), so 0 is what the operator
// set and means none; in certs.Config 0 means certs' default and a
// negative value none.
func certsDuration(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// readPolicyInputs reads the policy and reference-values files of cfg.
// Errors are *policy.FileError: which file, what kind of error, where,
// never a quote of the file.
func readPolicyInputs(cfg config.Config, trust *ecdsa.PublicKey) (string, *refvalues.Set, error) {
	var src string
	if cfg.Policy != "" {
		b, err := os.ReadFile(cfg.Policy)
		if err != nil {
			return "", nil, policy.PolicyError(cfg.Policy, err)
		}
		src = string(b)
	}
	var ref *refvalues.Set
	if cfg.ReferenceValues != "" {
		s, err := policy.LoadSignedReference(cfg.ReferenceValues, trust)
		if err != nil {
			return "", nil, err
		}
		ref = s
	}
	return src, ref, nil
}

// loadNonceKey reads a nonce key file (raw bytes, or hex text; owner-only,
// at most 64 KiB) or generates a key when path is "".
func loadNonceKey(path string) ([]byte, error) {
	if path == "" {
		return challenge.GenerateKey(), nil
	}
	b, err := secretfile.Read(path, 64<<10)
	if err != nil {
		return nil, err
	}
	if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
		b = k
	}
	if len(b) < challenge.MinKeySize {
		return nil, fmt.Errorf("%s: key is %d bytes, want at least %d", path, len(b), challenge.MinKeySize)
	}
	return b, nil
}
