package policy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

//go:embed default.rego
var defaultModule string

// DefaultModule returns the source of the embedded default policy.
func DefaultModule() string { return defaultModule }

// Query is the one decision document a policy must define.
const Query = "data.trustgate.decision"

// ReasonCodesQuery is where a policy declares its own reason codes: a
// constant set (or array) of policy_[a-z0-9_]{1,40} strings, at most
// MaxReasonCodes, read once when the policy is loaded, without input. A deny
// reason of the form policy_* that is not declared there never leaves the
// engine: the decision's Err counts it as dropped, and a deny left without
// a reason is policy_denied. A policy built from a claim (policy_ + a chip
// id) therefore cannot carry the claim into answers, logs or metrics.
const ReasonCodesQuery = "data.trustgate.reason_codes"

// MaxReasonCodes bounds the reason codes a policy may declare (metrics keep
// 32 distinct policy_<name> labels).
const MaxReasonCodes = 32

// ReferencePath is where the reference values sit in OPA's data document,
// in the JSON form of refvalues.Set (SPEC keys).
const ReferencePath = "data.trustgate.reference"

// refused reports whether a policy may not call the builtin: whatever
// reaches the network (http.send, net.*, JSON schemas with remote refs) or
// the runtime environment (opa.runtime), randomness that would make a
// decision irreproducible, and output that could carry claims into logs
// (print, trace).
func refused(name string) bool {
	if strings.HasPrefix(name, "net.") {
		return true
	}
	switch name {
	case "http.send", "opa.runtime", "rand.intn", "uuid.rfc4122",
		"json.match_schema", "json.verify_schema", "print", "internal.print", "trace":
		return true
	}
	return false
}

// capabilities are this OPA version's, without the refused builtins and
// with no network host allowed.
func capabilities() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	keep := c.Builtins[:0]
	for _, b := range c.Builtins {
		if !refused(b.Name) {
			keep = append(keep, b)
		}
	}
	c.Builtins = keep
	c.AllowNet = []string{}
	return c
}

// Options configures an Engine.
type Options struct {
	// Module is the Rego source (Rego v1); "" means the embedded default
	// policy.
	Module string
	// ModuleName names the module in compile errors, usually its file
	// path; "" means "default.rego" for the default policy and
	// "policy.rego" otherwise. Reload keeps it.
	ModuleName string
	// Reference are the reference values, at data.trustgate.reference;
	// nil means an empty set (the default policy then denies everything).
	Reference *refvalues.Set
	// Now is the evaluation time (time.now_ns() and the expiry of
	// reference values); nil means time.Now.
	Now func() time.Time
	// TrustKey, if not nil, is the key reference-values files must be
	// signed with (refvalues.ReadSigned): Watch loads a file only with a
	// valid detached signature beside it. nil: files are not signed.
	TrustKey *ecdsa.PublicKey
	// AdmitReference, if not nil, is asked before a reference-values file
	// is loaded (by Watch; New's Reference is the caller's to check): an
	// error refuses the file as a *FileError of kind "rollback" (its
	// message names versions only). nil: every valid file is loaded.
	AdmitReference func(ctx context.Context, s *refvalues.Set) error
	// AwaitOverlay makes Evaluate refuse (store_unavailable) until the
	// first SetOverlay: a verifier whose admin layer lives in Redis must
	// not appraise before it knows what was withdrawn. false: the layer
	// starts empty.
	AwaitOverlay bool
}

// Engine evaluates the active policy. It is safe for concurrent use.
type Engine struct {
	name    string
	now     func() time.Time
	trust   *ecdsa.PublicKey
	admit   func(ctx context.Context, s *refvalues.Set) error
	cur     atomic.Pointer[prepared]
	lastErr atomic.Pointer[error]
	fields  fieldCache

	// The inputs of the active policy: the last good module and file set,
	// and the admin layer; mu serialises changes to them.
	mu       sync.Mutex
	module   string
	file     *refvalues.Set
	overlay  *refvalues.Overlay
	awaiting atomic.Bool
}

type prepared struct {
	q  rego.PreparedEvalQuery
	id string
	// reasons are the policy's own reason codes it declares
	// (ReasonCodesQuery), sorted; no others leave the engine.
	reasons []string
	// fast decides for q when q is the default policy (nil otherwise).
	fast *fastPath
	// readsLaunch is set unless the module certainly never reads
	// input.launch (readsLaunch).
	readsLaunch bool
}

