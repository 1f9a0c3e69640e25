// Package notebook reads executed Jupyter notebooks and checks them for failures that
// the GoNB kernel does not report as errors.
//
// GoNB reports some failures as ordinary output: a compile error is an HTML display
// (class "gonb-err-..."), and a runtime panic or a non-zero exit prints to stderr; older
// GoNB versions report a panic as success. Check therefore inspects every output, not
// only error outputs. It also checks that the cells tagged "expect-image" displayed a
// PNG or SVG image.
package notebook

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// Tags understood by Check, set in a cell's metadata.tags.
const (
	// TagExpectImage marks a cell that must display at least one image.
	TagExpectImage = "expect-image"
	// TagExpectOutput marks a cell that must print or display something.
	TagExpectOutput = "expect-output"
)

// Notebook is the part of an .ipynb file (nbformat 4) that the checks read.
type Notebook struct {
	Cells    []Cell         `json:"cells"`
	Metadata map[string]any `json:"metadata"`
}

// Cell is one notebook cell.
type Cell struct {
	Type           string       `json:"cell_type"`
	Source         MultiString  `json:"source"`
	Metadata       CellMetadata `json:"metadata"`
	Outputs        []Output     `json:"outputs"`
	ExecutionCount *int         `json:"execution_count"`
}

// CellMetadata holds the tags and the execution timestamps nbclient records.
type CellMetadata struct {
	Tags      []string          `json:"tags"`
	Execution map[string]string `json:"execution"`
}

// Output is one output of a code cell.
type Output struct {
	Type  string                 `json:"output_type"`
	Name  string                 `json:"name"` // stream name: stdout or stderr
	Text  MultiString            `json:"text"`
	Data  map[string]MultiString `json:"data"`
	EName string                 `json:"ename"`
	Value string                 `json:"evalue"`
}

// MultiString is a notebook string field, stored either as one string or a list of lines.
type MultiString string

// UnmarshalJSON accepts a string or a list of strings.
func (m *MultiString) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*m = MultiString(s)
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err == nil {
		*m = MultiString(strings.Join(list, ""))
		return nil
	}
	// Some MIME types (application/json) hold objects: keep them as raw JSON text.
	*m = MultiString(b)
	return nil
}

// Read parses an .ipynb file.
func Read(path string) (*Notebook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data)
}

// Parse parses the JSON of an .ipynb file.
func Parse(data []byte) (*Notebook, error) {
	var nb Notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		return nil, fmt.Errorf("not a notebook: %w", err)
	}
	return &nb, nil
}

// HasTag reports whether the cell carries the tag.
func (c *Cell) HasTag(tag string) bool {
	for _, t := range c.Metadata.Tags {
		if t == tag {
			return true
		}
	}
	return false
}

// Duration returns how long the cell ran, from nbclient's timestamps (0 if absent).
func (c *Cell) Duration() time.Duration {
	start, err1 := time.Parse(time.RFC3339Nano, c.Metadata.Execution["iopub.execute_input"])
	end, err2 := time.Parse(time.RFC3339Nano, c.Metadata.Execution["shell.execute_reply"])
	if err1 != nil || err2 != nil || end.Before(start) {
		return 0
	}
	return end.Sub(start)
}

// Problem is one failure found in an executed notebook.
type Problem struct {
	Cell    int    // 1-based index among all cells
	Line    string // first line of the cell's source, to find it
	Message string
}

func (p Problem) String() string {
	return fmt.Sprintf("cell %d (%s): %s", p.Cell, p.Line, p.Message)
}

var (
	panicRe      = regexp.MustCompile(`(?m)^(panic: |fatal error: |\[signal )`)
	exitStatusRe = regexp.MustCompile(`(?m)^exit status ([0-9]+)\s*$`)
)

// Check returns the failures in an executed notebook: error outputs, compile errors,
// panics and non-zero exits in any output, code cells that did not run, and cells tagged
// TagExpectImage / TagExpectOutput that displayed no image / nothing.
func Check(nb *Notebook) []Problem {
	var problems []Problem
	for i := range nb.Cells {
		c := &nb.Cells[i]
		if c.Type != "code" {
			continue
		}
		add := func(format string, args ...any) {
			problems = append(problems, Problem{Cell: i + 1, Line: firstSourceLine(c), Message: fmt.Sprintf(format, args...)})
		}
		if c.ExecutionCount == nil && strings.TrimSpace(string(c.Source)) != "" {
			add("did not run")
		}
		images := 0
		for _, o := range c.Outputs {
			switch o.Type {
			case "error":
				add("error output: %s: %s", o.EName, firstLine(o.Value))
			case "stream":
				text := string(o.Text)
				if m := panicRe.FindString(text); m != "" {
					add("runtime failure on %s: %s", o.Name, excerpt(text, m))
				}
				for _, m := range exitStatusRe.FindAllStringSubmatch(text, -1) {
					if m[1] != "0" {
						add("program exited with status %s", m[1])
					}
				}
			case "display_data", "execute_result":
				if html, ok := o.Data["text/html"]; ok && strings.Contains(string(html), `class="gonb-err-`) {
					add("compile or runtime error displayed: %s", stripTags(string(html)))
				}
				for mime := range o.Data {
					if mime == "image/png" || mime == "image/svg+xml" || mime == "image/gif" || mime == "image/jpeg" {
						images++
					}
					if mime == "text/html" && strings.Contains(string(o.Data[mime]), "<img") {
						images++
					}
				}
			}
		}
		if c.HasTag(TagExpectImage) && images == 0 {
			add("tagged %q but displayed no image", TagExpectImage)
		}
		if c.HasTag(TagExpectOutput) && len(c.Outputs) == 0 {
			add("tagged %q but produced no output", TagExpectOutput)
		}
	}
	return problems
}

func firstSourceLine(c *Cell) string {
	for _, l := range strings.Split(string(c.Source), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 60 {
				l = l[:60] + "..."
			}
			return l
		}
	}
	return "empty"
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// excerpt returns the line holding match plus the next few lines of text.
func excerpt(text, match string) string {
	i := strings.Index(text, match)
	lines := strings.SplitN(text[i:], "\n", 4)
	if len(lines) > 3 {
		lines = lines[:3]
	}
	return strings.TrimSpace(strings.Join(lines, " | "))
}

var tagRe = regexp.MustCompile(`(?s)<style.*?</style>|<div class="gonb-err-context">.*?</div>|<[^>]+>`)

func stripTags(html string) string {
	s := tagRe.ReplaceAllString(html, " ")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// Title returns the text of the notebook's first Markdown heading, or "untitled".
func (nb *Notebook) Title() string {
	for _, c := range nb.Cells {
		if c.Type != "markdown" {
			continue
		}
		for _, l := range strings.Split(string(c.Source), "\n") {
			if strings.HasPrefix(l, "#") {
				return strings.TrimSpace(strings.TrimLeft(l, "#"))
			}
		}
	}
	return "untitled"
}

// Images counts the image outputs (PNG, SVG, GIF, JPEG) of all cells.
func (nb *Notebook) Images() int {
	n := 0
	for _, c := range nb.Cells {
		for _, o := range c.Outputs {
			for mime := range o.Data {
				switch mime {
				case "image/png", "image/gif", "image/jpeg":
					n++
				}
			}
		}
	}
	return n
}
