package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/httpapi"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/metrics"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/policyids"
	"github.com/trustgate/trustgate/internal/release"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/state"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/token"
	"github.com/trustgate/trustgate/internal/verifier"
)

// Version is reported as the token's ear.verifier-id build and logged at
// start (cli.BuildVersion: what scripts/image set, else the VCS revision).
var Version = cli.BuildVersion()

// App is a built verifier.
type App struct {
	cfg     config.Config
	log     *slog.Logger
	engine  *policy.Engine
	handler http.Handler
	tokens  *token.Issuer
	svc     *verifier.Service
	certs   *certs.Service
	tls     *tls.Config // nil: plain HTTP
	close   func()
	// The admin API (admin_listen) and the admin layer; nil when off.
	adminHandler http.Handler
	adminTLS     *tls.Config
	layer        *admin.Layer
	state        *state.Dir // nil when nothing needs one
	metrics      *metrics.Metrics
	launches     *launch.Tracker
	shared       *challenge.RedisStore // nil without Redis
	ids          *policyids.Set        // the appraisal-policy-ids in force
	storeUp      atomic.Bool           // the shared store's last probe answered
	storeProbed  atomic.Bool           // the shared store was probed once
	// stopping is set when Serve's context ends: /readyz then fails while
	// the server goes on serving for shutdown_delay.
	stopping atomic.Bool
	// reloadFailed counts a policy or reference-values reload that failed
	// (a signature refused included).
	reloadFailed func(error)
}

// Deps are what an App takes from its environment. The zero value logs to
// slog.Default() and uses the real clock.
type Deps struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Roots are the pinned AMD roots; nil means snp.AMDRoots(). Tests pin
	// a fake AMD chain here, so that a fake KDS can serve its VCEKs and
	// CRLs.
	Roots *snp.Roots
}