// New compiles the policy and prepares its query once. A module that does
// not parse or compile, or calls a refused builtin, is an error.
func New(ctx context.Context, o Options) (*Engine, error) {
	e := &Engine{name: o.ModuleName, now: o.Now, trust: o.TrustKey, admit: o.AdmitReference, module: o.Module, file: o.Reference}
	if e.now == nil {
		e.now = time.Now
	}
	e.awaiting.Store(o.AwaitOverlay)
	p, err := prepare(ctx, o.Module, e.name, o.Reference)
	if err != nil {
		return nil, err
	}
	e.cur.Store(p)
	return e, nil
}

// Reload compiles module ("" = the default policy) with the reference
// values ref (nil = none) and swaps them in atomically; evaluations already
// running finish on the old ones. On error the old policy stays, the error
// is returned, and LastError reports it until a reload succeeds.
//
// The admin layer (SetOverlay) stays over the new reference values.
func (e *Engine) Reload(ctx context.Context, module string, ref *refvalues.Set) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := prepare(ctx, module, e.name, ref.WithOverlay(e.overlay))
	if err != nil {
		e.fail(err)
		return err
	}
	e.module, e.file = module, ref
	e.cur.Store(p)
	e.lastErr.Store(nil)
	return nil
}

// SetOverlay puts the admin layer o (nil: none) over the reference values
// of the last good file and swaps the result in atomically; it changes
// the appraisal-policy-id as any change of reference values does. On
// error (which a valid layer does not cause) the active policy stays.
func (e *Engine) SetOverlay(ctx context.Context, o *refvalues.Overlay) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := prepare(ctx, e.module, e.name, e.file.WithOverlay(o))
	if err != nil {
		return err
	}
	e.overlay = o
	e.cur.Store(p)
	e.awaiting.Store(false)
	return nil
}

// Reference returns the reference values of the last good file (nil:
// none), the admin layer over them (nil: none) and the effective set the
// active policy sees, with the appraisal-policy-id of that policy. The
// results are shared: do not modify them.
func (e *Engine) Reference() (file *refvalues.Set, overlay *refvalues.Overlay, effective *refvalues.Set, id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	eff := e.file.WithOverlay(e.overlay)
	if eff == nil {
		eff = &refvalues.Set{}
	}
	return e.file, e.overlay, eff, e.ID()
}

// Awaiting reports whether the Engine waits for its first SetOverlay
// (Options.AwaitOverlay) and so refuses every evaluation.
func (e *Engine) Awaiting() bool { return e.awaiting.Load() }

// LastError is the error of the last failed reload, a *FileError that
// names the file, the kind of error and its line and column but quotes
// nothing of the file (so /readyz can show it), or nil if the last reload
// succeeded or none failed yet.
func (e *Engine) LastError() error {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// fail records err (a *FileError, or an error compiling the policy) as
// the last error.
func (e *Engine) fail(err error) {
	name := e.name
	if name == "" {
		name = "policy.rego"
	}
	err = PolicyError(name, err)
	e.lastErr.Store(&err)
}

// ID is the appraisal-policy-id of the active policy: "sha256:" and the
// lowercase hex SHA-256 of the policy source and the canonical JSON of the
// reference values. It changes whenever either changes.
func (e *Engine) ID() string { return e.cur.Load().id }

func prepare(ctx context.Context, module, name string, ref *refvalues.Set) (*prepared, error) {
	if module == "" {
		module = defaultModule
		if name == "" {
			name = "default.rego"
		}
	}
	if name == "" {
		name = "policy.rego"
	}
	refJSON, refDoc, err := referenceDoc(ref)
	if err != nil {
		return nil, err
	}
	// AST values on read: the reference values are not converted from Go
	// values again at every evaluation.
	store := inmem.NewFromObjectWithOpts(map[string]any{"trustgate": map[string]any{"reference": refDoc}}, inmem.OptReturnASTValuesOnRead(true))
	r := rego.New(
		rego.Query(Query),
		rego.Module(name, module),
		rego.Store(store),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Capabilities(capabilities()),
		rego.StrictBuiltinErrors(true),
		rego.EnablePrintStatements(false), // print() calls are compiled away
	)
	q, err := r.PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	reasons, err := declaredReasons(ctx, module, name)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "trustgate policy\x00%d\x00", len(module))
	h.Write([]byte(module))
	fmt.Fprintf(h, "\x00reference\x00%d\x00", len(refJSON))
	h.Write(refJSON)
	return &prepared{q: q, id: "sha256:" + hex.EncodeToString(h.Sum(nil)), reasons: reasons, fast: compileFastPath(module, ref), readsLaunch: readsLaunch(name, module)}, nil
}

