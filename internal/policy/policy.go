package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
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

// unsafeBuiltins are refused in every policy: network access, the runtime
// environment, and randomness that would make decisions irreproducible.
var unsafeBuiltins = []string{
	"http.send", "net.lookup_ip_addr", "opa.runtime", "rand.intn", "uuid.rfc4122", "trace", "print",
}

// Options configures an Engine.
type Options struct {
	// Module is the Rego source; "" means the embedded default policy.
	Module string
	// ModuleName names it in messages; "" means "default.rego" or
	// "policy.rego".
	ModuleName string
	// Reference are the reference values; nil means none.
	Reference *refvalues.Set
	// Now is the evaluation time (time.now_ns()); nil means time.Now.
	Now func() time.Time
}

// Engine evaluates the active policy. It is safe for concurrent use.
type Engine struct {
	now     func() time.Time
	cur     atomic.Pointer[prepared]
	lastErr atomic.Pointer[error]
	fields  fieldCache
}

type prepared struct {
	q  rego.PreparedEvalQuery
	id string
}

// New compiles and prepares the policy.
func New(ctx context.Context, o Options) (*Engine, error) {
	e := &Engine{now: o.Now}
	if e.now == nil {
		e.now = time.Now
	}
	p, err := prepare(ctx, o.Module, o.ModuleName, o.Reference)
	if err != nil {
		return nil, err
	}
	e.cur.Store(p)
	return e, nil
}

// Reload compiles a new policy and reference values and swaps them in
// atomically. On error the old policy stays, and LastError reports it.
func (e *Engine) Reload(ctx context.Context, module, name string, ref *refvalues.Set) error {
	p, err := prepare(ctx, module, name, ref)
	if err != nil {
		e.lastErr.Store(&err)
		return err
	}
	e.cur.Store(p)
	e.lastErr.Store(nil)
	return nil
}

// LastError is the error of the last failed reload, or nil if the last
// reload (or none) succeeded.
func (e *Engine) LastError() error {
	if p := e.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// ID is the appraisal-policy-id of the active policy: "sha256:" and the
// digest of the policy source and the canonical reference values.
func (e *Engine) ID() string { return e.cur.Load().id }

func prepare(ctx context.Context, module, name string, ref *refvalues.Set) (*prepared, error) {
	if module == "" {
		module, name = defaultModule, "default.rego"
	}
	if name == "" {
		name = "policy.rego"
	}
	if ref == nil {
		ref = &refvalues.Set{}
	}
	refJSON, err := json.Marshal(ref)
	if err != nil {
		return nil, err
	}
	var refDoc any
	if err := util.UnmarshalJSON(refJSON, &refDoc); err != nil {
		return nil, err
	}
	unsafe := make(map[string]struct{}, len(unsafeBuiltins))
	for _, b := range unsafeBuiltins {
		unsafe[b] = struct{}{}
	}
	r := rego.New(
		rego.Query(Query),
		rego.Module(name, module),
		rego.Store(inmem.NewFromObject(map[string]any{"reference_values": refDoc})),
		rego.StrictBuiltinErrors(true),
		rego.UnsafeBuiltins(unsafe),
		rego.SetRegoVersion(ast.RegoV1),
	)
	q, err := r.PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("policy %s: %w", name, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "policy:%d:", len(module))
	h.Write([]byte(module))
	h.Write([]byte("\nreference:"))
	h.Write(refJSON)
	return &prepared{q: q, id: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// Evaluate runs the active policy on c. A clean verdict (allow or deny)
// comes back as a Decision; an undefined decision, a wrong shape or an
// evaluation error as an *attest.Error with reason policy_denied.
func (e *Engine) Evaluate(ctx context.Context, c *attest.Claims) (attest.Decision, error) {
	v, err := e.fields.inputValue(reflect.ValueOf(c))
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonInternalError, "%w", err)
	}
	return e.evaluate(ctx, v)
}

// EvaluateJSON runs the active policy on claims given as JSON (for
// `trustgate policy eval`).
func (e *Engine) EvaluateJSON(ctx context.Context, claims []byte) (attest.Decision, error) {
	v, err := ast.ValueFromReader(bytes.NewReader(claims))
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonMalformedEvidence, "claims: %w", err)
	}
	return e.evaluate(ctx, v)
}

func (e *Engine) evaluate(ctx context.Context, v ast.Value) (attest.Decision, error) {
	rs, err := e.cur.Load().q.Eval(ctx, rego.EvalParsedInput(v), rego.EvalTime(e.now()))
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy evaluation: %w", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy decision is undefined")
	}
	return parseDecision(rs[0].Expressions[0].Value)
}

func parseDecision(v any) (attest.Decision, error) {
	bad := func(what string) (attest.Decision, error) {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "policy decision: %s", what)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return bad("not an object")
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
	if !d.Allow && len(d.Reasons) == 0 {
		d.Reasons = []string{string(attest.ReasonPolicyDenied)}
	}
	return d, nil
}
