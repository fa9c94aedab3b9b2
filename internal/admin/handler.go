package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/refvalues"
)

// Paths of the admin API (on the admin listener only).
const (
	PathReferenceValues = "/admin/v1/reference-values"
	PathMeasurements    = "/admin/v1/reference-values/measurements"
)

// MaxBodySize bounds an admin request body, in bytes.
const MaxBodySize = 64 << 10

// MinTokenSize is the least length of the admin bearer token, in bytes.
const MinTokenSize = 16

// The reason field of the admin API's errors.
const (
	ReasonUnauthorized     = "unauthorized_client" // 401: no valid bearer token or client certificate
	ReasonMalformedRequest = "malformed_request"   // 400: not one entry of the schema
	ReasonSignatureInvalid = "signature_invalid"   // 403: not a JWS under the trusted key
	ReasonConflict         = "label_exists"        // 409: the label is approved already
	ReasonNotFound         = "label_not_found"     // 404: no approved value has the label
	ReasonUnavailable      = "store_unavailable"   // 503: the shared store did not answer
)

// Options configure the admin handler. Layer is required, and at least
// one of Token and ClientCerts.
type Options struct {
	Layer *Layer
	// Token is the bearer token (the content of admin_token_file, spaces
	// trimmed); nil: bearer tokens are not accepted.
	Token []byte
	// ClientCerts accepts a request whose TLS connection carries a
	// client certificate the server verified (the admin listener's TLS
	// configuration holds admin_client_ca).
	ClientCerts bool
	// Logger receives the audit lines; nil means slog.Default().
	Logger *slog.Logger
	// Now stamps records; nil means time.Now.
	Now func() time.Time
	// Launches are the launch records GET /admin/v1/launches shows; nil:
	// an empty list.
	Launches LaunchRecords
}

// NewHandler returns the admin API.
func NewHandler(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	h := &handler{o: o}
	if o.Token != nil {
		h.tokenSum = sha256.Sum256(o.Token)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathReferenceValues, h.auth(h.list))
	mux.HandleFunc("POST "+PathMeasurements, h.auth(h.approve))
	mux.HandleFunc("DELETE "+PathMeasurements+"/{label}", h.auth(h.withdraw))
	mux.HandleFunc("GET "+PathLaunches, h.auth(h.launches))
	// Everything else, authenticated or not, is 404 in the API's form.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, ReasonNotFound, "no such admin endpoint")
	})
	return mux
}

type handler struct {
	o        Options
	tokenSum [sha256.Size]byte
}

// identify returns who made the request, for the audit: "cert:" and the
// subject of a verified client certificate, or "token:" and the first 8
// bytes of the SHA-256 of the bearer token (never the token); ok false
// when neither holds. The token is compared in constant time (as SHA-256
// digests, so its length does not show either).
func (h *handler) identify(r *http.Request) (string, bool) {
	if h.o.ClientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return "cert:" + r.TLS.VerifiedChains[0][0].Subject.String(), true
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if h.o.Token == nil || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], h.tokenSum[:]) != 1 {
		return "", false
	}
	return "token:sha256:" + hex.EncodeToString(sum[:8]), true
}

type authed func(w http.ResponseWriter, r *http.Request, who string)