// declaredReasons evaluates ReasonCodesQuery of module once, with no input
// and no reference values, so that the codes are fixed by the module's
// text. Undefined means none; anything but strings of the form
// policy_[a-z0-9_]{1,40}, or more than MaxReasonCodes, is an error.
func declaredReasons(ctx context.Context, module, name string) ([]string, error) {
	rs, err := rego.New(
		rego.Query(ReasonCodesQuery),
		rego.Module(name, module),
		rego.SetRegoVersion(ast.RegoV1),
		rego.Capabilities(capabilities()),
		rego.StrictBuiltinErrors(true),
		rego.EnablePrintStatements(false),
	).Eval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %s: %w", name, ReasonCodesQuery, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	list, ok := rs[0].Expressions[0].Value.([]any)
	if !ok {
		return nil, fmt.Errorf("policy %s: %s is not a set or array of strings", name, ReasonCodesQuery)
	}
	codes := make([]string, len(list))
	for i, x := range list {
		if codes[i], ok = x.(string); !ok {
			return nil, fmt.Errorf("policy %s: %s: element %d is not a string", name, ReasonCodesQuery, i+1)
		}
	}
	out, err := ParseReasonCodes(codes)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %s: %w", name, ReasonCodesQuery, err)
	}
	return out, nil
}

// ReasonCodes returns the own reason codes the active policy declares
// (ReasonCodesQuery), sorted; nil if none.
func (e *Engine) ReasonCodes() []string { return slices.Clone(e.cur.Load().reasons) }

// dropUndeclared replaces every policy_* reason of d that is not in
// declared (sorted) by a string that is no reason code, so that
// Decision.Err drops it.
func dropUndeclared(declared []string, d attest.Decision) attest.Decision {
	for i, r := range d.Reasons {
		if attest.Reason(r).PolicyOwn() {
			if _, ok := slices.BinarySearch(declared, r); !ok {
				d.Reasons[i] = undeclaredReason
			}
		}
	}
	return d
}

// ParseReasonCodes checks a declared list of a policy's own reason codes:
// each of the form policy_[a-z0-9_]{1,40}, at most MaxReasonCodes. It
// returns them sorted, without repeats.
func ParseReasonCodes(codes []string) ([]string, error) {
	out := make([]string, 0, len(codes))
	for i, c := range codes {
		if !attest.Reason(c).PolicyOwn() {
			return nil, fmt.Errorf("reason code %d is not of the form policy_[a-z0-9_]{1,40}", i+1)
		}
		out = append(out, c)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) > MaxReasonCodes {
		return nil, fmt.Errorf("%d reason codes, at most %d", len(out), MaxReasonCodes)
	}
	return out, nil
}

// undeclaredReason stands for a reason the policy did not declare.
const undeclaredReason = "(undeclared)"

// readsLaunch reports whether module may read input.launch: true when it
// refers to input.launch, to input as a whole, or to input[x] with x not
// a constant string (or when it does not parse). The default policy does
// not (its input[rtmr_keys[i]] names RTMR claims only).
func readsLaunch(name, module string) bool {
	if module == defaultModule {
		return false
	}
	m, err := ast.ParseModuleWithOpts(name, module, ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return true
	}
	reads := false
	ast.WalkRefs(m, func(r ast.Ref) bool {
		if !r[0].Equal(ast.InputRootDocument) {
			return false
		}
		if len(r) == 1 {
			reads = true
			return true
		}
		if k, ok := r[1].Value.(ast.String); !ok || k == "launch" {
			reads = true
		}
		return reads
	})
	return reads
}

// IgnoresLaunch reports whether the policy in force never reads
// input.launch (see readsLaunch), so that the verifier need not read a
// launch's record before asking it.
func (e *Engine) IgnoresLaunch() bool { return !e.cur.Load().readsLaunch }

// referenceDoc returns the canonical JSON of ref (nil = empty set; no
// measurements is [], never null) and the same as an OPA data document.
func referenceDoc(ref *refvalues.Set) ([]byte, any, error) {
	s := refvalues.Set{}
	if ref != nil {
		s = *ref
	}
	if s.Measurements == nil {
		s.Measurements = []refvalues.Measurement{}
	}
	b, err := json.Marshal(s)
	if err != nil {
		return nil, nil, fmt.Errorf("reference values: %w", err)
	}
	var doc any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("reference values: %w", err)
	}
	return b, doc, nil
}

