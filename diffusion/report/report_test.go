package report

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/godiffusion/notebooks/diffusion/plot"
)

func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"chromium", "pdfunite", "pdfinfo", "pdfimages", "pdftotext"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: run scripts/setup.sh", tool)
		}
	}
	if err := exec.Command("/usr/bin/python3", "-c", "import nbconvert").Run(); err != nil {
		t.Skip("nbconvert not installed: run scripts/setup.sh")
	}
}

// wideTable is a Markdown table as wide as notebook 07's guidance sweep (16 columns), whose
// last column JupyterLab's fixed table layout printed beyond the page edge.
func wideTable() string {
	head := "| w | n | accuracy | FID | accuracy, mode images | FID, mode images | mean max-confidence | worst digit (acc.) |"
	rule := "|---:|---:|---:|---:|---:|---:|---:|---|"
	row := "| 7.5 | 1000 | 0.668 | 1002.77 | 0.963 | 183.20 | 0.937 | 3 (0.00) |"
	for d := range 8 {
		head += " " + []string{"0", "1", "2", "3", "4", "5", "6", "LASTCOLUMN"}[d] + " |"
		rule += "---:|"
		row += " 1.00 |"
	}
	return head + "\n" + rule + "\n" + row + "\n"
}

// fixture writes an executed notebook with a title, math, a wide table, a very long code
// line that must wrap, and one PNG output.
func fixture(t *testing.T, dir string) string {
	t.Helper()
	png, err := plot.Lines(plot.Options{Title: "fixture"}, plot.Curve{X: []float64{0, 1, 2}, Y: []float64{2, 1, 0}})
	if err != nil {
		t.Fatal(err)
	}
	long := "x := []int{" + strings.Repeat("1234567, ", 40) + "}  // ENDOFLONGLINE"
	nb := map[string]any{
		"nbformat": 4, "nbformat_minor": 5,
		"metadata": map[string]any{"language_info": map[string]any{"name": "go"}},
		"cells": []any{
			map[string]any{"cell_type": "markdown", "metadata": map[string]any{}, "source": "# Fixture report title\n\nEuler: $e^{i\\pi} + 1 = 0$\n\n" + wideTable()},
			map[string]any{"cell_type": "code", "metadata": map[string]any{}, "execution_count": 1, "source": long,
				"outputs": []any{map[string]any{"output_type": "display_data", "metadata": map[string]any{},
					"data": map[string]any{"image/png": base64.StdEncoding.EncodeToString(png), "text/plain": "<image>"}}}},
		},
	}
	data, _ := json.Marshal(nb)
	path := filepath.Join(dir, "fixture.ipynb")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNotebookToPDF(t *testing.T) {
	needTools(t)
	ctx := context.Background()
	dir := t.TempDir()
	nb := fixture(t, dir)
	htmlPath := filepath.Join(dir, "fixture.html")
	if err := NotebookHTML(ctx, Tools{}, nb, htmlPath); err != nil {
		t.Fatal(err)
	}
	page, _ := os.ReadFile(htmlPath)
	if strings.Contains(string(page), "https://cdn") || !strings.Contains(string(page), "white-space: pre-wrap") {
		t.Error("HTML loads from a CDN or lacks the print styles")
	}
	pdf := filepath.Join(dir, "fixture.pdf")
	if err := PrintPDF(ctx, Tools{}, htmlPath, pdf); err != nil {
		t.Fatal(err)
	}
	coverHTML := filepath.Join(dir, "cover.html")
	if err := os.WriteFile(coverHTML, []byte(CoverHTML("Cover title", "sub", []CoverEntry{{Title: "Fixture report title", File: "fixture.ipynb"}})), 0o644); err != nil {
		t.Fatal(err)
	}
	coverPDF := filepath.Join(dir, "cover.pdf")
	if err := PrintPDF(ctx, Tools{}, coverHTML, coverPDF); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report.pdf")
	if err := Merge(ctx, out, coverPDF, pdf); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(info, Expect{Titles: []string{"Cover title", "Fixture report title"}, MinImages: 1, MinPages: 2}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info.Text, "ENDOFLONGLINE") {
		t.Error("the end of a long code line is missing from the PDF: lines do not wrap")
	}
	if !strings.Contains(info.Text, "LASTCOLUMN") {
		t.Error("the last column of a 16-column table is missing from the PDF: the table is cut at the page edge")
	}
	if err := Check(info, Expect{Titles: []string{"Missing notebook"}, MinImages: 5}); err == nil {
		t.Error("Check accepted a report without the expected title and images")
	}
}
