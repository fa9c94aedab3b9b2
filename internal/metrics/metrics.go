// Package metrics is trustgate's Prometheus instrumentation, with SPEC's
// metric names. No label ever carries a per-guest or client-chosen value:
// tee is "sev-snp", "tdx", "azure-snp", "azure-tdx" or "unknown" (any other string a client sends), result
// is "pass" or "fail", reason is a built-in reason code (attest.Reasons,
// "none" on a pass) or one of the first MaxPolicyReasons distinct codes of
// the form policy_<name> a policy reported (later ones count as
// policy_denied), KDS codes are HTTP statuses, launch anomaly kinds are
// launch.Anomalies.
package metrics

import (
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/launch"
)

// Result label values.
const (
	Pass = "pass"
	Fail = "fail"
)

// NoReason is the reason label of a passed attestation or release.
const NoReason = "none"

// UnknownTEE is the tee label of a request that named no TEE trustgate
// supports, or whose body was refused before its TEE was read.
const UnknownTEE = "unknown"

// MaxPolicyReasons bounds the distinct policy_<name> codes (a custom
// policy's own reasons) that become reason label values: the first 32 seen
// since start do, later ones are counted as policy_denied.
const MaxPolicyReasons = 32

// Metrics holds trustgate's collectors in their own registry. It
// implements httpapi.Observer and certs.Observer.
type Metrics struct {
	reg          *prometheus.Registry
	attestations *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	challenges   prometheus.Counter
	refusedCh    *prometheus.CounterVec
	kds          *prometheus.CounterVec
	lookups      *prometheus.CounterVec
	releases     *prometheus.CounterVec
	reloadFails  *prometheus.CounterVec
	anomalies    *prometheus.CounterVec
	certAge      prometheus.Histogram
	launchSeq    prometheus.Histogram
	storeUp      prometheus.Gauge

	builtin map[attest.Reason]bool
	mu      sync.Mutex
	custom  map[attest.Reason]bool // policy_<name> codes admitted as labels
}