// New builds an App from cfg (which it validates).
func New(ctx context.Context, cfg config.Config, d Deps) (_ *App, err error) {
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The key files (nonce, token, TLS) are read and their modes checked
	// before anything else is said or opened.
	nonceKey, err := loadNonceKey(cfg.NonceKeyFile)
	if err != nil {
		return nil, fmt.Errorf("nonce_key_file: %w", err)
	}
	tokKey, generated, err := token.LoadOrGenerateKey(cfg.TokenKeyFile)
	if err != nil {
		return nil, fmt.Errorf("token_key_file: %w", err)
	}
	tlsCfg, err := serverTLS(cfg)
	if err != nil {
		return nil, err
	}
	launchKey, err := loadLaunchKey(cfg, log)
	if err != nil {
		return nil, err
	}
	if cfg.NonceKeyFile == "" {
		log.Warn("no nonce_key_file: generated a nonce key; outstanding challenges die with a restart and replicas cannot share them")
	}
	// What is opened is closed again, last first, if New fails later.
	var closers []func()
	cleanup := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	defer func() {
		if err != nil {
			cleanup()
		}
	}()
	// Every new Redis connection checks which server process answers
	// before anything is written on it (challenge.ConnectCheck).
	check := &challenge.ConnectCheck{}
	rdb, err := cfg.RedisClient(check.OnConnect)
	if err != nil {
		return nil, err
	}
	if rdb != nil {
		closers = append(closers, func() { rdb.Close() })
	}
	// Single-use records (nonces, token ids): in Redis when configured, so
	// that every replica refuses what one of them accepted.
	var used challenge.Store = challenge.NewMemoryStore(d.Now)
	var shared *challenge.RedisStore
	if rdb != nil {
		shared = challenge.NewRedisStore(rdb, challenge.RedisOptions{Timeout: cfg.StoreTimeout, Logger: log, Connect: check})
		if err := shared.Init(ctx, d.Now()); err != nil {
			log.Warn("redis: single-use marker not checked at start; the first write will (its guest gets 503 store_unavailable)", "error", err.Error())
		}
		used = shared
	}
	// Without a shared store, nonces and tokens name this process, and
	// only it accepts them: replicas sharing the keys cannot each accept
	// the same one once.
	var replica []byte
	if shared == nil {
		replica = challenge.NewReplicaID()
		if cfg.NonceKeyFile != "" || cfg.TokenKeyFile != "" {
			log.Info("nonce_key_file or token_key_file without redis: nonces and tokens are accepted only by the process that issued them (set redis to share them between replicas)")
		}
	}
	nonces, err := challenge.New(challenge.Options{Key: nonceKey, TTL: cfg.NonceTTL, Store: used, Now: d.Now, Replica: replica})
	if err != nil {
		return nil, err
	}

	if generated {
		log.Warn("no token_key_file: generated a token signing key; tokens die with a restart (see /.well-known/jwks.json)")
	} else if cfg.DevSimulator {
		log.Warn("dev_simulator: tokens are signed with a key derived from token_key_file, not with it: a production verifier given the same file never honours them")
	}
	tokens, err := token.New(token.Options{Key: tokKey, Build: Version, Lifetime: cfg.TokenLifetime, DevSimulator: cfg.DevSimulator, Now: d.Now, Replica: replica})
	if err != nil {
		return nil, err
	}

	roots := snp.AMDRoots()
	if d.Roots != nil {
		roots = d.Roots
	}
	if cfg.DevSimulator {
		roots = roots.WithARKKey(sim.ARKKey())
		log.Warn("dev_simulator: trusting the simulator's AMD root; every token is marked as such")
	}
	var engine *policy.Engine // set below, before anything is served
	var pol verifier.Policy   // engine, or the external policy engine
	m := metrics.New(func() string { return pol.ID() })
	certSvc, err := newCertService(cfg, roots, rdb, m, d.Now, log)
	if err != nil {
		return nil, err
	}
	closers = append(closers, func() { certSvc.Close() })
	m.KDSHeldBack(certSvc.HeldBack)
	snpOpts := snp.Options{Roots: roots, Now: d.Now, Keys: certSvc, Revocation: certSvc}

	trust, err := readTrustKey(cfg)
	if err != nil {
		return nil, err
	}
	var stateDir *state.Dir
	if trust != nil || cfg.AdminListen != "" || (rdb != nil && cfg.PolicyURL == "") {
		if stateDir, err = state.OpenDir(cfg.StateDir); err != nil {
			return nil, err
		}
	}
	admit := admitReference(trust, stateDir, rdb, cfg, log)
	policySrc, ref, err := readPolicyInputs(cfg, trust)
	if err != nil {
		return nil, err
	}
	if ref != nil && admit != nil {
		if err := policy.RollbackError(cfg.ReferenceValues, admit(ctx, ref)); err != nil {
			return nil, err
		}
	}
	engine, err = policy.New(ctx, policy.Options{Module: policySrc, ModuleName: cfg.Policy, Reference: ref, Now: d.Now,
		TrustKey: trust, AdmitReference: admit, AwaitOverlay: rdb != nil && cfg.PolicyURL == ""})
	if err != nil {
		return nil, policy.PolicyError(cfg.Policy, err) // names the file, quotes none of it
	}
	pol = engine
	if cfg.PolicyURL != "" {
		if pol, err = newRemotePolicy(cfg, log); err != nil {
			return nil, err
		}
	}
	// The appraisal-policy-ids in force, here and with Redis fleet-wide: a
	// release refuses a token whose policy id was not (policyids).
	var fleet *policyids.Fleet
	if shared != nil {
		fleet = policyids.NewFleet(rdb, shared.Prefix(), cfg.StoreTimeout)
	}
	ids := policyids.New(pol.ID, d.Now, fleet)
	pol = trackedPolicy{Policy: pol, ids: ids}
	layer, err := newAdminLayer(ctx, cfg, rdb, engine, trust, stateDir, m, log)
	if err != nil {
		return nil, err
	}

	// TDX: Intel's collateral comes from the PCS collateral service.
	tdxVerifier, err := newTDXVerifier(cfg, rdb, d.Now, log, &closers)
	if err != nil {
		return nil, err
	}
	nitroVerifier, err := newNitroVerifier(cfg, d.Now, log)
	if err != nil {
		return nil, err
	}
	launches, err := newLaunches(cfg, launchKey, rdb, m, d.Now)
	if err != nil {
		return nil, err
	}
	snpVerifier := snp.New(snpOpts)
	// Azure CVMs: the SEV-SNP and TDX verifiers above, then the vTPM.
	az := azure.New(azure.Options{SNP: snpVerifier, TDX: tdxVerifier})
	svc, err := verifier.New(verifier.Options{
		TEEs: map[string]verifier.TEE{attest.TEESEVSNP: snpVerifier, attest.TEETDX: tdxVerifier,
			attest.TEEAzureSNP: az.For(attest.TEEAzureSNP), attest.TEEAzureTDX: az.For(attest.TEEAzureTDX), attest.TEENitro: nitroVerifier},
		Policy: pol, Nonces: nonces, Tokens: tokens, Launches: launches, Now: d.Now,
	})
	if err != nil {
		return nil, err
	}
	var releaser httpapi.Releaser
	if cfg.Resources != "" {
		store, err := resources.Open(cfg.Resources)
		if err != nil {
			return nil, fmt.Errorf("resources: %w", err)
		}
		rel, err := release.New(release.Options{Tokens: tokens, Used: used, Resources: store, Replica: replica, Policies: ids})
		if err != nil {
			return nil, err
		}
		releaser = rel
	}
	if tlsCfg == nil && !cfg.DevSimulator {
		if host, _, _ := net.SplitHostPort(cfg.Listen); !config.IsLoopback(host) {
			log.Warn("serving plain HTTP on a non-loopback address: tokens and released secrets' JWEs travel unprotected; set tls_cert/tls_key or put TLS in front")
		}
	}
	a := &App{ids: ids, cfg: cfg, log: log, engine: engine, tokens: tokens, svc: svc, certs: certSvc, tls: tlsCfg, close: cleanup, layer: layer, metrics: m, launches: launches, shared: shared, state: stateDir}
	if shared != nil {
		a.probeStore(ctx)
	}
	a.reloadFailed = func(err error) {
		var fe *policy.FileError
		if errors.As(err, &fe) && fe.File == policy.ReferenceFile {
			kind := metrics.ReloadInvalid
			if fe.Kind == policy.KindRollback {
				kind = metrics.ReloadRollback
			}
			m.ReloadFailed(metrics.ReloadReferenceValues, kind)
			return
		}
		m.ReloadFailed(metrics.ReloadPolicy, metrics.ReloadInvalid)
	}
	if err := a.buildAdmin(cfg, tlsCfg, log, d.Now); err != nil {
		return nil, err
	}
	a.handler = httpapi.New(httpapi.Options{
		Attester: svc, Releaser: releaser, Challenger: nonces, JWKS: tokens.JWKS,
		Health:  health{e: engine, id: pol.ID, layer: layer, rdb: rdb, timeout: min(cfg.StoreTimeout, readyRedisTimeout), stopping: &a.stopping},
		Metrics: m.Handler(), Observer: m, Logger: log,
		DevSimulator: cfg.DevSimulator, RequireClientCert: cfg.ClientCA != "",
	})
	if cfg.DevSimulator {
		a.handler = loopbackHostOnly(a.handler)
	}
	return a, nil
}

// Close releases what New opened (the certificate service, Redis). Call it
// after Serve has returned.
func (a *App) Close() error {
	a.close()
	return nil
}

// Handler returns the API handler.
func (a *App) Handler() http.Handler { return a.handler }

// Service returns the attestation use case, for in-process callers.
func (a *App) Service() *verifier.Service { return a.svc }