// Evaluate runs the active policy on the claims of one verified report or
// quote (attest.Claims for SEV-SNP, attest.TDXClaims for TDX; the input is
// their JSON form, "tee" naming which). A
// clean verdict (allow or deny) comes back as a Decision, with nil error;
// Decision.Err turns a deny into an *attest.Error. An undefined decision, a
// decision of the wrong shape or an evaluation error (builtin errors are
// strict) comes back as an *attest.Error with reason policy_denied: the
// policy fails closed. A nil c is an internal_error.
func (e *Engine) Evaluate(ctx context.Context, c attest.Verified) (attest.Decision, error) {
	if c == nil || reflect.ValueOf(c).IsNil() {
		return attest.Decision{}, attest.Errorf(attest.ReasonInternalError, "policy: no claims")
	}
	// The default policy's own decisions without OPA (fastpath.go); what
	// the fast path does not decide, and every error, goes on below.
	if p := e.cur.Load(); p.fast != nil && ctx.Err() == nil && !e.awaiting.Load() {
		if d, ok := p.fast.evaluate(c, e.now()); ok {
			return d, nil
		}
	}
	v, err := e.fields.inputValue(reflect.ValueOf(c))
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonInternalError, "%w", err)
	}
	return e.evaluate(ctx, v)
}

// EvaluateJSON is Evaluate on claims given as a JSON object (for
// `trustgate policy eval`). Claims that are not a JSON object are
// malformed_evidence.
func (e *Engine) EvaluateJSON(ctx context.Context, claims []byte) (attest.Decision, error) {
	v, err := ast.ValueFromReader(bytes.NewReader(claims))
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonMalformedEvidence, "claims: %w", err)
	}
	if _, ok := v.(ast.Object); !ok {
		return attest.Decision{}, attest.Errorf(attest.ReasonMalformedEvidence, "claims: not a JSON object")
	}
	return e.evaluate(ctx, v)
}

func (e *Engine) evaluate(ctx context.Context, v ast.Value) (attest.Decision, error) {
	// The evaluation stops when ctx ends. OPA would otherwise start a
	// goroutine per evaluation to watch ctx; context.AfterFunc registers
	// the same stop without one (and with nothing at all for a context
	// that cannot end).
	if err := ctx.Err(); err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy evaluation: %w", err)
	}
	if e.awaiting.Load() {
		return attest.Decision{}, attest.Errorf(attest.ReasonStoreUnavailable, "policy: the admin reference values are not loaded from the store yet")
	}
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	defer stop()
	p := e.cur.Load()
	rs, err := p.q.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTime(e.now()), rego.EvalExternalCancel(c))
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy evaluation: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy decision %s is undefined", Query)
	}
	d, err := parseDecision(rs[0].Expressions[0].Value)
	if err != nil {
		return d, err
	}
	return dropUndeclared(p.reasons, d), nil
}

// parseDecision checks the decision's shape: "allow" a boolean, "reasons"
// and "resources" lists of strings, "label" a string, nothing else, and
// no reasons with an allow (an ambiguous decision is policy_denied). A
// deny without reasons gets policy_denied.
func parseDecision(v any) (attest.Decision, error) {
	bad := func(what string) (attest.Decision, error) {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy decision: %s", what)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return bad("not an object")
	}
	for k := range m {
		switch k {
		case "allow", "reasons", "label", "resources":
		default:
			return bad(fmt.Sprintf("unknown key %q", k))
		}
	}
	var d attest.Decision
	if d.Allow, ok = m["allow"].(bool); !ok {
		return bad(`"allow" is not a boolean`)
	}
	strs := func(key string) ([]string, bool) {
		raw, present := m[key]
		if !present {
			return nil, true
		}
		list, ok := raw.([]any)
		if !ok {
			return nil, false
		}
		out := make([]string, 0, len(list))
		for _, x := range list {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, true
	}
	if d.Reasons, ok = strs("reasons"); !ok {
		return bad(`"reasons" is not a list of strings`)
	}
	if d.Resources, ok = strs("resources"); !ok {
		return bad(`"resources" is not a list of strings`)
	}
	if l, present := m["label"]; present {
		if d.Label, ok = l.(string); !ok {
			return bad(`"label" is not a string`)
		}
	}
	if d.Allow && len(d.Reasons) > 0 {
		// An allow that gives reasons to deny is ambiguous: deny.
		return bad(`"allow" is true but "reasons" are given`)
	}
	if d.Reasons == nil {
		d.Reasons = []string{}
	}
	if !d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{string(attest.ReasonPolicyDenied)}
	}
	return d, nil
}