// New returns the metrics of one verifier; policyID reports the active
// appraisal-policy-id for trustgate_policy_info.
func New(policyID func() string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_attestations_total", Help: "Attestations (POST /v1/attest and /verify), refusals before the verifier included, by TEE, result and reason.",
		}, []string{"tee", "result", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "trustgate_attestation_duration_seconds", Help: "Time from the arrival of one attestation request (POST /v1/attest and /verify) to its answer, refusals included, by TEE.",
			Buckets: []float64{.0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tee"}),
		challenges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "trustgate_challenges_issued_total", Help: "Nonces issued by POST /v1/challenge.",
		}),
		refusedCh: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_challenges_refused_total", Help: "Requests to POST /v1/challenge refused (no nonce issued), by reason.",
		}, []string{"reason"}),
		kds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_kds_requests_total", Help: "HTTP requests sent to the AMD KDS, by kind and HTTP status (\"error\": no answer).",
		}, []string{"kind", "code"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_cert_cache_lookups_total", Help: "Endorsement key lookups in the certificate cache, by result.",
		}, []string{"result"}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_releases_total", Help: "Secret releases (POST /v1/release), refusals included, by result and reason.",
		}, []string{"result", "reason"}),
		reloadFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_config_reload_failures_total", Help: "Changed policy or reference-values files, or admin layers, that were not loaded (the previous version stays in force), by file and kind (rollback: older than one already seen; invalid: anything else).",
		}, []string{"file", "kind"}),
		anomalies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "trustgate_launch_anomalies_total", Help: "Verified attestations of a launch from another chip than the one it was first attested from (kind launch_on_new_chip), whatever the policy then decided.",
		}, []string{"kind"}),
		certAge: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trustgate_cert_cache_age_seconds", Help: "Age of each AMD endorsement key (VCEK) served from the certificate cache: time since it was fetched from the KDS.",
			Buckets: []float64{3600, 6 * 3600, 86400, 3 * 86400, 7 * 86400, 14 * 86400, 30 * 86400},
		}),
		launchSeq: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "trustgate_launch_seq", Help: "The trustgate.launch_seq of each token issued: the attestation's number within its launch.",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100, 1000},
		}),
		storeUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "trustgate_store_up", Help: "1 when this replica's store of single-use records answered its last probe (Redis, probed every second whether or not requests arrive; always 1 in memory), 0 when it did not.",
		}),
		builtin: map[attest.Reason]bool{},
		custom:  map[attest.Reason]bool{},
	}
	m.storeUp.Set(1)
	info := prometheus.NewDesc("trustgate_policy_info", "The active appraisal policy (value 1), by its appraisal-policy-id.", []string{"policy_id"}, nil)
	m.reg.MustRegister(m.attestations, m.duration, m.challenges, m.refusedCh, m.kds, m.lookups, m.releases, m.reloadFails, m.anomalies, m.launchSeq, m.certAge, m.storeUp,
		policyInfo{desc: info, id: policyID},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	// Every label value known in advance is there from the start, at 0,
	// so that rates and alerts work before the first event.
	for _, tee := range TEEs {
		m.attestations.WithLabelValues(tee, Pass, NoReason)
		for _, r := range attest.Reasons() {
			m.attestations.WithLabelValues(tee, Fail, string(r))
		}
		m.duration.WithLabelValues(tee)
	}
	m.duration.WithLabelValues(UnknownTEE)
	for _, r := range attest.Reasons() {
		m.attestations.WithLabelValues(UnknownTEE, Fail, string(r))
		m.releases.WithLabelValues(Fail, string(r))
		m.refusedCh.WithLabelValues(string(r))
		m.builtin[r] = true
	}
	m.releases.WithLabelValues(Pass, NoReason)
	for _, k := range launch.Anomalies() {
		m.anomalies.WithLabelValues(k)
	}
	for _, f := range []string{ReloadPolicy, ReloadReferenceValues, ReloadAdminLayer} {
		for _, k := range []string{ReloadInvalid, ReloadRollback} {
			m.reloadFails.WithLabelValues(f, k)
		}
	}
	m.reloadFails.WithLabelValues(ReloadAdminLayer, ReloadUnconfirmed)
	for _, l := range certs.Lookups() {
		m.lookups.WithLabelValues(string(l))
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

// TEEs are the tee label values of the TEEs trustgate verifies; with
// UnknownTEE they are the label's closed set.
var TEEs = []string{attest.TEESEVSNP, attest.TEETDX, attest.TEEAzureSNP, attest.TEEAzureTDX, attest.TEENitro}

// teeLabel keeps client-chosen strings out of labels.
func teeLabel(tee string) string {
	if slices.Contains(TEEs, tee) {
		return tee
	}
	return UnknownTEE
}

// reasonLabel is the label value of a refusal's reason: a built-in code as
// is; a policy's own code while it is one of the first MaxPolicyReasons
// seen, else policy_denied; anything else (which attest.Decision.Err and
// the handlers never produce) internal_error.
func (m *Metrics) reasonLabel(r attest.Reason) string {
	if m.builtin[r] {
		return string(r)
	}
	if !r.PolicyOwn() {
		return string(attest.ReasonInternalError)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.custom[r] || len(m.custom) < MaxPolicyReasons {
		m.custom[r] = true
		return string(r)
	}
	return string(attest.ReasonPolicyDenied)
}

// Attested implements httpapi.Observer: one POST /v1/attest or /verify,
// reason "" when it passed.
func (m *Metrics) Attested(tee string, reason attest.Reason, took time.Duration) {
	tee = teeLabel(tee)
	if reason == "" {
		m.attestations.WithLabelValues(tee, Pass, NoReason).Inc()
	} else {
		m.attestations.WithLabelValues(tee, Fail, m.reasonLabel(reason)).Inc()
	}
	m.duration.WithLabelValues(tee).Observe(took.Seconds())
}

// Challenged implements httpapi.Observer: a nonce issued (reason "") or a
// refused POST /v1/challenge.
func (m *Metrics) Challenged(reason attest.Reason) {
	if reason == "" {
		m.challenges.Inc()
		return
	}
	m.refusedCh.WithLabelValues(m.reasonLabel(reason)).Inc()
}

// Released implements httpapi.Observer: one POST /v1/release, reason ""
// when it succeeded.
func (m *Metrics) Released(reason attest.Reason) {
	if reason == "" {
		m.releases.WithLabelValues(Pass, NoReason).Inc()
		return
	}
	m.releases.WithLabelValues(Fail, m.reasonLabel(reason)).Inc()
}

// File label values of trustgate_config_reload_failures_total.
const (
	ReloadPolicy          = "policy"
	ReloadReferenceValues = "reference_values"
	// ReloadAdminLayer: the admin API's layer in Redis could not be
	// applied whole (an approval that does not verify, a lost layer).
	ReloadAdminLayer = "admin_layer"
)

// Kind label values of trustgate_config_reload_failures_total.
const (
	// ReloadRollback: a version older than one already seen (a signed
	// file of a lower version, or an admin layer that went back).
	ReloadRollback = "rollback"
	// ReloadUnconfirmed: an admin layer whose approvals are held out of
	// force because its Redis restarted or came back from a snapshot and
	// no replica that remembers a layer as new confirmed it.
	ReloadUnconfirmed = "unconfirmed"
	// ReloadInvalid: every other refusal.
	ReloadInvalid = "invalid"
)

// ReloadFailed counts a policy (ReloadPolicy) or reference-values
// (ReloadReferenceValues) file that changed and was not loaded, or an
// admin layer not applied whole (ReloadAdminLayer), by kind
// (ReloadRollback, ReloadUnconfirmed or ReloadInvalid); any other file
// value counts as ReloadPolicy, any other kind as ReloadInvalid.
func (m *Metrics) ReloadFailed(file, kind string) {
	if file != ReloadReferenceValues && file != ReloadAdminLayer {
		file = ReloadPolicy
	}
	if kind != ReloadRollback && kind != ReloadUnconfirmed {
		kind = ReloadInvalid
	}
	m.reloadFails.WithLabelValues(file, kind).Inc()
}

// KDSRequest implements certs.Observer.
func (m *Metrics) KDSRequest(kind certs.Kind, code string) {
	m.kds.WithLabelValues(string(kind), code).Inc()
}

// CacheLookup implements certs.Observer.
func (m *Metrics) CacheLookup(result certs.Lookup) {
	m.lookups.WithLabelValues(string(result)).Inc()
}

// CacheAge implements certs.AgeObserver.
func (m *Metrics) CacheAge(age time.Duration) { m.certAge.Observe(max(age, 0).Seconds()) }

// LaunchAnomaly implements launch.Observer; kind is one of
// launch.Anomalies (anything else is not counted).
func (m *Metrics) LaunchAnomaly(kind string) {
	if kind == launch.AnomalyNewChip {
		m.anomalies.WithLabelValues(kind).Inc()
	}
}

// StoreUp sets trustgate_store_up: whether the store answered its last
// probe.
func (m *Metrics) StoreUp(up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.storeUp.Set(v)
}

// LaunchCommitted implements launch.Observer.
func (m *Metrics) LaunchCommitted(seq uint64) { m.launchSeq.Observe(float64(seq)) }

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
