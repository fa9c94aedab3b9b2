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

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/strictjson"
)

// Paths of the admin API (on the admin listener only).
const (
	PathReferenceValues = "/admin/v1/reference-values"
	PathMeasurements    = "/admin/v1/reference-values/measurements"
	PathConfirm         = "/admin/v1/reference-values/confirm"
)

// MaxBodySize bounds an admin request body, in bytes.
const MaxBodySize = 64 << 10

// MinTokenSize is the least length of the admin bearer token, in bytes.
const MinTokenSize = 16

// The reason field of the admin API's errors.
const (
	ReasonUnauthorized     = "unauthorized_client"     // 401: no valid bearer token or client certificate
	ReasonMalformedRequest = "malformed_request"       // 400: not one entry of the schema
	ReasonSignatureInvalid = "signature_invalid"       // 403: not a JWS under the trusted key
	ReasonConflict         = "label_exists"            // 409: the label is approved already
	ReasonNotFound         = "label_not_found"         // 404: no approved value has the label
	ReasonUnavailable      = "store_unavailable"       // 503: the shared store did not answer
	ReasonReplayed         = v1.ReasonApprovalReplayed // 409: the approval's jti was accepted before, or it was signed before the label's last withdrawal
	ReasonTrustKey         = "trust_key_mismatch"      // 409: the layer records another trust key requirement than this replica's
	ReasonLayerChanged     = "layer_changed"           // 409: the layer's version is not the one confirmed (changed in between)
)

// Options configure the admin handler. Layer is required, and at least
// one of Token and ClientCerts.
type Options struct {
	Layer *Layer
	// Tokens are the bearer tokens (ParseTokens of admin_token_file); nil:
	// bearer tokens are not accepted.
	Tokens []Token
	// ClientCerts accepts a request whose TLS connection carries a
	// client certificate the server verified (the admin listener's TLS
	// configuration holds admin_client_ca).
	ClientCerts bool
	// Logger receives the audit lines; nil means slog.Default().
	Logger *slog.Logger
	// Memory keeps the audit chain across restarts (the state
	// directory); nil: a new chain at each start.
	Memory Memory
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
	h := &handler{o: o, audit: NewAuditor(o.Logger, o.Memory, o.Now)}
	for _, t := range o.Tokens {
		h.tokens = append(h.tokens, namedSum{name: t.Name, sum: sha256.Sum256(t.Secret)})
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathReferenceValues, h.auth("list", h.list))
	mux.HandleFunc("POST "+PathMeasurements, h.auth("approve", h.approve))
	mux.HandleFunc("DELETE "+PathMeasurements+"/{label}", h.auth("withdraw", h.withdraw))
	mux.HandleFunc("POST "+PathConfirm, h.auth("confirm", h.confirm))
	mux.HandleFunc("GET "+PathLaunches, h.auth("launches", h.launches))
	// Everything else, authenticated or not, is 404 in the API's form.
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		who, _ := h.identify(r)
		h.audit.Record(whoOr(who), "unknown_endpoint", "", OutcomeRefused, ReasonNotFound)
		writeError(w, http.StatusNotFound, ReasonNotFound, "no such admin endpoint")
	})
	return mux
}

type handler struct {
	o      Options
	tokens []namedSum
	audit  *Auditor
}

type namedSum struct {
	name string // "" for a single bare token
	sum  [sha256.Size]byte
}

func whoOr(who string) string {
	if who == "" {
		return "unauthenticated"
	}
	return who
}

// identify returns who made the request, for the audit: "cert:" and the
// subject of a verified client certificate, "token:" and the operator's
// name of a named token, or "token:sha256:" and the first 8 bytes of the
// SHA-256 of a single bare token (never the token); ok false when none
// holds. Tokens are compared in constant time as SHA-256 digests (so
// their length does not show either), every one of them each time.
func (h *handler) identify(r *http.Request) (string, bool) {
	if h.o.ClientCerts && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 && len(r.TLS.VerifiedChains[0]) > 0 {
		return "cert:" + r.TLS.VerifiedChains[0][0].Subject.String(), true
	}
	scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if len(h.tokens) == 0 || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := -1
	for i, t := range h.tokens {
		if subtle.ConstantTimeCompare(sum[:], t.sum[:]) == 1 {
			match = i
		}
	}
	switch {
	case match < 0:
		return "", false
	case h.tokens[match].name != "":
		return "token:" + h.tokens[match].name, true
	}
	return "token:sha256:" + hex.EncodeToString(sum[:8]), true
}

// call is one admin call as its audit line tells it; the handler fills in
// the label and, for a write the store did not confirm, the outcome.
type call struct {
	who, label, outcome string
	status              int
	reason              string
	extra               []any
}

