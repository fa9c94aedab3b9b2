package docs

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// The documents whose links are kept: the front door, the pages under docs/
// and the testing notes.
func documents(t *testing.T) []string {
	t.Helper()
	pages, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 5 {
		t.Fatalf("docs/ holds %d pages; expected the documentation here", len(pages))
	}
	return append([]string{"../README.md", "../TESTING.md"}, pages...)
}

func TestRelativeLinksResolve(t *testing.T) {
	anchors := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := anchors[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		a := headingAnchors(string(b))
		anchors[path] = a
		return a, nil
	}
	checked := 0
	for _, doc := range documents(t) {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links(string(b)) {
			checked++
			if err := resolve(doc, l.target, anchorsOf); err != nil {
				t.Errorf("%s:%d: link %q: %v", doc, l.line, l.target, err)
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d relative links found: the link parser is broken", checked)
	}
}

// A broken file, a broken anchor and a link inside code are told apart.
func TestLinkCheckerCatchesBrokenLinks(t *testing.T) {
	dir := t.TempDir()
	page := filepath.Join(dir, "page.md")
	if err := os.WriteFile(page, []byte("# A page\n\n## Known agents only\n\n## `trustgate verify`\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "see [ok](page.md#known-agents-only), [cmd](page.md#trustgate-verify), [gone](nope.md),\n" +
		"[bad anchor](page.md#known-agents), [self](#here) and `[in code](nope2.md)`\n\n```\n[fenced](nope3.md)\n```\n# Here\n" +
		"[web](https://example.org/x.md)\n"
	doc := filepath.Join(dir, "doc.md")
	if err := os.WriteFile(doc, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	anchorsOf := func(path string) (map[string]bool, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		return headingAnchors(string(b)), nil
	}
	var broken []string
	for _, l := range links(src) {
		if err := resolve(doc, l.target, anchorsOf); err != nil {
			broken = append(broken, l.target)
		}
	}
	if got, want := strings.Join(broken, " "), "nope.md page.md#known-agents"; got != want {
		t.Errorf("broken links found: %q, want %q", got, want)
	}
}

func TestHeadingAnchorsAsGitHub(t *testing.T) {
	got := headingAnchors("# Intel collateral service (PCS)\n## Agent: `--tee auto|sev-snp|tdx`\n" +
		"### The CI flow: build → measure → sign → apply\n## Tests\n## Tests\n")
	for _, want := range []string{"intel-collateral-service-pcs", "agent---tee-autosev-snptdx",
		"the-ci-flow-build--measure--sign--apply", "tests", "tests-1"} {
		if !got[want] {
			t.Errorf("anchor %q missing from %v", want, got)
		}
	}
}

type link struct {
	target string
	line   int
}

var linkRE = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// links returns the relative link targets of a Markdown text, outside code
// fences and code spans.
func links(src string) []link {
	var out []link
	fenced := false
	for i, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatchIndex(line, -1) {
			if strings.Count(line[:m[0]], "`")%2 == 1 {
				continue // inside a code span
			}
			target := line[m[2]:m[3]]
			if u, err := url.Parse(target); err == nil && u.Scheme != "" {
				continue
			}
			out = append(out, link{target, i + 1})
		}
	}
	return out
}

func resolve(doc, target string, anchorsOf func(string) (map[string]bool, error)) error {
	file, anchor, _ := strings.Cut(target, "#")
	path := doc
	if file != "" {
		path = filepath.Join(filepath.Dir(doc), filepath.FromSlash(file))
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("no such file %s", path)
		}
	}
	if anchor == "" {
		return nil
	}
	if !strings.HasSuffix(path, ".md") {
		return fmt.Errorf("an anchor into %s, which is not Markdown", path)
	}
	a, err := anchorsOf(path)
	if err != nil {
		return err
	}
	if !a[anchor] {
		return fmt.Errorf("%s has no heading with anchor #%s", path, anchor)
	}
	return nil
}

// headingAnchors returns the anchors GitHub gives the headings of a Markdown
// text: lower case, letters, digits, '-' and '_' kept, spaces made '-', every
// other character dropped; a repeated anchor gets -1, -2, ...
func headingAnchors(src string) map[string]bool {
	seen := map[string]int{}
	out := map[string]bool{}
	fenced := false
	for _, line := range strings.Split(src, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		text := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(text, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(text)) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		slug := b.String()
		if n := seen[slug]; n > 0 {
			out[fmt.Sprintf("%s-%d", slug, n)] = true
		} else {
			out[slug] = true
		}
		seen[slug]++
	}
	return out
}
