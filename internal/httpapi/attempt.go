package httpapi

import (
	"net/http"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
)

// The attempt endpoints, as they are named in log lines.
const (
	opChallenge = "challenge"
	opAttest    = "attest"
	opVerify    = "verify"
	opRelease   = "release"
)

// attempt is the ResponseWriter of one request to an attempt endpoint. It
// remembers what counted needs to count and log the request once: the
// status written, the reason of a refusal (noted by writeError and
// readBody, whoever refused it) and the TEE the request named.
type attempt struct {
	http.ResponseWriter
	status int
	reason attest.Reason
	tee    string
}

func (a *attempt) WriteHeader(code int) {
	if a.status == 0 {
		a.status = code
	}
	a.ResponseWriter.WriteHeader(code)
}

func (a *attempt) Write(b []byte) (int, error) {
	if a.status == 0 {
		a.status = http.StatusOK
	}
	return a.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (a *attempt) Unwrap() http.ResponseWriter { return a.ResponseWriter }

// noteReason records the reason of the refusal written to w.
func noteReason(w http.ResponseWriter, r attest.Reason) {
	if a, ok := w.(*attempt); ok {
		a.reason = r
	}
}

// noteTEE records the TEE the request named, once its body is decoded.
func noteTEE(w http.ResponseWriter, tee string) {
	if a, ok := w.(*attempt); ok {
		a.tee = tee
	}
}

// teeOf returns the TEE noted by noteTEE, "" if none.
func teeOf(w http.ResponseWriter) string {
	if a, ok := w.(*attempt); ok {
		return a.tee
	}
	return ""
}

// counted is the one place where an attempt is counted (Options.Observer)
// and logged (one line: operation, TEE for attestations, result, reason),
// whatever refused it: the client check, the body limit, the JSON decoder
// or the domain. A 2xx answer is a pass; any other answer fails with the
// reason noted, internal_error if none was (a panic included, which the
// recoverer then answers).
func (h *handler) counted(op string, next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		a := &attempt{ResponseWriter: w}
		if op == opVerify {
			a.tee = v1.TEESEVSNP // the plain flow is SEV-SNP's
		}
		defer func() {
			v := recover()
			reason := a.reason
			if v != nil || (reason == "" && (a.status < 200 || a.status > 299)) {
				reason = attest.ReasonInternalError
			}
			h.observe(op, a.tee, reason, time.Since(start))
			if v != nil {
				panic(v)
			}
		}()
		next(a, r)
	}
}

func (h *handler) observe(op, tee string, reason attest.Reason, took time.Duration) {
	if o := h.o.Observer; o != nil {
		switch op {
		case opChallenge:
			o.Challenged(reason)
		case opRelease:
			o.Released(reason)
		default:
			o.Attested(tee, reason, took)
		}
	}
	attrs := make([]any, 0, 6)
	if op != opRelease && op != opChallenge {
		attrs = append(attrs, "tee", teeLabel(tee))
	}
	if reason == "" {
		if op == opChallenge {
			return // issuing a nonce is not an attempt: counted, not logged
		}
		attrs = append(attrs, "result", "pass")
	} else {
		attrs = append(attrs, "result", "fail", "reason", string(reason))
	}
	h.o.Logger.Info(op, attrs...)
}
