// Package report turns executed notebooks into one PDF: nbconvert renders each notebook
// to HTML (MathJax and RequireJS from Debian's packages, so nothing is fetched), the
// HTML gets print styles (wrapped code lines, images fitted to the page), headless
// Chromium prints it, and pdfunite joins the pages after a cover page. Inspect reads a
// PDF back (pages, text, images) with poppler-utils so tests can check it.
package report

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/godiffusion/notebooks/diffusion/atomicfile"
)

// Tools names the external programs used; empty fields take the defaults.
type Tools struct {
	Python   string // interpreter with nbconvert; /usr/bin/python3
	Chromium string // headless browser; chromium
	MathJax  string // MathJax.js URL; Debian's libjs-mathjax
}

func (t Tools) withDefaults() Tools {
	if t.Python == "" {
		t.Python = "/usr/bin/python3"
	}
	if t.Chromium == "" {
		t.Chromium = "chromium"
	}
	if t.MathJax == "" {
		t.MathJax = "file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML"
	}
	return t
}

// PrintCSS is added to every page: A4, code and output lines wrap instead of being cut
// at the margin, images fit the page and are not split across pages, and Markdown tables
// take a smaller font, tighter cells and column widths from their content (JupyterLab's fixed
// layout cut the right columns of notebook 06's 10-column table and notebook 07's 16-column
// one at the page edge); tables of 12 columns or more a smaller font still.
const PrintCSS = `<style>
@page { size: A4; margin: 12mm 10mm; }
.jp-RenderedHTMLCommon table { font-size: 8pt; table-layout: auto; max-width: 100%; }
.jp-RenderedHTMLCommon table:has(th:nth-child(12)) { font-size: 6.5pt; }
.jp-RenderedHTMLCommon td, .jp-RenderedHTMLCommon th { padding: 2px 3px !important; }
pre, .highlight pre, .jp-OutputArea-output pre, .jp-RenderedText pre {
  white-space: pre-wrap !important; overflow-wrap: anywhere; word-break: break-word; }
.jp-OutputArea-output img, img { max-width: 100%; height: auto; }
.jp-OutputArea-output { break-inside: avoid; }
.jp-InputArea, .jp-Cell-inputWrapper { break-inside: avoid; }
</style>
`

// NotebookHTML renders an executed notebook to an HTML file with PrintCSS.
func NotebookHTML(ctx context.Context, tools Tools, notebook, outHTML string) error {
	tools = tools.withDefaults()
	dir, err := filepath.Abs(filepath.Dir(outHTML))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	base := strings.TrimSuffix(filepath.Base(outHTML), ".html")
	cmd := exec.CommandContext(ctx, tools.Python, "-m", "nbconvert", "--to", "html",
		"--HTMLExporter.mathjax_url="+tools.MathJax,
		"--output-dir", dir, "--output", base, notebook)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("nbconvert to HTML of %s: %v\n%s", notebook, err, tail(out))
	}
	data, err := os.ReadFile(outHTML)
	if err != nil {
		return err
	}
	data = injectCSS(data)
	return atomicfile.Write(outHTML, data)
}

func injectCSS(page []byte) []byte {
	if i := bytes.Index(page, []byte("</head>")); i >= 0 {
		return append(append(append([]byte{}, page[:i]...), PrintCSS...), page[i:]...)
	}
	return append([]byte(PrintCSS), page...)
}

