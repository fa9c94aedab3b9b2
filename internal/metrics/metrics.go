// Package metrics is trustgate's Prometheus instrumentation, with SPEC's
// metric names. No label ever carries a per-guest value: tee is "sev-snp"
// or "unknown", reasons come from the closed set of attest.Reason (policy
// reasons are checked by attest.Decision.Err), KDS codes are HTTP statuses.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
)

// Result label values.
const (
	Pass = "pass"
	Fail = "fail"
)

// NoReason is the reason label of a passed attestation.
const NoReason = "none"

// Metrics holds trustgate's collectors in their own registry. It
// implements verifier.Observer and certs.Observer.
type Metrics struct {
	reg          *prometheus.Registry
	attestations *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	challenges   prometheus.Counter
	kds          *prometheus.CounterVec
	lookups      *prometheus.CounterVec
	releases     *prometheus.CounterVec
}

// New returns the metrics of one verifier; policyID reports the active
// appraisal-policy-id for trustgate_policy_info.
func New(policyID func() string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_attestations_total", Help: "Attestations (POST /v1/attest and /verify) by TEE, result and reason.",
		}, []string{"tee", "result", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trustgate_attestation_duration_seconds", Help: "Time to judge one attestation, by TEE.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tee"}),
		challenges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustgate_challenges_issued_total", Help: "Nonces issued by POST /v1/challenge.",
		}),
		kds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_kds_requests_total", Help: "HTTP requests sent to the AMD KDS, by kind and HTTP status (\"error\": no answer).",
		}, []string{"kind", "code"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_cert_cache_lookups_total", Help: "Endorsement key lookups in the certificate cache, by result.",
		}, []string{"result"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_releases_total", Help: "Secret releases (POST /v1/release) by result.",
		}, []string{"result"}),
	}
	info := prometheus.NewDesc("trustgate_policy_info", "The active appraisal policy (value 1), by its appraisal-policy-id.", []string{"policy_id"}, nil)
	m.reg.MustRegister(m.attestations, m.duration, m.challenges, m.kds, m.lookups, m.releases,
		policyInfo{desc: info, id: policyID},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Every label value known in advance is there from the start, at 0,
	// so that rates and alerts work before the first event.
	for _, tee := range []string{"sev-snp"} {
		m.attestations.WithLabelValues(tee, Pass, NoReason)
		for _, r := range attest.Reasons() {
			m.attestations.WithLabelValues(tee, Fail, string(r))
		}
		m.duration.WithLabelValues(tee)
	}
	for _, l := range certs.Lookups() {
		m.lookups.WithLabelValues(string(l))
	}
	for _, res := range []string{Pass, Fail} {
		m.releases.WithLabelValues(res)
	}
	// KDS answers: success and no answer at all per kind; other statuses
	// appear when they first happen.
	for _, k := range certs.Kinds() {
		m.kds.WithLabelValues(string(k), "200")
		m.kds.WithLabelValues(string(k), "error")
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// teeLabel keeps client-chosen strings out of labels.
func teeLabel(tee string) string {
	if tee == "sev-snp" {
		return tee
	}
	return "unknown"
}

// Attested implements verifier.Observer.
func (m *Metrics) Attested(tee string, reason attest.Reason, took time.Duration) {
	tee = teeLabel(tee)
	if reason == "" {
		m.attestations.WithLabelValues(tee, Pass, NoReason).Inc()
	} else {
		m.attestations.WithLabelValues(tee, Fail, string(reason)).Inc()
	}
	m.duration.WithLabelValues(tee).Observe(took.Seconds())
}

// ChallengeIssued counts one nonce issued.
func (m *Metrics) ChallengeIssued() { m.challenges.Inc() }

// Released counts one release; reason is "" when it succeeded.
func (m *Metrics) Released(reason attest.Reason) {
	if reason == "" {
		m.releases.WithLabelValues(Pass).Inc()
		return
	}
	m.releases.WithLabelValues(Fail).Inc()
}

// KDSRequest implements certs.Observer.
func (m *Metrics) KDSRequest(kind certs.Kind, code string) {
	m.kds.WithLabelValues(string(kind), code).Inc()
}

// CacheLookup implements certs.Observer.
func (m *Metrics) CacheLookup(result certs.Lookup) {
	m.lookups.WithLabelValues(string(result)).Inc()
}

// policyInfo emits trustgate_policy_info{policy_id} = 1 for the policy
// active at scrape time.
type policyInfo struct {
	desc *prometheus.Desc
	id   func() string
}

func (p policyInfo) Describe(ch chan<- *prometheus.Desc) { ch <- p.desc }

func (p policyInfo) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(p.desc, prometheus.GaugeValue, 1, p.id())
}

// KDSHeldBack registers trustgate_kds_held_back_seconds, read at scrape
// time from heldBack: how long from now no request goes to the AMD KDS
// because it answered 429 or 503 with Retry-After (0 when none). /readyz
// stays 200 during a KDS outage (cached chips are still served); this
// gauge, trustgate_kds_requests_total{code} and vcek_unavailable refusals
// show the outage.
func (m *Metrics) KDSHeldBack(heldBack func() time.Duration) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "trustgate_kds_held_back_seconds",
		Help: "Seconds from now during which no request goes to the AMD KDS because it asked to retry later (Retry-After, capped at an hour); 0 when none.",
	}, func() float64 { return heldBack().Seconds() }))
}