func (h *handler) auth(next authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := h.identify(r)
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="trustgate-admin"`)
			writeError(w, http.StatusUnauthorized, ReasonUnauthorized, "an admin bearer token or client certificate is required")
			return
		}
		next(w, r, who)
	}
}

// ReferenceValues is the answer of GET /admin/v1/reference-values.
type ReferenceValues struct {
	// AppraisalPolicyID is the id of the policy in force at this replica.
	AppraisalPolicyID string `json:"appraisal_policy_id"`
	// AdminVersion is the version of the admin layer in force.
	AdminVersion int64 `json:"admin_version"`
	// Effective are the reference values in force: the file's, with the
	// admin layer over them.
	Effective *refvalues.Set `json:"reference_values"`
	// Admin are the admin layer's records by label: an approval (entry)
	// or a withdrawal, who made it and when.
	Admin map[string]refvalues.Record `json:"admin,omitempty"`
}

// Changed is the answer of a POST (201).
type Changed struct {
	Label             string `json:"label"`
	AppraisalPolicyID string `json:"appraisal_policy_id"`
	AdminVersion      int64  `json:"admin_version"`
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, _ string) {
	if err := h.o.Layer.Sync(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer")
		return
	}
	_, ov, eff, id := h.o.Layer.o.Engine.Reference()
	out := ReferenceValues{AppraisalPolicyID: id, Effective: eff, AdminVersion: h.o.Layer.Version()}
	if eff.Measurements == nil {
		cp := *eff
		cp.Measurements = []refvalues.Measurement{}
		out.Effective = &cp
	}
	if ov != nil && len(ov.Records) > 0 {
		out.Admin = make(map[string]refvalues.Record, len(ov.Records))
		for l, rec := range ov.Records {
			rec.JWS = "" // the entry is shown verified; the JWS adds nothing
			out.Admin[l] = rec
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *handler) approve(w http.ResponseWriter, r *http.Request, who string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		writeError(w, http.StatusRequestEntityTooLarge, ReasonMalformedRequest, "request body exceeds 64 KiB")
		return
	}
	var m refvalues.Measurement
	rec := refvalues.Record{By: who, At: h.o.Now().UTC()}
	if trust := h.o.Layer.o.TrustKey; trust != nil {
		m, err = refvalues.VerifyEntry(trust, string(body))
		var se *refvalues.SignatureError
		if errors.As(err, &se) {
			writeError(w, http.StatusForbidden, ReasonSignatureInvalid, "the entry must be a compact JWS signed by the trusted reference-values key ("+se.Kind+")")
			return
		}
		rec.JWS = strings.TrimSpace(string(body))
	} else {
		m, err = refvalues.ParseEntry(body)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, ReasonMalformedRequest, "not one valid reference-values entry: "+err.Error())
		return
	}
	rec.Entry = &m
	if err := h.o.Layer.Sync(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer")
		return
	}
	if _, _, eff, _ := h.o.Layer.o.Engine.Reference(); hasLabel(eff, m.Label) {
		writeError(w, http.StatusConflict, ReasonConflict, "a value labelled "+quote(m.Label)+" is approved already; withdraw it first")
		return
	}
	h.change(w, r, who, "approve", m.Label, rec, http.StatusCreated)
}

func (h *handler) withdraw(w http.ResponseWriter, r *http.Request, who string) {
	label := r.PathValue("label")
	if err := h.o.Layer.Sync(r.Context()); err != nil {
		writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer")
		return
	}
	if _, _, eff, _ := h.o.Layer.o.Engine.Reference(); !hasLabel(eff, label) {
		writeError(w, http.StatusNotFound, ReasonNotFound, "no approved value is labelled "+quote(label))
		return
	}
	h.change(w, r, who, "withdraw", label, refvalues.Record{By: who, At: h.o.Now().UTC()}, http.StatusNoContent)
}

// change writes rec, applies the layer at once and writes the audit line.
func (h *handler) change(w http.ResponseWriter, r *http.Request, who, action, label string, rec refvalues.Record, code int) {
	v, err := h.o.Layer.o.Store.Put(r.Context(), label, rec)
	if errors.Is(err, ErrApproved) {
		writeError(w, http.StatusConflict, ReasonConflict, "a value labelled "+quote(label)+" is approved already; withdraw it first")
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer; the change may or may not have been made (GET to see)")
		return
	}
	// The change is made; this replica applies it now, the others at
	// their next poll.
	syncErr := h.o.Layer.Sync(r.Context())
	id := h.o.Layer.o.Engine.ID()
	attrs := []any{"audit", "admin", "who", who, "action", action, "label", label, "admin_version", v, "appraisal_policy_id", id}
	if syncErr != nil {
		attrs = append(attrs, "applied_here", false)
	}
	h.o.Logger.Info("reference values changed", attrs...)
	if code == http.StatusNoContent {
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, Changed{Label: label, AppraisalPolicyID: id, AdminVersion: v})
}

func hasLabel(s *refvalues.Set, label string) bool {
	_, ok := s.Label(label)
	return ok
}

// quote bounds a client-chosen label in a message.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}

type apiError struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func writeError(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, apiError{Error: msg, Reason: reason})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