// auditWriter notes the status and reason of the answer.
type auditWriter struct {
	http.ResponseWriter
	c *call
}

func (a auditWriter) WriteHeader(code int) {
	a.c.status = code
	a.ResponseWriter.WriteHeader(code)
}

type authed func(w http.ResponseWriter, r *http.Request, c *call)

// auth authenticates the request and writes its audit line once it is
// answered, accepted or refused.
func (h *handler) auth(action string, next authed) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, ok := h.identify(r)
		c := &call{who: whoOr(who), label: r.PathValue("label")}
		defer func() {
			outcome := c.outcome
			if outcome == "" {
				outcome = OutcomeAccepted
				if c.status >= 300 {
					outcome = OutcomeRefused
				}
			}
			h.audit.Record(c.who, action, boundLabel(c.label), outcome, c.reason, c.extra...)
		}()
		w = auditWriter{ResponseWriter: w, c: c}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="trustgate-admin"`)
			c.reason = ReasonUnauthorized
			writeError(w, http.StatusUnauthorized, ReasonUnauthorized, "an admin bearer token or client certificate is required")
			return
		}
		next(w, r, c)
	}
}

// boundLabel bounds a client-chosen label in an audit line.
func boundLabel(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

// refuse answers an error and notes its reason for the audit line.
func refuse(w http.ResponseWriter, c *call, code int, reason, msg string) {
	c.reason = reason
	writeError(w, code, reason, msg)
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
	// Unconfirmed: the layer is not confirmed since its Redis restarted
	// or came back from a snapshot, and this replica holds its approvals
	// out of force (they show as withdrawals) until it is (PathConfirm).
	Unconfirmed bool `json:"unconfirmed,omitempty"`
}

// Confirmation is the body of POST /admin/v1/reference-values/confirm
// (optional) and its answer (200).
type Confirmation struct {
	// AdminVersion is the version confirmed; in the request, the one the
	// operator reviewed (absent: the store's current one).
	AdminVersion      *int64 `json:"admin_version,omitempty"`
	AppraisalPolicyID string `json:"appraisal_policy_id,omitempty"`
}

// Changed is the answer of a POST (201).
type Changed struct {
	Label             string `json:"label"`
	AppraisalPolicyID string `json:"appraisal_policy_id"`
	AdminVersion      int64  `json:"admin_version"`
}

func (h *handler) list(w http.ResponseWriter, r *http.Request, c *call) {
	if err := h.o.Layer.Sync(r.Context()); err != nil {
		refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer")
		return
	}
	_, ov, eff, id := h.o.Layer.o.Engine.Reference()
	out := ReferenceValues{AppraisalPolicyID: id, Effective: eff, AdminVersion: h.o.Layer.Version(), Unconfirmed: h.o.Layer.Unconfirmed()}
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

func (h *handler) approve(w http.ResponseWriter, r *http.Request, c *call) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	if err != nil {
		refuse(w, c, http.StatusRequestEntityTooLarge, ReasonMalformedRequest, "request body exceeds 64 KiB")
		return
	}
	var m refvalues.Measurement
	rec := refvalues.Record{By: c.who, At: h.o.Now().UTC()}
	ch := Change{TrustKey: h.o.Layer.fp}
	if trust := h.o.Layer.o.TrustKey; trust != nil {
		var a refvalues.Approval
		a, err = refvalues.VerifyEntry(trust, string(body))
		var se *refvalues.SignatureError
		if errors.As(err, &se) {
			refuse(w, c, http.StatusForbidden, ReasonSignatureInvalid, "the entry must be a compact JWS signed by the trusted reference-values key ("+se.Kind+")")
			return
		}
		if err == nil && (a.ID == "" || a.IssuedAt <= 0) {
			c.label = a.Label
			refuse(w, c, http.StatusBadRequest, ReasonMalformedRequest, "the signed approval carries no iat or jti: sign it again with `trustgate refvalues sign --entry`")
			return
		}
		m, ch.JTI, ch.IssuedAt = a.Measurement, a.ID, time.Unix(a.IssuedAt, 0)
		rec.JWS = strings.TrimSpace(string(body))
	} else {
		m, err = refvalues.ParseEntry(body)
	}
	if err != nil {
		refuse(w, c, http.StatusBadRequest, ReasonMalformedRequest, "not one valid reference-values entry: "+err.Error())
		return
	}
	c.label = m.Label
	rec.Entry = &m
	if err := h.o.Layer.Sync(r.Context()); err != nil {
		refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer")
		return
	}
	if _, _, eff, _ := h.o.Layer.o.Engine.Reference(); hasLabel(eff, m.Label) {
		refuse(w, c, http.StatusConflict, ReasonConflict, "a value labelled "+quote(m.Label)+" is approved already; withdraw it first")
		return
	}
	h.change(w, r, c, m.Label, rec, ch, http.StatusCreated)
}

func (h *handler) withdraw(w http.ResponseWriter, r *http.Request, c *call) {
	label := r.PathValue("label")
	if err := h.o.Layer.Sync(r.Context()); err != nil {
		refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer")
		return
	}
	if _, _, eff, _ := h.o.Layer.o.Engine.Reference(); !hasLabel(eff, label) && !h.heldOut(r, label) {
		refuse(w, c, http.StatusNotFound, ReasonNotFound, "no approved value is labelled "+quote(label))
		return
	}
	h.change(w, r, c, label, refvalues.Record{By: c.who, At: h.o.Now().UTC()}, Change{TrustKey: h.o.Layer.fp}, http.StatusNoContent)
}

// heldOut reports whether label is an approval of the store's layer held
// out of force because the layer is unconfirmed: an operator withdraws it
// before confirming the rest.
func (h *handler) heldOut(r *http.Request, label string) bool {
	if !h.o.Layer.Unconfirmed() {
		return false
	}
	o, err := h.o.Layer.o.Store.Load(r.Context())
	if err != nil {
		return false
	}
	rec, ok := o.Records[label]
	return ok && !rec.Withdrawn()
}

// confirm confirms the store's layer as it is (Layer.Confirm): an
// operator's word that it is the fleet's current one, after Redis came
// back from a snapshot with no replica remembering a newer one.
func (h *handler) confirm(w http.ResponseWriter, r *http.Request, c *call) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodySize))
	want := int64(-1)
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		var in Confirmation
		if err = strictjson.Decode(body, &in); err == nil && in.AdminVersion != nil {
			if want = *in.AdminVersion; want < 0 {
				err = errors.New("admin_version is negative")
			}
		}
	}
	if err != nil {
		refuse(w, c, http.StatusBadRequest, ReasonMalformedRequest, "the body is empty or {\"admin_version\": N}")
		return
	}
	v, done, err := h.o.Layer.Confirm(r.Context(), want)
	c.extra = append(c.extra, "admin_version", v)
	switch {
	case !done && err != nil:
		c.outcome = OutcomeUnknown
		refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer; the layer may or may not have been confirmed (GET to see)")
		return
	case !done:
		refuse(w, c, http.StatusConflict, ReasonLayerChanged, "the admin layer's version is not the one to confirm (it changed): GET it, review it and confirm again")
		return
	}
	// Confirmed; err is a failure to apply it here (the others apply it
	// at their next poll).
	id := h.o.Layer.o.Engine.ID()
	c.extra = append(c.extra, "appraisal_policy_id", id)
	if err != nil {
		c.extra = append(c.extra, "applied_here", "no")
	}
	writeJSON(w, http.StatusOK, Confirmation{AdminVersion: &v, AppraisalPolicyID: id})
}

// change writes rec and applies the layer at once; the audit line (by
// auth) says what came of it.
func (h *handler) change(w http.ResponseWriter, r *http.Request, c *call, label string, rec refvalues.Record, ch Change, code int) {
	v, err := h.o.Layer.o.Store.Put(r.Context(), label, rec, ch)
	switch {
	case errors.Is(err, ErrApproved):
		refuse(w, c, http.StatusConflict, ReasonConflict, "a value labelled "+quote(label)+" is approved already; withdraw it first")
		return
	case errors.Is(err, ErrReplayed):
		refuse(w, c, http.StatusConflict, ReasonReplayed, "this approval was accepted before, or signed before the last withdrawal of "+quote(label)+": approving again needs a new signature")
		return
	case errors.Is(err, ErrTrustKey):
		refuse(w, c, http.StatusConflict, ReasonTrustKey, "the admin layer records another trust key requirement than this replica's refvalues_trust_key")
		return
	case err != nil:
		c.outcome = OutcomeUnknown
		refuse(w, c, http.StatusServiceUnavailable, ReasonUnavailable, "the admin layer's store did not answer; the change may or may not have been made (GET to see)")
		return
	}
	// The change is made; this replica applies it now, the others at
	// their next poll.
	syncErr := h.o.Layer.Sync(r.Context())
	id := h.o.Layer.o.Engine.ID()
	c.extra = append(c.extra, "admin_version", v, "appraisal_policy_id", id)
	if syncErr != nil {
		c.extra = append(c.extra, "applied_here", "no")
	}
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
