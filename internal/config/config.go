package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/cli"
)

// Config is the whole server configuration. Every field is also a flag of
// `trustgate serve` (kebab-case, its usage the first sentence of the
// field's doc comment: see Keys) and an environment variable (TRUSTGATE_ +
// the YAML key in upper case).
//
// Zero values: Default fills every key that has a default, so a zero in a
// Config is always one the operator set, and means what the key's comment
// says (for cert_max_staleness and crl_grace: none; keys that must not be
// 0 are refused by Validate). There is no "0 means the default" here.
type Config struct {
	// Listen is the address the API listens on.
	Listen string `yaml:"listen"`
	// TLSCert and TLSKey are the server's certificate (chain) and key,
	// PEM; both or neither. Without them the API is plain HTTP.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ClientCA, PEM, restricts the API to known agents: a request to
	// /v1/* or /verify must come with a client certificate that chains to
	// it (else 401 unauthorized_client). Needs TLSCert.
	ClientCA string `yaml:"client_ca"`
	// ReferenceValues is the reference-values file (JSON or YAML); "" means
	// none, so the default policy denies everything.
	ReferenceValues string `yaml:"reference_values"`
	// Policy is a Rego policy file; "" means the embedded default policy.
	Policy string `yaml:"policy"`
	// Resources is the embedded secret store: a directory with one file per
	// resource, owner-only permissions; "" means none (nothing is released).
	Resources string `yaml:"resources"`
	// NonceTTL is how long a challenge stays valid.
	NonceTTL time.Duration `yaml:"nonce_ttl"`
	// NonceKeyFile holds the nonce MAC key (at least 32 bytes, raw or hex);
	// "" means a key generated at start (outstanding nonces die with a
	// restart, and replicas cannot share nonces).
	NonceKeyFile string `yaml:"nonce_key_file"`
	// TokenKeyFile holds the ES256 token signing key (PEM); "" means a key
	// generated at start.
	TokenKeyFile string `yaml:"token_key_file"`
	// TokenLifetime is how long an attestation token is valid.
	TokenLifetime time.Duration `yaml:"token_lifetime"`
	// KDSURL is the AMD KDS base URL.
	KDSURL string `yaml:"kds_url"`
	// Offline never contacts the KDS: certificates and CRLs come with the
	// evidence or from the certificate cache (`trustgate certs import`).
	Offline bool `yaml:"offline"`
	// Redis is a Redis URL (redis://, rediss:// or unix://; or, for high
	// availability, redis+sentinel:// or redis+cluster://, see RedisClient);
	// "" means none.
	// Replicas with the same Redis share the single-use records (nonces,
	// token ids) and the AMD certificate cache.
	Redis string `yaml:"redis"`
	// StoreTimeout bounds every call to the single-use store (Redis): a
	// call that gets no answer within it is 503 store_unavailable, never
	// retried. It also bounds each Redis dial, read, write and wait for a
	// pooled connection, and /readyz's Redis check (there at most 900 ms).
	StoreTimeout time.Duration `yaml:"store_timeout"`
	// CertCacheDir is the AMD certificate disk cache; "" means the user
	// cache directory's trustgate/certs. Intel's TDX collateral is cached
	// in its pcs subdirectory ("": the user cache directory's trustgate/pcs).
	CertCacheDir string `yaml:"cert_cache_dir"`
	// PCSURL is Intel's Provisioning Certification Service base URL (API
	// v4), where TDX collateral (TCB info, QE identity, PCK CRLs) is
	// fetched; offline, never contacted.
	PCSURL string `yaml:"pcs_url"`
	// PCSRootCRLURL is where the Intel SGX Root CA's CRL is fetched.
	PCSRootCRLURL string `yaml:"pcs_root_crl_url"`
	// KDSRate is the least time between two KDS requests of one kind
	// (VCEKs; CRLs and chains).
	KDSRate time.Duration `yaml:"kds_rate"`
	// CertFetchWait is how long an attestation waits for an AMD certificate
	// fetch before it is answered 503 vcek_unavailable with Retry-After;
	// the fetch goes on in the background, so a retry finds it cached.
	CertFetchWait time.Duration `yaml:"cert_fetch_wait"`
	// CertMaxStaleness is how long past its refresh point a cached VCEK is
	// still used while the KDS cannot be reached; 0 means not at all.
	CertMaxStaleness time.Duration `yaml:"cert_max_staleness"`
	// CRLGrace is how long past its nextUpdate an AMD CRL that cannot be
	// refreshed is still used; then SEV-SNP evidence fails closed. 0 means
	// no grace.
	CRLGrace time.Duration `yaml:"crl_grace"`
	// WarmChips is a file of chips to fetch VCEKs for at start, one
	// PRODUCT:HWID:TCB per line; "" means none.
	WarmChips string `yaml:"warm_chips"`
	// ReloadInterval is how often policy and reference-value files are
	// checked for changes.
	ReloadInterval time.Duration `yaml:"reload_interval"`
	// ShutdownDelay is how long the server goes on serving after SIGTERM
	// while /readyz already answers 503, so that load balancers and
	// Kubernetes endpoints stop sending requests before the listener
	// closes; 0 means no delay (the listener closes at once).
	ShutdownDelay time.Duration `yaml:"shutdown_delay"`
	// ShutdownTimeout bounds a graceful shutdown: after ShutdownDelay,
	// requests in flight have this long to finish.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// LogLevel is the least level of serve's log lines: debug, info, warn
	// or error.
	LogLevel string `yaml:"log_level"`
	// DevSimulator trusts the simulator's AMD root and marks every token;
	// refused unless Listen is a loopback address. Only the --dev-simulator
	// flag sets it (a config file or TRUSTGATE_DEV_SIMULATOR is an error),
	// and requests whose Host is not a loopback name are answered 421.
	DevSimulator bool `yaml:"dev_simulator"`
	// AdminListen is the admin API's own address; "" means no admin API.
	// It is served with TLSCert/TLSKey when they are set, plain HTTP
	// otherwise. It needs AdminTokenFile or AdminClientCA.
	AdminListen string `yaml:"admin_listen"`
	// AdminTokenFile holds the admin API's bearer token (at least 16
	// bytes, spaces trimmed; owner-only); "" means no bearer token.
	AdminTokenFile string `yaml:"admin_token_file"`
	// AdminClientCA, PEM, admits admin requests with a client certificate
	// that chains to it; "" means none. Needs TLSCert.
	AdminClientCA string `yaml:"admin_client_ca"`
	// RefvaluesTrustKey, PEM (a P-256 public key or a certificate with
	// one), makes every reference value need its signature: a file is
	// loaded only with a valid FILE.sig beside it, an admin approval only
	// as a JWS under this key; "" means unsigned values are accepted.
	RefvaluesTrustKey string `yaml:"refvalues_trust_key"`
	// StateDir is the replica's state directory: what it must not forget
	// across its restarts (the highest reference-values version seen, the
	// admin layer it has held, the audit chain's last line); "" means the
	// user state directory's trustgate ($XDG_STATE_HOME, else
	// ~/.local/state). Owner-only; used with refvalues_trust_key, Redis or
	// admin_listen.
	StateDir string `yaml:"state_dir"`
	// PolicyURL is an external policy engine (an OPA REST data API path,
	// such as http://127.0.0.1:8181/v1/data/trustgate/decision) asked
	// instead of the embedded one; "" means the embedded engine. It
	// excludes Policy, ReferenceValues, RefvaluesTrustKey and AdminListen:
	// that engine holds its own policy and data.
	PolicyURL string `yaml:"policy_url"`
	// PolicyCA, PEM, verifies the certificate of an https:// policy_url
	// (a private CA); "" means the system roots.
	PolicyCA string `yaml:"policy_ca"`
	// InsecureHTTP allows a plain http:// policy_url to a host that is
	// not loopback (a warning is logged): whoever is on the path could
	// answer allow and reads every claim. Without it such a URL is
	// refused.
	InsecureHTTP bool `yaml:"insecure_http"`
	// PolicyReasonCodes, with policy_url, declares the external engine's
	// own reason codes, comma-separated (each policy_[a-z0-9_]{1,40}, at
	// most 32); any other policy_* reason it answers never leaves the
	// verifier and policy_denied stands in (an embedded policy declares
	// its codes in its module's reason_codes). "" declares none.
	PolicyReasonCodes string `yaml:"policy_reason_codes"`
	// PolicyTimeout bounds one decision of the external policy engine; no
	// answer within it is 503 policy_unavailable.
	PolicyTimeout time.Duration `yaml:"policy_timeout"`
	// LaunchKeyFile holds the key of the launch pseudonyms (at least 32
	// bytes, raw or hex; owner-only), to be shared by every replica and
	// given to `trustgate fleet lookup`. A path to no file gets a new key
	// written there (mode 0600) at start; "" means a key generated at
	// start and kept in memory (pseudonyms change with a restart and
	// differ between replicas).
	LaunchKeyFile string `yaml:"launch_key_file"`
	// LaunchRetention is how long a launch record is kept after the last
	// attestation of its launch.
	LaunchRetention time.Duration `yaml:"launch_retention"`
}

