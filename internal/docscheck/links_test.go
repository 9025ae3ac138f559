package docscheck

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// link is one Markdown link target found in a document.
type link struct {
	line   int    // 1-based line of the document
	target string // as written, e.g. "docs/a.md#b", "../x/", "#top"
}

var (
	// fence opens or closes a fenced code block (``` or ~~~, up to 3 spaces in).
	fence = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})")
	// codeSpan is an inline code span; links inside one are not links.
	codeSpan = regexp.MustCompile("(`+)[^`]*?(`+)")
	// inlineLink is [text](target "title") or ![alt](target), the text allowing one
	// level of nested brackets; the target may be written <in angle brackets>.
	inlineLink = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)`)
	// refDef is a reference definition: [label]: target "title".
	refDef = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)`)
	// atxHeading is "# Title", "## Title ##", ….
	atxHeading = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	// setextUnderline turns the line above it into a heading.
	setextUnderline = regexp.MustCompile(`^ {0,3}(=+|-+)[ \t]*$`)
	// scheme marks an absolute URL (https:, mailto:, …), which is not checked.
	scheme = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	// mdLinkText and htmlTag are removed from heading text before slugging.
	mdLinkText = regexp.MustCompile(`!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)`)
	htmlTag    = regexp.MustCompile(`<[^>]+>`)
)

// lines splits a document into lines and marks those inside fenced code blocks.
func lines(md string) (out []string, inCode []bool) {
	out = strings.Split(strings.ReplaceAll(md, "\r\n", "\n"), "\n")
	inCode = make([]bool, len(out))
	open := ""
	for i, l := range out {
		m := fence.FindStringSubmatch(l)
		switch {
		case open == "" && m != nil:
			open = m[1]
			inCode[i] = true
		case open != "":
			inCode[i] = true
			if m != nil && m[1][0] == open[0] && len(m[1]) >= len(open) && strings.TrimSpace(l[strings.Index(l, m[1])+len(m[1]):]) == "" {
				open = ""
			}
		}
	}
	return out, inCode
}

// extractLinks returns the link targets of a Markdown document, outside code
// blocks and code spans. Absolute URLs are included; callers skip them.
func extractLinks(md string) []link {
	ls, inCode := lines(md)
	var out []link
	for i, l := range ls {
		if inCode[i] {
			continue
		}
		l = codeSpan.ReplaceAllStringFunc(l, func(s string) string { return strings.Repeat(" ", len(s)) })
		if m := refDef.FindStringSubmatch(l); m != nil {
			out = append(out, link{i + 1, strings.Trim(m[1], "<>")})
			continue
		}
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			out = append(out, link{i + 1, strings.Trim(m[1], "<>")})
		}
	}
	return out
}

// slug is GitHub's anchor for a heading's text: markup removed, lower case,
// every character but letters, marks, digits, connector punctuation (_), spaces
// and hyphens dropped, spaces turned into hyphens.
func slug(heading string) string {
	s := mdLinkText.ReplaceAllString(heading, "$1")
	s = htmlTag.ReplaceAllString(s, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(s)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r) || unicode.Is(unicode.Pc, r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns every heading anchor of a Markdown document, with GitHub's
// -1, -2, … suffixes for repeated headings.
func anchors(md string) map[string]bool {
	ls, inCode := lines(md)
	seen := map[string]int{}
	out := map[string]bool{}
	add := func(text string) {
		s := slug(text)
		if n := seen[s]; n > 0 {
			out[fmt.Sprintf("%s-%d", s, n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	for i, l := range ls {
		if inCode[i] {
			continue
		}
		if m := atxHeading.FindStringSubmatch(l); m != nil && strings.HasPrefix(strings.TrimLeft(l, " "), "#") {
			add(m[1])
			continue
		}
		if i > 0 && !inCode[i-1] && setextUnderline.MatchString(l) {
			prev := strings.TrimSpace(ls[i-1])
			if prev != "" && !strings.HasPrefix(prev, "|") && !strings.HasPrefix(prev, "#") && !strings.HasPrefix(prev, "-") {
				add(prev)
			}
		}
	}
	return out
}

// checkLinks checks every relative link of the Markdown file rel (relative to
// root): its target must exist, lie inside root, and an #anchor into a
// Markdown file must name one of its headings. It returns one line per problem,
// "rel:line: target: why".
func checkLinks(root, rel string) ([]string, error) {
	src, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return nil, err
	}
	var problems []string
	bad := func(l link, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", rel, l.line, l.target, fmt.Sprintf(format, args...)))
	}
	cache := map[string]map[string]bool{}
	anchorsOf := func(path string) (map[string]bool, error) {
		if a, ok := cache[path]; ok {
			return a, nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		cache[path] = anchors(string(b))
		return cache[path], nil
	}
	absRoot, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	self := filepath.Join(absRoot, rel)
	for _, l := range extractLinks(string(src)) {
		if l.target == "" {
			bad(l, "empty link")
			continue
		}
		if scheme.MatchString(l.target) || strings.HasPrefix(l.target, "//") {
			continue // absolute URL
		}
		pathPart, frag, _ := strings.Cut(l.target, "#")
		if i := strings.IndexByte(pathPart, '?'); i >= 0 {
			pathPart = pathPart[:i]
		}
		p, err := url.PathUnescape(pathPart)
		if err != nil {
			bad(l, "bad escape: %v", err)
			continue
		}
		target := self
		if p != "" {
			if strings.HasPrefix(p, "/") {
				target = filepath.Join(absRoot, p)
			} else {
				target = filepath.Join(filepath.Dir(self), filepath.FromSlash(p))
			}
		}
		if r, err := filepath.Rel(absRoot, target); err != nil || r == ".." || strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			bad(l, "points outside the repository")
			continue
		}
		info, err := os.Stat(target)
		if err != nil {
			bad(l, "no such file or directory")
			continue
		}
		if frag == "" || info.IsDir() || !strings.EqualFold(filepath.Ext(target), ".md") {
			continue
		}
		a, err := anchorsOf(target)
		if err != nil {
			return nil, err
		}
		if want, _ := url.PathUnescape(frag); !a[want] {
			bad(l, "no heading with anchor #%s", frag)
		}
	}
	return problems, nil
}

// journalPhrases are phrases of a development journal, not of documentation:
// who worked on something, in which session, what it was before. Matched as
// whole words, ignoring case.
var journalPhrases = []string{
	`the lead`,
	`helpers?`,
	`this session(?:'s)?`,
	`(?:before|after) this work`,
	`we first tried`,
	`was fixed`,
	`(?:may|should|will) rerun`,
	`after the merge`,
	`this project's machines`,
	`in this (?:pr|pull request|commit|branch)`,
	`an earlier run`,
}

var journalRE = regexp.MustCompile(`(?i)\b(?:` + strings.Join(journalPhrases, "|") + `)\b`)

// journalProse returns "line: phrase" for every journal phrase in md.
func journalProse(md string) []string {
	var out []string
	for i, l := range strings.Split(md, "\n") {
		for _, m := range journalRE.FindAllString(l, -1) {
			out = append(out, fmt.Sprintf("%d: %q", i+1, m))
		}
	}
	return out
}
