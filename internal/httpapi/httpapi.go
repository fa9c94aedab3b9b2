package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/strictjson"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/verifier"
)

// Attester runs attestations (verifier.Service).
type Attester interface {
	Attest(ctx context.Context, in verifier.AttestInput) (string, error)
	VerifyPlain(ctx context.Context, body []byte) error
}

// Releaser releases resources for a token (release.Service).
type Releaser interface {
	Release(ctx context.Context, token string, names []string) (jwe string, err error)
}

// Challenger issues nonces (challenge.Issuer).
type Challenger interface {
	Issue() (attest.Nonce, time.Time)
}

// Health reports the state /healthz and /readyz show.
type Health interface {
	// PolicyID is the active appraisal-policy-id.
	PolicyID() string
	// Ready returns nil when the verifier can serve, or why it cannot
	// (e.g. the last policy reload failed).
	Ready() error
}

// Observer is told the outcome of every request to the API's attempt
// endpoints, refusals before the domain included (400, 413, 401): it is
// the one place where attempts are counted. reason is "" on success.
type Observer interface {
	// Attested is one POST /v1/attest or /verify. tee is what the client
	// named ("" if its body was not read; the plain flow is "sev-snp"):
	// the Observer maps it to a closed set. took runs from the request's
	// arrival to its answer.
	Attested(tee string, reason attest.Reason, took time.Duration)
	// Released is one POST /v1/release.
	Released(reason attest.Reason)
	// Challenged is one POST /v1/challenge: a nonce issued, or refused.
	Challenged(reason attest.Reason)
}

// Options wires a Handler. Attester, Challenger, JWKS and Health are
// required; Releaser nil answers /v1/release with 403 resource_forbidden
// (no resource store); Logger nil means slog.Default(); Metrics nil serves
// no /metrics; Observer nil counts nothing.
type Options struct {
	Attester     Attester
	Releaser     Releaser
	Challenger   Challenger
	JWKS         func() jose.JSONWebKeySet
	Health       Health
	Metrics      http.Handler
	Observer     Observer
	Logger       *slog.Logger
	DevSimulator bool
	// RequireClientCert refuses /v1/* and /verify with 401
	// unauthorized_client unless the TLS connection carries a verified
	// client certificate (the server's tls.Config checks it against the
	// client CA). Health, readiness, JWKS and metrics stay open.
	RequireClientCert bool
}

// New returns the API's handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &handler{o: o}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+v1.PathChallenge, h.counted(opChallenge, h.agentsOnly(h.challenge)))
	mux.HandleFunc("POST "+v1.PathAttest, h.counted(opAttest, h.agentsOnly(h.attest)))
	mux.HandleFunc("POST "+v1.PathRelease, h.counted(opRelease, h.agentsOnly(h.release)))
	mux.HandleFunc("POST "+v1.PathVerify, h.counted(opVerify, h.agentsOnly(h.verifyPlain)))
	mux.HandleFunc("GET "+v1.PathJWKS, h.jwks)
	mux.HandleFunc("GET "+v1.PathHealthz, h.healthz)
	mux.HandleFunc("GET "+v1.PathReadyz, h.readyz)
	if o.Metrics != nil {
		mux.Handle("GET "+v1.PathMetrics, o.Metrics)
	}
	return recoverer(o.Logger, withClient(mux))
}

type handler struct{ o Options }

// agentsOnly applies RequireClientCert.
func (h *handler) agentsOnly(next http.HandlerFunc) http.HandlerFunc {
	if !h.o.RequireClientCert {
		return next
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
			writeError(w, attest.Errorf(attest.ReasonUnauthorizedClient, "no verified client certificate"))
			return
		}
		next(w, r)
	}
}

func (h *handler) challenge(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	// No body, or the empty object the client sends; nothing else.
	if len(bytes.TrimSpace(body)) > 0 {
		if err := strictJSON(body, &struct{}{}); err != nil {
			writeError(w, err)
			return
		}
	}
	n, exp := h.o.Challenger.Issue()
	writeJSON(w, http.StatusOK, v1.ChallengeResponse{Nonce: n[:], ExpiresAt: exp.UTC()})
}

func (h *handler) attest(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	var req v1.AttestRequest
	in, err := decodeAttest(body, &req)
	noteTEE(w, req.TEE)
	if err == nil {
		var tok string
		tok, err = h.o.Attester.Attest(r.Context(), in)
		if err == nil {
			writeJSON(w, http.StatusOK, v1.AttestResponse{Status: "affirming", Token: tok})
			return
		}
	}
	writeError(w, err)
}