// RedisOptions returns the client options of the redis URL, nil without
// one. Whatever the URL says, a command is never retried (a write whose
// answer was lost may have been done) and every dial, read, write and wait
// for a pooled connection is bounded by StoreTimeout, as is the context of
// each call.
func (c Config) RedisOptions() (*redis.Options, error) {
	if c.Redis == "" {
		return nil, nil
	}
	o, err := redis.ParseURL(c.Redis)
	if err != nil {
		// Not the error itself: it may quote the URL and its password.
		return nil, errors.New("redis: not a redis://, rediss:// or unix:// URL")
	}
	o.MaxRetries = -1
	o.ContextTimeoutEnabled = true
	if c.StoreTimeout > 0 {
		o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout = c.StoreTimeout, c.StoreTimeout, c.StoreTimeout, c.StoreTimeout
	}
	return o, nil
}

// Default returns the embedded defaults: one machine, no config at all.
// The certificate settings are those internal/certs documents as its own
// defaults (internal/app's tests hold the two together).
func Default() Config {
	return Config{
		Listen:           "127.0.0.1:8080",
		NonceTTL:         120 * time.Second,
		TokenLifetime:    60 * time.Second,
		KDSURL:           "https://kdsintf.amd.com",
		PCSURL:           "https://api.trustedservices.intel.com",
		PCSRootCRLURL:    "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der",
		KDSRate:          10 * time.Second,
		CertFetchWait:    10 * time.Second,
		CertMaxStaleness: 7 * 24 * time.Hour,
		CRLGrace:         24 * time.Hour,
		ReloadInterval:   2 * time.Second,
		ShutdownDelay:    5 * time.Second,
		ShutdownTimeout:  10 * time.Second,
		LogLevel:         "info",
		StoreTimeout:     time.Second,
		PolicyTimeout:    2 * time.Second,
		LaunchRetention:  24 * time.Hour,
	}
}

