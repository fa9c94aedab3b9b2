package app

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/policy"
)

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
