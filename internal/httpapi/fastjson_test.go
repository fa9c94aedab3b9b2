package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	v1 "github.com/trustgate/trustgate/api/v1"
)

// fastSeeds are bodies fastAttest takes and bodies it leaves to
// strictJSON, accepted and refused ones.
func fastSeeds(f interface{ Add(...any) }) {
	jwk := `{"kty":"EC","crv":"P-256","x":"` + strings.Repeat("A", 43) + `","y":"` + strings.Repeat("B", 43) + `"}`
	nonce := strings.Repeat("A", 86) + "=="
	for _, s := range []string{
		`{"nonce":"` + nonce + `","tee":"sev-snp","evidence":{"report":"AAAA","cert_table":""},"tee_pubkey":` + jwk + `}`,
		" \t\r\n{ \"nonce\" : \"" + nonce + "\" , \"evidence\" : { \"quote\" : \"AQID\" } , \"tee\" : \"tdx\" } \n",
		`{"nonce":"` + nonce + `","tee":"nitro","evidence":{"document":"hEShATgioFkB"}}`, `{"evidence":{"document":"AAAA","document":"AAAA"}}`,
		`{}`, `{"evidence":{}}`, `{"tee_pubkey":{}}`, `{"tee_pubkey":{"a":[1,{"b":null}],"c":"d"}}`,
		`{"nonce":null}`, `{"Nonce":"AAAA"}`, `{"NONCE":"AAAA","TEE":"x"}`, `{"tee":"sev\u002dsnp"}`, `{"tee":"s\\"}`,
		`{"tee":"a","tee":"b"}`, `{"evidence":{"report":"AAAA"},"evidence":{"quote":"AAAA"}}`,
		`{"nonce":"AAA"}`, `{"nonce":"AA=A"}`, "{\"nonce\":\"AA\nAA\"}", "{\"nonce\":\"AA\\nAA\"}", `{"nonce":"AAAA",}`,
		`{"extra":1}`, `{"evidence":{"extra":""}}`, `{} {}`, `{}}`, `{}]`, `{"tee_pubkey":null}`, `{"tee_pubkey":"k"}`,
		`{"tee_pubkey":{"a":}}`, `{"tee_pubkey":{"a":1}}}`, `{"tee_pubkey":[]}`, `{"tee":"é"}`, `{"tee":1}`,
		`{"evidence":null}`, `{"evidence":[]}`, `{"nonce":"AAAA"`, `{"nonce"`, `{`, ``, `null`, `{"tee":"x"`,
	} {
		f.Add([]byte(s))
	}
}

// FuzzFastAttestAgrees: what fastAttest decodes, strictJSON (one object,
// no unknown fields, nothing after it) decodes to the same request; what
// strictJSON refuses, fastAttest never takes.
func FuzzFastAttestAgrees(f *testing.F) {
	fastSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast v1.AttestRequest
		if !fastAttest(bytes.Clone(body), &fast) {
			return
		}
		var want v1.AttestRequest
		if err := strictJSON(body, &want); err != nil {
			t.Fatalf("fastAttest took %q, strictJSON refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, want) {
			t.Fatalf("body %q: fastAttest %+v, strictJSON %+v", body, fast, want)
		}
	})
}

// The bodies agents send take the fast path (the client's JSON encoding
// of a request, with and without a key and a cert table), whitespace
// around tokens too; the others are strictJSON's.
func TestFastAttestTakesAgentBodies(t *testing.T) {
	t.Parallel()
	jwk := json.RawMessage(`{"kty":"EC","crv":"P-384","x":"` + strings.Repeat("A", 64) + `","y":"` + strings.Repeat("B", 64) + `"}`)
	for _, req := range []v1.AttestRequest{
		{Nonce: make([]byte, 64), TEE: "sev-snp", Evidence: v1.Evidence{Report: make([]byte, 1184), CertTable: make([]byte, 5000)}, TEEPubKey: jwk},
		{Nonce: make([]byte, 64), TEE: "sev-snp", Evidence: v1.Evidence{Report: make([]byte, 1184)}},
		{Nonce: make([]byte, 64), TEE: "tdx", Evidence: v1.Evidence{Quote: make([]byte, 5000)}, TEEPubKey: jwk},
		{Nonce: make([]byte, 64), TEE: "nitro", Evidence: v1.Evidence{Document: make([]byte, 4500)}, TEEPubKey: jwk},
	} {
		for _, indent := range []bool{false, true} {
			b, err := json.Marshal(req)
			if indent {
				b, err = json.MarshalIndent(req, " ", "\t")
			}
			if err != nil {
				t.Fatal(err)
			}
			var got v1.AttestRequest
			if !fastAttest(b, &got) {
				t.Fatalf("not taken: %.200s", b)
			}
			if want := req; !reflect.DeepEqual(got, want) && !indent {
				t.Fatalf("decoded %+v", got)
			}
		}
	}
	var r v1.AttestRequest
	if fastAttest([]byte(`{"nonce":null}`), &r) || fastAttest([]byte(`{"Nonce":"AAAA"}`), &r) {
		t.Fatal("took a body for strictJSON")
	}
}

// readAll reads what io.ReadAll reads, whatever length was announced
// (none, the right one, too short, too long), and stops at the body limit.
func TestReadAll(t *testing.T) {
	t.Parallel()
	for _, size := range []int{0, 1, 511, 7000, v1.MaxBodySize} {
		body := bytes.Repeat([]byte{'x'}, size)
		for _, announced := range []int64{-1, 0, int64(size), int64(size) / 2, int64(size) + 100, v1.MaxBodySize + 1} {
			got, err := readAll(iotest.OneByteReader(bytes.NewReader(body)), announced)
			if err != nil || !bytes.Equal(got, body) {
				t.Errorf("size %d, announced %d: %d bytes, %v", size, announced, len(got), err)
			}
		}
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodPost, v1.PathAttest, bytes.NewReader(make([]byte, v1.MaxBodySize+1)))
	if _, ok := readBody(w, r); ok || w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %v, %d", ok, w.Code)
	}
}
