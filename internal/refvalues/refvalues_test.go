package refvalues

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const (
	valA = "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e"
	valB = "803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977"
)

func TestParse(t *testing.T) {
	t.Parallel()
	exp := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		format   Format
		in       string
		problems []string // substrings, one per expected problem; nil: valid
		check    func(t *testing.T, s *Set)
	}{
		{name: "SPEC example YAML", format: YAML, in: `
measurements:
  - value: "` + valA + `"
    label: "build-2026.11.3"
    expires: "2027-01-01T00:00:00Z"
    resources: ["db-password"]
min_tcb: {bootloader: 1, tee: 2, snp: 3, microcode: 4}
allowed_vmpl: [0, 1]
`, check: func(t *testing.T, s *Set) {
			m := s.Measurements[0]
			if m.Value != valA || m.Label != "build-2026.11.3" || m.Expires == nil || !m.Expires.Equal(exp) ||
				len(m.Resources) != 1 || m.Resources[0] != "db-password" {
				t.Errorf("measurement = %+v", m)
			}
			if s.MinTCB == nil || *s.MinTCB != (TCB{Bootloader: 1, TEE: 2, SNP: 3, Microcode: 4}) {
				t.Errorf("min_tcb = %+v", s.MinTCB)
			}
			if got := s.VMPLs(); len(got) != 2 || got[1] != 1 {
				t.Errorf("VMPLs = %v", got)
			}
		}},
		{name: "JSON with fmc", format: JSON, in: `{"measurements":[{"value":"` + valB + `","label":"b","expires":"2027-01-01T00:00:00Z"}],"min_tcb":{"bootloader":0,"tee":0,"snp":0,"microcode":0,"fmc":1}}`,
			check: func(t *testing.T, s *Set) {
				if s.MinTCB.FMC != 1 || !s.Measurements[0].Expires.Equal(exp) {
					t.Errorf("set = %+v", s)
				}
				if got := s.VMPLs(); len(got) != 1 || got[0] != 0 {
					t.Errorf("default VMPLs = %v, want [0]", got)
				}
			}},
		{name: "empty file", format: YAML, in: "  \n", check: func(t *testing.T, s *Set) {
			if len(s.Measurements) != 0 {
				t.Errorf("measurements = %v", s.Measurements)
			}
		}},
		{name: "every problem at once", format: YAML, in: `
measurements:
  - {value: "` + strings.ToUpper(valA) + `", label: "a"}
  - {value: "abc", label: ""}
  - {value: "` + valB + `", label: "a", resources: [""]}
allowed_vmpl: [0, 4, -1]
`, problems: []string{"lowercase hex", "abc", "label is empty", `repeats measurements[0]`, "resources[0] is empty",
			"allowed_vmpl[1]", "allowed_vmpl[2]"}},
		{name: "unknown key YAML", format: YAML, in: "measurement: []\n", problems: []string{"decoding"}},
		{name: "unknown key JSON", format: JSON, in: `{"min_tcbs":{}}`, problems: []string{"decod"}},
		{name: "TCB out of range", format: YAML, in: "min_tcb: {snp: 300}\n", problems: []string{"decod"}},
		{name: "bad expiry", format: YAML, in: "measurements: [{value: \"" + valA + "\", label: a, expires: tomorrow}]\n", problems: []string{"decod"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, err := Parse([]byte(tc.in), tc.format)
			if tc.problems == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				tc.check(t, s)
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted %q", tc.in)
			}
			var ve *ValidationError
			if errors.As(err, &ve) && len(ve.Problems) != len(tc.problems) {
				t.Errorf("got %d problems %q, want %d", len(ve.Problems), ve.Problems, len(tc.problems))
			}
			for _, p := range tc.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q lacks %q", err, p)
				}
			}
		})
	}
}

const yamlWithComments = `# Approved builds for the payments service.
measurements:
  # the build in production
  - value: "` + valA + `"
    label: build-1 # first
    resources: [db-password]
min_tcb: {bootloader: 2, tee: 0, snp: 5, microcode: 68}
allowed_vmpl: [0] # only VMPL0
`