// PrintPDF prints an HTML file to PDF with headless Chromium. MathJax gets a few seconds
// of virtual time to typeset before printing.
func PrintPDF(ctx context.Context, tools Tools, htmlPath, pdfPath string) error {
	tools = tools.withDefaults()
	abs, err := filepath.Abs(htmlPath)
	if err != nil {
		return err
	}
	profile, err := os.MkdirTemp("", "report-chromium-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(profile)
	tmpPDF := pdfPath + ".tmp"
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, tools.Chromium, "--headless", "--no-sandbox", "--disable-gpu",
		"--disable-quic", "--no-first-run", "--disable-background-networking",
		"--disable-component-update", "--disable-sync", "--user-data-dir="+profile,
		"--allow-file-access-from-files", "--run-all-compositor-stages-before-draw",
		"--virtual-time-budget=20000", "--no-pdf-header-footer",
		"--print-to-pdf="+tmpPDF, "file://"+abs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		os.Remove(tmpPDF)
		return fmt.Errorf("chromium printing %s: %v\n%s", htmlPath, err, tail(out))
	}
	if fi, err := os.Stat(tmpPDF); err != nil || fi.Size() == 0 {
		os.Remove(tmpPDF)
		return fmt.Errorf("chromium wrote no PDF for %s:\n%s", htmlPath, tail(out))
	}
	return os.Rename(tmpPDF, pdfPath)
}

// Merge joins PDFs in order into out with pdfunite.
func Merge(ctx context.Context, out string, pdfs ...string) error {
	if len(pdfs) == 0 {
		return errors.New("report.Merge: no PDFs")
	}
	tmp := out + ".tmp.pdf"
	args := append(append([]string{}, pdfs...), tmp)
	if b, err := exec.CommandContext(ctx, "pdfunite", args...).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pdfunite: %v\n%s", err, tail(b))
	}
	return os.Rename(tmp, out)
}

// CoverEntry is one row of the cover page's table of contents.
type CoverEntry struct {
	Title    string // the notebook's first heading
	File     string
	Wall     time.Duration
	Problems int
}

// CoverHTML returns the HTML of the report's cover page.
func CoverHTML(title, subtitle string, entries []CoverEntry) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>%s</title>%s", html.EscapeString(title), PrintCSS)
	b.WriteString(`<style>body{font-family:"DejaVu Sans",sans-serif;margin:30mm 15mm}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ccc;padding:4px 8px;text-align:left}
td.n{text-align:right}h1{font-size:26pt}</style></head><body>`)
	fmt.Fprintf(&b, "<h1>%s</h1><p>%s</p>", html.EscapeString(title), html.EscapeString(subtitle))
	b.WriteString("<table><tr><th>notebook</th><th>file</th><th>run time</th><th>status</th></tr>")
	for _, e := range entries {
		status := "ok"
		if e.Problems > 0 {
			status = fmt.Sprintf("%d problem(s)", e.Problems)
		}
		fmt.Fprintf(&b, "<tr><td>%s</td><td><code>%s</code></td><td class=\"n\">%s</td><td>%s</td></tr>",
			html.EscapeString(e.Title), html.EscapeString(e.File), e.Wall.Round(time.Second), status)
	}
	b.WriteString("</table></body></html>\n")
	return b.String()
}

// Info is what Inspect reads from a PDF.
type Info struct {
	Pages  int
	Images int    // embedded raster images (pdfimages -list)
	Text   string // the text of all pages (pdftotext)
}

// Inspect reads the page count, the number of embedded images and the text of a PDF.
func Inspect(ctx context.Context, pdf string) (*Info, error) {
	info := &Info{}
	out, err := exec.CommandContext(ctx, "pdfinfo", pdf).Output()
	if err != nil {
		return nil, fmt.Errorf("pdfinfo %s: %v", pdf, err)
	}
	m := regexp.MustCompile(`(?m)^Pages:\s+(\d+)`).FindSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("pdfinfo %s: no page count", pdf)
	}
	info.Pages, _ = strconv.Atoi(string(m[1]))
	out, err = exec.CommandContext(ctx, "pdfimages", "-list", pdf).Output()
	if err != nil {
		return nil, fmt.Errorf("pdfimages %s: %v", pdf, err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[2] == "image" {
			info.Images++
		}
	}
	out, err = exec.CommandContext(ctx, "pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		return nil, fmt.Errorf("pdftotext %s: %v", pdf, err)
	}
	info.Text = string(out)
	return info, nil
}

func tail(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > 8 {
		lines = lines[len(lines)-8:]
	}
	return strings.Join(lines, "\n")
}