// Load returns the defaults overlaid with the YAML file at path (if path
// is not "") and then with TRUSTGATE_* variables from env (os.Environ form).
// Unknown YAML keys are an error.
func Load(path string, env []string) (Config, error) {
	c := Default()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, err
		}
		if err := decodeFile(&c, path, b); err != nil {
			return c, err
		}
		if c.DevSimulator {
			return c, fmt.Errorf("%s: dev_simulator is set by the --dev-simulator flag only, never by a file", path)
		}
	}
	for _, kv := range env {
		if strings.HasPrefix(kv, "TRUSTGATE_DEV_SIMULATOR=") {
			return c, errors.New("TRUSTGATE_DEV_SIMULATOR: dev_simulator is set by the --dev-simulator flag only, never by the environment")
		}
	}
	return c, applyEnv(&c, env)
}

// decodeFile sets c from a YAML file's keys, reporting every problem at
// once as FILE:LINE: the key, what is wrong, and what is expected (the
// closest known key for an unknown one, the form of a value).
func decodeFile(c *Config, path string, b []byte) error {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty file
		}
		return fmt.Errorf("%s: not YAML: %v", path, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: want a mapping of keys (listen: 127.0.0.1:8080, nonce_ttl: 2m, ...)", path, root.Line)
	}
	fields := map[string]reflect.Value{}
	var names []string
	rv := reflect.ValueOf(c).Elem()
	for i := range rv.NumField() {
		name := rv.Type().Field(i).Tag.Get("yaml")
		fields[name] = rv.Field(i)
		names = append(names, name)
	}
	var errs []error
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		f, ok := fields[k.Value]
		switch {
		case !ok:
			hint := ""
			if s := cli.Closest(k.Value, names); s != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", s)
			}
			errs = append(errs, fmt.Errorf("%s:%d: unknown key %q%s", path, k.Line, k.Value, hint))
			continue
		case seen[k.Value] > 0:
			errs = append(errs, fmt.Errorf("%s:%d: %s given twice (also at line %d)", path, k.Line, k.Value, seen[k.Value]))
			continue
		}
		seen[k.Value] = k.Line
		var err error
		if v.Kind == yaml.ScalarNode && isScalarSetting(f) {
			if v.Tag == "!!null" {
				err = fmt.Errorf("no value: %s", expectedForm(f))
			} else {
				err = setField(f, v.Value)
			}
		} else if isScalarSetting(f) {
			err = fmt.Errorf("want one value, not a list or mapping: %s", expectedForm(f))
		} else {
			err = v.Decode(f.Addr().Interface()) // a setting of another shape
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %s: %v", path, v.Line, k.Value, err))
		}
	}
	return errors.Join(errs...)
}

