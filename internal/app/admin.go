package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/metrics"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/secretfile"
	"github.com/trustgate/trustgate/internal/state"
)

// adminPollInterval is the longest time between two reads of the admin
// layer's version in Redis (reload_interval when shorter): a change made
// at one replica is in force at the others within it and a round trip.
const adminPollInterval = time.Second

// readTrustKey reads refvalues_trust_key (nil without one).
func readTrustKey(cfg config.Config) (*ecdsa.PublicKey, error) {
	if cfg.RefvaluesTrustKey == "" {
		return nil, nil
	}
	k, err := refvalues.ReadTrustKey(cfg.RefvaluesTrustKey)
	if err != nil {
		return nil, fmt.Errorf("refvalues_trust_key: %w", err)
	}
	return k, nil
}

// newAdminLayer builds the admin layer over engine's reference values: in
// Redis when there is one (followed by every replica, admin listener or
// not), in memory when only this replica has an admin API, none
// otherwise. With Redis it is read once now; if Redis does not answer,
// the engine appraises nothing until Follow has read it.
//
// The layer records the fleet's trust key requirement: a replica whose
// refvalues_trust_key is not the one recorded (none where one is, or
// another) does not start. The newest layer held is kept in the state
// directory: a store found holding an older one gets it written back.
func newAdminLayer(ctx context.Context, cfg config.Config, rdb redis.UniversalClient, engine *policy.Engine, trust *ecdsa.PublicKey, dir *state.Dir, m *metrics.Metrics, log *slog.Logger) (*admin.Layer, error) {
	if cfg.PolicyURL != "" {
		return nil, nil
	}
	var store admin.Store
	switch {
	case rdb != nil:
		store = admin.NewRedisStore(rdb, cfg.StoreTimeout)
	case cfg.AdminListen != "":
		store = &admin.MemoryStore{}
		log.Warn("admin_listen without redis: admin changes to the reference values are this replica's alone: other replicas never see them, and only its state_dir keeps them across its restarts (set redis to share them)", "state_dir", dir.Path())
	default:
		return nil, nil
	}
	o := admin.LayerOptions{Store: store, Engine: engine, TrustKey: trust, Logger: log,
		OnError:       func(error) { m.ReloadFailed(metrics.ReloadAdminLayer, metrics.ReloadInvalid) },
		OnRollback:    func(error) { m.ReloadFailed(metrics.ReloadAdminLayer, metrics.ReloadRollback) },
		OnUnconfirmed: func(error) { m.ReloadFailed(metrics.ReloadAdminLayer, metrics.ReloadUnconfirmed) },
	}
	if dir != nil {
		o.Memory = dir
	}
	l, err := admin.NewLayer(o)
	if err != nil {
		return nil, err
	}
	err = l.CheckTrust(ctx)
	var te *admin.TrustError
	if errors.As(err, &te) {
		return nil, err
	}
	if err == nil {
		err = l.Sync(ctx)
	}
	if err != nil {
		log.Warn("admin layer: not read from redis at start; nothing is appraised until it is (retrying)", "error", err.Error())
	}
	return l, nil
}

// buildAdmin builds the admin API of cfg (nothing without admin_listen):
// bearer token from admin_token_file, client certificates under
// admin_client_ca, TLS with the API's certificate when it has one.
func (a *App) buildAdmin(cfg config.Config, apiTLS *tls.Config, log *slog.Logger, now func() time.Time) error {
	if cfg.AdminListen == "" {
		return nil
	}
	o := admin.Options{Layer: a.layer, Logger: log, Now: now}
	if a.state != nil {
		o.Memory = a.state
	}
	if a.launches != nil {
		o.Launches = a.launches.Store()
	}
	if cfg.AdminTokenFile != "" {
		b, err := secretfile.Read(cfg.AdminTokenFile, 4096)
		if err != nil {
			return fmt.Errorf("admin_token_file: %w", err)
		}
		toks, err := admin.ParseTokens(b)
		clear(b)
		if err != nil {
			return fmt.Errorf("admin_token_file: %w", err)
		}
		o.Tokens = toks
	}
	if apiTLS != nil {
		a.adminTLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: apiTLS.Certificates}
	}
	if cfg.AdminClientCA != "" {
		pool, err := readCAPool("admin_client_ca", cfg.AdminClientCA)
		if err != nil {
			return err
		}
		a.adminTLS.ClientCAs = pool
		a.adminTLS.ClientAuth = tls.VerifyClientCertIfGiven
		o.ClientCerts = true
	}
	if host, _, _ := net.SplitHostPort(cfg.AdminListen); a.adminTLS == nil && !config.IsLoopback(host) {
		log.Warn("admin API on plain HTTP on a non-loopback address: the bearer token travels unprotected; set tls_cert/tls_key")
	}
	a.adminHandler = admin.NewHandler(o)
	return nil
}

// AdminHandler returns the admin API's handler, nil without admin_listen.
func (a *App) AdminHandler() http.Handler { return a.adminHandler }

// ServeAdmin serves the admin API on ln (with TLS when the API has it)
// until ctx is done, then shuts it down within shutdown_timeout. Without
// admin_listen it is an error.
func (a *App) ServeAdmin(ctx context.Context, ln net.Listener) error {
	if a.adminHandler == nil {
		return errors.New("no admin API configured (admin_listen)")
	}
	srv := a.httpServer(a.adminHandler)
	if a.adminTLS != nil {
		srv.TLSConfig = a.adminTLS
		ln = tls.NewListener(ln, a.adminTLS)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.log.Info("serving the admin API", "addr", ln.Addr().String(), "tls", a.adminTLS != nil,
		"bearer_token", a.cfg.AdminTokenFile != "", "client_certificates", a.cfg.AdminClientCA != "", "shared", a.cfg.Redis != "")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if e := <-errc; !errors.Is(e, http.ErrServerClosed) && err == nil {
		err = e
	}
	return err
}
