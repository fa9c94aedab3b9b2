package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/release"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/secretfile"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/state"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
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
	o := policy.RemoteOptions{URL: cfg.PolicyURL, Timeout: cfg.PolicyTimeout}
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

// httpServer is the server of one listener with every timeout set.
func (a *App) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
}

// Serve serves on ln until ctx is done, watching policy files meanwhile,
// then shuts down in three steps: /readyz answers 503 "shutting down" at
// once, requests are served as before for shutdown_delay (so that load
// balancers and Kubernetes endpoints take the replica out first; keep-alive
// is switched off so that clients reconnect elsewhere), then the listener
// closes and requests in flight have shutdown_timeout to finish.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	srv := a.httpServer(a.handler)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if a.cfg.WarmChips != "" {
		go a.warm(watchCtx)
	}
	if a.cfg.Policy != "" || a.cfg.ReferenceValues != "" {
		go policy.Watch(watchCtx, a.engine, a.cfg.Policy, a.cfg.ReferenceValues, a.cfg.ReloadInterval, a.log, a.reloadFailed)
	}
	if a.layer != nil && a.cfg.Redis != "" {
		go a.layer.Follow(watchCtx, min(a.cfg.ReloadInterval, adminPollInterval))
	}
	if a.shared != nil {
		go a.followStore(watchCtx)
	}
	if a.tls != nil {
		srv.TLSConfig = a.tls
		ln = tls.NewListener(ln, a.tls)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving", "addr", ln.Addr().String(), "tls", a.tls != nil, "client_certificates_required", a.cfg.ClientCA != "",
		"appraisal_policy_id", a.engine.ID(), "policy_reason_codes", a.engine.ReasonCodes())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.stopping.Store(true)
	srv.SetKeepAlivesEnabled(false)
	if d := a.cfg.ShutdownDelay; d > 0 {
		a.log.Info("shutting down: /readyz fails; serving on for shutdown_delay", "shutdown_delay", d.String())
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case err := <-errc:
			t.Stop()
			return err
		}
	}
	a.log.Info("shutting down: listener closed; draining", "shutdown_timeout", a.cfg.ShutdownTimeout.String())
	shutCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	a.log.Info("stopped")
	return err
}

// warm fetches the VCEKs of warm_chips, and their products' CRLs, into the
// certificate cache, logging what could not be had (chip ids are not
// logged).
func (a *App) warm(ctx context.Context) {
	reqs, err := certs.ReadChipListFile(a.cfg.WarmChips)
	if err != nil {
		a.log.Error("warm_chips: not read; nothing warmed", "error", err.Error())
		return
	}
	start := time.Now()
	err = a.certs.Warm(ctx, reqs)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		a.log.Warn("warm_chips: some certificates could not be had", "chips", len(reqs), "error", err.Error())
		return
	}
	a.log.Info("warm_chips: certificate cache warmed", "chips", len(reqs), "took", time.Since(start).Round(time.Millisecond).String())
}

// trackedPolicy is the policy whose id, each time it is read, is recorded
// as in force (policyids.Set.ID).
type trackedPolicy struct {
	verifier.Policy
	ids *policyids.Set
}

func (p trackedPolicy) ID() string { return p.ids.ID() }

// IgnoresLaunch passes on the policy's verifier.LaunchBlind answer (a
// policy that is not one is taken to read input.launch), so that the
// wrapper keeps a blind policy's attestation to one store step.
func (p trackedPolicy) IgnoresLaunch() bool {
	lb, ok := p.Policy.(verifier.LaunchBlind)
	return ok && lb.IgnoresLaunch()
}

// readyRedisTimeout caps /readyz's Redis check, so that a probe with a
// 1 s timeout (Kubernetes' default) gets the answer, not a timeout.
const readyRedisTimeout = 900 * time.Millisecond

type health struct {
	e        *policy.Engine
	id       func() string         // the appraisal-policy-id in force
	layer    *admin.Layer          // nil without one
	rdb      redis.UniversalClient // nil without Redis
	timeout  time.Duration         // bounds the Redis check: store_timeout, at most readyRedisTimeout
	stopping *atomic.Bool          // set once shutdown began
}

var errShuttingDown = errors.New("shutting down")

func (h health) PolicyID() string { return h.id() }

// Ready fails once shutdown began, while Redis (when configured) does not
// answer, or while the admin layer has not been read yet: attestations
// would then be refused. A refused update of the policy, the reference
// values or the admin layer does not fail it: the last good set is in
// force, and Ready returns *httpapi.Degraded (200, status "degraded",
// the reason), so that one broken ConfigMap does not take every replica
// out of service at once; trustgate_config_reload_failures_total counts
// it for alerts.
func (h health) Ready() error {
	if h.stopping.Load() {
		return errShuttingDown
	}
	if h.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		defer cancel()
		if err := h.rdb.Ping(ctx).Err(); err != nil {
			return errors.New("redis does not answer; single-use records cannot be kept")
		}
	}
	if h.e.Awaiting() {
		return errors.New("the admin reference values have not been read from redis yet")
	}
	if err := errors.Join(h.e.LastError(), h.layerError()); err != nil {
		return &httpapi.Degraded{Err: err}
	}
	return nil
}

func (h health) layerError() error {
	if h.layer == nil {
		return nil
	}
	return h.layer.LastError()
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