func decodeAttest(body []byte, req *v1.AttestRequest) (verifier.AttestInput, error) {
	if !fastAttest(body, req) {
		*req = v1.AttestRequest{}
		if in, ok, err := decodeAzureAttest(body, req); ok {
			return in, err
		}
		if err := strictJSON(body, req); err != nil {
			return verifier.AttestInput{}, err
		}
	}
	in := verifier.AttestInput{TEE: req.TEE, Report: req.Evidence.Report, CertTable: req.Evidence.CertTable, Quote: req.Evidence.Quote, Document: req.Evidence.Document}
	if len(req.Nonce) != attest.NonceSize {
		return in, attest.Errorf(attest.ReasonMalformedEvidence, "nonce is %d bytes, want %d", len(req.Nonce), attest.NonceSize)
	}
	in.Nonce = attest.Nonce(req.Nonce)
	key, err := verifier.ParseTEEPubKey(req.TEEPubKey)
	in.TEEPubKey = key
	return in, err
}

// decodeAzureAttest decodes a POST /v1/attest body whose tee is azure-snp
// or azure-tdx (ok false for any other body): its evidence is read by
// internal/tee/azure in the layouts Trustee's attesters write. req gets
// the tee.
func decodeAzureAttest(body []byte, req *v1.AttestRequest) (verifier.AttestInput, bool, error) {
	var w struct {
		Nonce     []byte          `json:"nonce"`
		TEE       string          `json:"tee"`
		Evidence  json.RawMessage `json:"evidence"`
		TEEPubKey json.RawMessage `json:"tee_pubkey,omitempty"`
	}
	if strictJSON(body, &w) != nil || (w.TEE != v1.TEEAzureSNP && w.TEE != v1.TEEAzureTDX) {
		return verifier.AttestInput{}, false, nil
	}
	req.TEE = w.TEE
	in := verifier.AttestInput{TEE: w.TEE}
	ev, err := azure.DecodeEvidence(w.Evidence)
	if err != nil {
		return in, true, err
	}
	in.Azure = &ev
	if len(w.Nonce) != attest.NonceSize {
		return in, true, attest.Errorf(attest.ReasonMalformedEvidence, "nonce is %d bytes, want %d", len(w.Nonce), attest.NonceSize)
	}
	in.Nonce = attest.Nonce(w.Nonce)
	key, err := verifier.ParseTEEPubKey(w.TEEPubKey)
	in.TEEPubKey = key
	return in, true, err
}

func (h *handler) release(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	jwe, err := h.doRelease(r, body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v1.ReleaseResponse{JWE: jwe})
}

func (h *handler) doRelease(r *http.Request, body []byte) (string, error) {
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		return "", attest.Errorf(attest.ReasonTokenInvalid, "no Authorization: Bearer token")
	}
	var req v1.ReleaseRequest
	if err := strictJSON(body, &req); err != nil {
		return "", err
	}
	if h.o.Releaser == nil {
		return "", attest.Errorf(attest.ReasonResourceForbidden, "this verifier has no resource store (--resources)")
	}
	return h.o.Releaser.Release(r.Context(), tok, req.Resources)
}

func (h *handler) verifyPlain(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r)
	if !ok {
		return
	}
	err := h.o.Attester.VerifyPlain(r.Context(), body)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v1.VerifyResponse{Status: "verified", TEE: v1.TEESEVSNP})
}

func (h *handler) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.o.JWKS())
}

func (h *handler) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, v1.Health{Status: "ok", AppraisalPolicyID: h.o.Health.PolicyID(), DevSimulatorTrusted: h.o.DevSimulator})
}

func (h *handler) readyz(w http.ResponseWriter, _ *http.Request) {
	st := v1.Health{Status: "ok", AppraisalPolicyID: h.o.Health.PolicyID(), DevSimulatorTrusted: h.o.DevSimulator}
	code := http.StatusOK
	var dg *Degraded
	if err := h.o.Health.Ready(); errors.As(err, &dg) {
		st.Status, st.Error = "degraded", dg.Err.Error()
	} else if err != nil {
		st.Status, st.Error, code = "unavailable", err.Error(), http.StatusServiceUnavailable
	}
	writeJSON(w, code, st)
}

// Degraded is what Health.Ready returns when the verifier serves but an
// operator must look (an update of the policy or reference values was
// refused, so the last good set stays in force): /readyz answers 200 with
// status "degraded" and Err's text, so that one broken update does not
// take every replica out of service at once.
type Degraded struct{ Err error }