func isScalarSetting(f reflect.Value) bool {
	switch f.Interface().(type) {
	case string, bool, time.Duration:
		return true
	}
	return false
}

// expectedForm says how a setting's value is written.
func expectedForm(f reflect.Value) string {
	switch f.Interface().(type) {
	case time.Duration:
		return "want a duration such as 30s, 5m or 1h30m"
	case bool:
		return "want true or false"
	}
	return "want a string"
}

// applyEnv sets fields from TRUSTGATE_<YAML KEY> variables.
func applyEnv(c *Config, env []string) error {
	vars := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "TRUSTGATE_") {
			vars[k] = v
		}
	}
	var errs []error
	rv := reflect.ValueOf(c).Elem()
	for i := 0; i < rv.NumField(); i++ {
		key := "TRUSTGATE_" + strings.ToUpper(rv.Type().Field(i).Tag.Get("yaml"))
		v, ok := vars[key]
		if !ok {
			continue
		}
		if err := setField(rv.Field(i), v); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key, err))
		}
	}
	return errors.Join(errs...)
}

// SetFlag sets the field whose YAML key is key (flags use the same keys
// with dashes) from its string form.
func (c *Config) SetFlag(key, value string) error {
	key = strings.ReplaceAll(key, "-", "_")
	rv := reflect.ValueOf(c).Elem()
	for i := 0; i < rv.NumField(); i++ {
		if rv.Type().Field(i).Tag.Get("yaml") == key {
			return setField(rv.Field(i), value)
		}
	}
	var names []string
	for _, k := range Keys() {
		names = append(names, k.Name)
	}
	if s := cli.Closest(key, names); s != "" {
		return fmt.Errorf("unknown setting %q (did you mean %s?)", key, s)
	}
	return fmt.Errorf("unknown setting %q", key)
}