func TestAppend(t *testing.T) {
	t.Parallel()
	exp := time.Date(2027, 6, 1, 12, 0, 0, 0, time.UTC)
	newM := Measurement{Value: valB, Label: "build-2", Expires: &exp, Resources: []string{"api-key"}}
	tests := []struct {
		name     string
		file     string // name inside the temp dir
		existing *string
		m        Measurement
		wantErr  func(error) bool
		keep     []string // substrings the result must still hold
		count    int      // measurements after a successful Append
	}{
		{name: "YAML keeps entries, keys and comments", file: "rv.yaml", existing: ptr(yamlWithComments), m: newM,
			keep: []string{"# Approved builds for the payments service.", "# the build in production", "# first",
				"# only VMPL0", "label: build-1", "microcode: 68", valA, valB, "build-2", "2027-06-01T12:00:00Z", "api-key"}, count: 2},
		{name: "YAML created", file: "new.yml", m: newM, keep: []string{"measurements:", valB}, count: 1},
		{name: "YAML with empty list", file: "e.yaml", existing: ptr("measurements: []\nallowed_vmpl: [0]\n"), m: newM,
			keep: []string{valB, "allowed_vmpl"}, count: 1},
		{name: "YAML duplicate label refused", file: "rv.yaml", existing: ptr(yamlWithComments),
			m: Measurement{Value: valB, Label: "build-1"}, wantErr: isDuplicate},
		{name: "JSON keeps entries and keys", file: "rv.json",
			existing: ptr(`{"min_tcb": {"bootloader": 2, "tee": 0, "snp": 5, "microcode": 68}, "measurements": [{"value": "` + valA + `", "label": "build-1"}], "allowed_vmpl": [0, 1]}`),
			m:        newM, keep: []string{`"min_tcb"`, `"microcode": 68`, `"build-1"`, valA, valB, `"allowed_vmpl"`, "2027-06-01T12:00:00Z"}, count: 2},
		{name: "JSON created", file: "new.json", m: newM, keep: []string{`"measurements"`, valB}, count: 1},
		{name: "JSON duplicate label refused", file: "rv.json",
			existing: ptr(`{"measurements": [{"value": "` + valA + `", "label": "build-2"}]}`), m: newM, wantErr: isDuplicate},
		{name: "invalid value refused", file: "rv.yaml", m: Measurement{Value: "XYZ", Label: "x"}, wantErr: isValidation},
		{name: "empty label refused", file: "rv.json", m: Measurement{Value: valA}, wantErr: isValidation},
		{name: "invalid existing file not rewritten", file: "bad.yaml", existing: ptr("allowed_vmpl: [7]\n"), m: newM, wantErr: isValidation},
		{name: "unknown extension", file: "rv.txt", m: newM, wantErr: func(err error) bool { return err != nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), tc.file)
			if tc.existing != nil {
				if err := os.WriteFile(path, []byte(*tc.existing), 0o640); err != nil {
					t.Fatal(err)
				}
			}
			err := Append(path, tc.m)
			if tc.wantErr != nil {
				if !tc.wantErr(err) {
					t.Fatalf("Append error = %v", err)
				}
				got, _ := os.ReadFile(path)
				if tc.existing != nil && string(got) != *tc.existing {
					t.Errorf("file changed despite the error:\n%s", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(got), k) {
					t.Errorf("result lacks %q:\n%s", k, got)
				}
			}
			s, err := Load(path)
			if err != nil {
				t.Fatalf("Load after Append: %v\n%s", err, got)
			}
			last := s.Measurements[len(s.Measurements)-1]
			if last.Value != tc.m.Value || last.Label != tc.m.Label || !last.Expires.Equal(*tc.m.Expires) {
				t.Errorf("last measurement = %+v, want %+v", last, tc.m)
			}
			if len(s.Measurements) != tc.count {
				t.Errorf("%d measurements after Append, want %d: %+v", len(s.Measurements), tc.count, s.Measurements)
			}
			if tc.existing != nil {
				if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
					t.Errorf("mode = %v, want 0640", st.Mode().Perm())
				}
			}
		})
	}
}

func ptr(s string) *string { return &s }

func isDuplicate(err error) bool {
	var d *DuplicateLabelError
	return errors.As(err, &d)
}

func isValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

// SPEC "Intel TDX": an entry may say tee: tdx (its value is then MRTD) and
// pin RTMRs; tdx_tcb_status lists accepted Intel TCB statuses.
func TestParseTDX(t *testing.T) {
	t.Parallel()
	ok := `
measurements:
  - value: "` + valA + `"
    label: snp-build
  - tee: tdx
    value: "` + valB + `"
    label: td-build
    rtmr: ["", "` + valA + `"]
tdx_tcb_status: [UpToDate, SWHardeningNeeded]
`
	s, err := Parse([]byte(ok), YAML)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Measurements[1]; m.TEE != "tdx" || len(m.RTMR) != 2 || m.RTMR[1] != valA || s.Measurements[0].TEE != "" || len(s.TDXTCBStatus) != 2 {
		t.Fatalf("set %+v", s)
	}
	for name, bad := range map[string]string{
		"unknown tee":        `{"measurements":[{"tee":"sgx","value":"` + valA + `","label":"a"}]}`,
		"rtmr on SEV-SNP":    `{"measurements":[{"value":"` + valA + `","label":"a","rtmr":[""]}]}`,
		"five rtmr":          `{"measurements":[{"tee":"tdx","value":"` + valA + `","label":"a","rtmr":["","","","",""]}]}`,
		"rtmr not hex":       `{"measurements":[{"tee":"tdx","value":"` + valA + `","label":"a","rtmr":["ABCD"]}]}`,
		"unknown tcb status": `{"tdx_tcb_status":["UpToDat"]}`,
	} {
		var ve *ValidationError
		if _, err := Parse([]byte(bad), JSON); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a *ValidationError", name, err)
		}
	}
}