func (d *Degraded) Error() string { return "degraded: " + d.Err.Error() }
func (d *Degraded) Unwrap() error { return d.Err }

// teeLabel keeps a client-chosen string out of the log: "sev-snp", "tdx",
// "nitro" or "unknown".
func teeLabel(tee string) string {
	if tee == v1.TEESEVSNP || tee == v1.TEETDX || tee == v1.TEEAzureSNP || tee == v1.TEEAzureTDX || tee == v1.TEENitro {
		return tee
	}
	return "unknown"
}

// readBody reads at most v1.MaxBodySize bytes; larger gets 413.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := readAll(http.MaxBytesReader(w, r.Body, v1.MaxBodySize), r.ContentLength)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			noteReason(w, attest.ReasonMalformedEvidence)
			writeJSON(w, http.StatusRequestEntityTooLarge, v1.Error{Error: "request body exceeds 64 KiB", Reason: string(attest.ReasonMalformedEvidence)})
		} else {
			writeError(w, attest.Errorf(attest.ReasonMalformedEvidence, "reading body: %w", err))
		}
		return nil, false
	}
	return body, true
}

// readAll is io.ReadAll with a first buffer of the announced length (when
// it is within v1.MaxBodySize) and one byte more for the EOF: a 7 KB body
// is read into one allocation instead of io.ReadAll's doubling ones.
func readAll(r io.Reader, announced int64) ([]byte, error) {
	if announced < 0 || announced > v1.MaxBodySize {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, announced+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // let append grow it
		}
	}
}

// strictJSON decodes exactly one JSON object with no unknown fields, no
// key twice in any object and every key of v's fields spelled exactly as
// its json tag (encoding/json alone takes the last of two keys and matches
// keys case-insensitively).
func strictJSON(body []byte, v any) error {
	switch err := strictjson.Decode(body, v); {
	case errors.Is(err, strictjson.ErrNotObject):
		return attest.Errorf(attest.ReasonMalformedEvidence, "request body is not a JSON object")
	case errors.Is(err, strictjson.ErrTrailing):
		return attest.Errorf(attest.ReasonMalformedEvidence, "request body has data after the JSON object")
	case err != nil:
		return attest.Errorf(attest.ReasonMalformedEvidence, "request body: %w", err)
	}
	return nil
}

func writeError(w http.ResponseWriter, err error) {
	setRetryAfter(w, err)
	r := attest.ReasonOf(err)
	noteReason(w, r)
	writeJSON(w, r.Status(), v1.Error{Error: message(r, teeOf(w)), Reason: string(r)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	if code == http.StatusServiceUnavailable && w.Header().Get("Retry-After") == "" {
		w.Header().Set("Retry-After", strconv.Itoa(defaultRetryAfter))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// recoverer turns a panic into 500 internal_error instead of a dropped
// connection; the panic value is not logged (it may hold evidence).
func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panicked", "path", r.URL.Path)
				writeError(w, attest.Errorf(attest.ReasonInternalError, "panic"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// Retry-After of a 503, in seconds: what the error suggests (attest.RetryAfter,
// rounded up, at most maxRetryAfter), else defaultRetryAfter.
const (
	defaultRetryAfter = 5
	maxRetryAfter     = 3600
)

// setRetryAfter sets the Retry-After of a 503 for err from its hint;
// writeJSON gives a 503 without one the default.
func setRetryAfter(w http.ResponseWriter, err error) {
	if d, ok := attest.RetryAfter(err); ok && d > 0 && attest.ReasonOf(err).Status() == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(min((d+time.Second-1)/time.Second, maxRetryAfter))))
	}
}

// withClient puts into every request's context who it comes from
// (attest.WithClient), for bounding the AMD KDS fetches one client may
// cause: the verified client certificate (a SHA-256 prefix of the leaf)
// when there is one, else the remote address, an IPv6 address by its /64
// (what one host usually has whole). Behind a proxy every client shares
// the proxy's address: use client certificates (client_ca) there.
func withClient(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(attest.WithClient(r.Context(), clientID(r))))
	})
}

func clientID(r *http.Request) string {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		sum := sha256.Sum256(r.TLS.VerifiedChains[0][0].Raw)
		return attest.CertClientID(hex.EncodeToString(sum[:16]))
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return "addr:" + host
	}
	if a = a.Unmap(); a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return "net:" + p.String()
	}
	return "ip:" + a.String()
}