func setField(f reflect.Value, v string) error {
	switch f.Interface().(type) {
	case string:
		f.SetString(v)
	case bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		f.SetBool(b)
	case time.Duration:
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a duration: %s", v, expectedForm(f))
		}
		f.SetInt(int64(d))
	default:
		return fmt.Errorf("unsupported setting type %s", f.Type())
	}
	return nil
}

// Validate checks c and returns every problem at once (nil if none).
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		bad("listen %q: %v", c.Listen, err)
	} else if c.DevSimulator && !IsLoopback(host) {
		bad("dev_simulator is refused unless listen is a loopback address (listen is %q)", c.Listen)
	}
	if c.NonceTTL < 10*time.Second || c.NonceTTL > time.Hour {
		bad("nonce_ttl %v: want 10s to 1h", c.NonceTTL)
	}
	if c.TokenLifetime < 5*time.Second || c.TokenLifetime > time.Hour {
		bad("token_lifetime %v: want 5s to 1h", c.TokenLifetime)
	}
	if c.ReloadInterval < 100*time.Millisecond {
		bad("reload_interval %v: want at least 100ms", c.ReloadInterval)
	}
	if c.StoreTimeout < 10*time.Millisecond || c.StoreTimeout > time.Minute {
		bad("store_timeout %v: want 10ms to 1m", c.StoreTimeout)
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay > 5*time.Minute {
		bad("shutdown_delay %v: want 0 to 5m", c.ShutdownDelay)
	}
	if c.ShutdownTimeout <= 0 {
		bad("shutdown_timeout %v: want more than 0", c.ShutdownTimeout)
	}
	if _, ok := c.SlogLevel(); !ok {
		bad("log_level %q: want debug, info, warn or error", c.LogLevel)
	}
	// The rule certs.New applies, offline or not (it is the one place;
	// certs.New then never refuses what passed here).
	if u, err := url.Parse(c.KDSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		bad("kds_url %q: want an http(s) URL", c.KDSURL)
	}
	for k, u := range map[string]string{"pcs_url": c.PCSURL, "pcs_root_crl_url": c.PCSRootCRLURL} {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			bad("%s %q: want an http(s) URL with a host", k, u)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("tls_cert and tls_key: give both or neither")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		bad("client_ca needs tls_cert and tls_key: client certificates need TLS")
	}
	if c.AdminListen != "" {
		if _, _, err := net.SplitHostPort(c.AdminListen); err != nil {
			bad("admin_listen %q: %v", c.AdminListen, err)
		} else if c.AdminListen == c.Listen && !strings.HasSuffix(c.Listen, ":0") {
			bad("admin_listen must not be the API's listen address")
		}
		if c.AdminTokenFile == "" && c.AdminClientCA == "" {
			bad("admin_listen needs admin_token_file or admin_client_ca: nobody could use the admin API")
		}
	}
	if c.AdminClientCA != "" && c.TLSCert == "" {
		bad("admin_client_ca needs tls_cert and tls_key: client certificates need TLS")
	}
	if c.PolicyURL != "" {
		if u, err := url.Parse(c.PolicyURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("policy_url: want an http(s) URL with a host")
		} else if u.Scheme == "http" && !IsLoopback(u.Hostname()) && !c.InsecureHTTP {
			bad("policy_url: plain http:// to %s, which is not loopback: whoever is on the path could answer allow and reads every claim; use https:// (policy_ca for a private CA) or set insecure_http", u.Hostname())
		}
		if c.Policy != "" || c.ReferenceValues != "" || c.RefvaluesTrustKey != "" || c.AdminListen != "" {
			bad("policy_url excludes policy, reference_values, refvalues_trust_key and admin_listen: the external engine holds its own policy and data")
		}
	}
	if c.PolicyReasonCodes != "" {
		if c.PolicyURL == "" {
			bad("policy_reason_codes needs policy_url (an embedded policy declares its codes in its module's reason_codes)")
		} else if _, err := policyReasonCodes(c.PolicyReasonCodes); err != nil {
			bad("policy_reason_codes: %v", err)
		}
	}
	if c.PolicyCA != "" && !strings.HasPrefix(c.PolicyURL, "https://") {
		bad("policy_ca needs an https:// policy_url")
	}
	if c.PolicyTimeout < 10*time.Millisecond || c.PolicyTimeout > 10*time.Second {
		bad("policy_timeout %v: want 10ms to 10s", c.PolicyTimeout)
	}
	if c.LaunchRetention < time.Minute || c.LaunchRetention > 90*24*time.Hour {
		bad("launch_retention %v: want 1m to 2160h (90 days)", c.LaunchRetention)
	}
	if c.KDSRate <= 0 {
		bad("kds_rate %v: want more than 0", c.KDSRate)
	}
	if c.CertFetchWait <= 0 || c.CertFetchWait > 25*time.Second {
		bad("cert_fetch_wait %v: want more than 0 and at most 25s (inside the server's 30 s write timeout)", c.CertFetchWait)
	}
	if c.CertMaxStaleness < 0 || c.CRLGrace < 0 {
		bad("cert_max_staleness %v, crl_grace %v: want 0 or more", c.CertMaxStaleness, c.CRLGrace)
	}
	if _, _, _, err := c.redisSetup(); err != nil {
		bad("%v", err)
	}
	if c.Resources != "" {
		if st, err := os.Stat(c.Resources); err != nil {
			bad("resources: %v", err)
		} else if !st.IsDir() {
			bad("resources: %s is not a directory", c.Resources)
		}
	}
	for _, f := range []struct{ key, path string }{
		{"reference_values", c.ReferenceValues}, {"policy", c.Policy},
		{"nonce_key_file", c.NonceKeyFile}, {"token_key_file", c.TokenKeyFile}, {"warm_chips", c.WarmChips},
		{"tls_cert", c.TLSCert}, {"tls_key", c.TLSKey}, {"client_ca", c.ClientCA},
		{"admin_token_file", c.AdminTokenFile}, {"admin_client_ca", c.AdminClientCA}, {"refvalues_trust_key", c.RefvaluesTrustKey}, {"policy_ca", c.PolicyCA},
	} {
		if f.path == "" {
			continue
		}
		if st, err := os.Stat(f.path); err != nil {
			bad("%s: %v", f.key, err)
		} else if st.IsDir() {
			bad("%s: %s is a directory", f.key, f.path)
		}
	}
	return errors.Join(errs...)
}

// IsLoopback reports whether host (of a listen address) is loopback.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// SlogLevel is LogLevel as a slog.Level, and whether LogLevel is one of
// debug, info, warn and error.
func (c *Config) SlogLevel() (slog.Level, bool) {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warn":
		return slog.LevelWarn, true
	case "error":
		return slog.LevelError, true
	}
	return slog.LevelInfo, false
}

// PolicyReasonCodeList is policy_reason_codes as a list (checked by
// Validate).
func (c *Config) PolicyReasonCodeList() []string {
	l, _ := policyReasonCodes(c.PolicyReasonCodes)
	return l
}

// policyReasonCodes splits a comma-separated list of reason codes and
// checks each is policy_[a-z0-9_]{1,40}, at most 32 of them.
func policyReasonCodes(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if !attest.Reason(f).PolicyOwn() {
			return nil, fmt.Errorf("%q is not of the form policy_[a-z0-9_]{1,40}", f)
		}
		out = append(out, f)
	}
	if len(out) > 32 {
		return nil, fmt.Errorf("%d codes, at most 32", len(out))
	}
	return out, nil
}
