package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// table is a report's table of ratios as writeRatios prints it, with
// rows "name=ratio" (a ratio of 0: the row has none, as a measure with a
// floor of 0 prints "-"), after a table of the same shape that is not it.
func table(n int, rows ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "### an earlier table\n\n| measure | floor | headcount | ratio |\n| --- | ---: | ---: | ---: |\n| exodus | 1 | 2 | **9.99x** |\n\n")
	fmt.Fprintf(&b, "%s%d (same invocation)\n\n| measure | floor | headcount | headcount / floor |\n| --- | ---: | ---: | ---: |\n", ratioHeading, n)
	for _, r := range rows {
		name, ratio, _ := strings.Cut(r, "=")
		if ratio == "0" {
			fmt.Fprintf(&b, "| %s | 0 | 1 | - |\n", name)
			continue
		}
		fmt.Fprintf(&b, "| %s | 1 µs | 2 µs | **%sx** |\n", name, ratio)
	}
	b.WriteString("\nThe floor's join ...\n")
	return b.String()
}

// TestMedianOfPairs: each measure's median over the pairs (the mean of the
// middle two for an even number), lowest and highest, and each pair's
// ratio in order, "-" where a pair has none; the measures in the first
// pair's order, and only those of the table of ratios.
func TestMedianOfPairs(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i, tab := range []string{
		table(10000, "RSS per subscriber=0.55", "server CPU per event sent (fan-out)=1.04", "exodus=0"),
		table(10000, "RSS per subscriber=0.57", "server CPU per event sent (fan-out)=0.96", "exodus=1.20"),
		table(10000, "RSS per subscriber=0.54", "server CPU per event sent (fan-out)=1.10", "exodus=1.40"),
		table(10000, "RSS per subscriber=0.60", "server CPU per event sent (fan-out)=0.90"),
	} {
		f := filepath.Join(dir, fmt.Sprintf("report-%d.md", i))
		if err := os.WriteFile(f, []byte(tab), 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	got := medianOf(t, files[:3]...)
	wantIn(t, got,
		ratioHeading+"10000: median of 3 pairs\n",
		"| RSS per subscriber | **0.55x** | 0.54x | 0.57x | 0.55x, 0.57x, 0.54x |\n",
		"| server CPU per event sent (fan-out) | **1.04x** | 0.96x | 1.10x | 1.04x, 0.96x, 1.10x |\n")
	if strings.Contains(got, "exodus") {
		t.Errorf("a measure the first pair has no ratio for, or one of another table, is in the medians:\n%s", got)
	}

	wantIn(t, medianOf(t, files[1], files[3], files[0], files[2]),
		ratioHeading+"10000: median of 4 pairs\n",
		"| RSS per subscriber | **0.56x** | 0.54x | 0.60x | 0.57x, 0.60x, 0.55x, 0.54x |\n",
		"| exodus | **1.30x** | 1.20x | 1.40x | 1.20x, -, -, 1.40x |\n")
}

// medianOf runs "loadgen median" on files and returns what it printed.
func medianOf(t *testing.T, files ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), append([]string{"loadgen", "median"}, files...), &out, &out); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// wantIn fails t for each of wants that got lacks.
func wantIn(t *testing.T, got string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(got, want) {
			t.Errorf("the medians lack %q:\n%s", want, got)
		}
	}
}

// TestMedianRefuses: no reports, a file without a table of ratios, and
// reports of different N are errors, not a table.
func TestMedianRefuses(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	a := write("a.md", table(1000, "RSS per subscriber=0.6"))
	b := write("b.md", table(10000, "RSS per subscriber=0.6"))
	none := write("none.md", "### headcount: N = 1000 streams\n\n| measure | value |\n")
	for _, args := range [][]string{{}, {none}, {a, b}, {filepath.Join(dir, "missing.md")}} {
		var out bytes.Buffer
		if err := run(t.Context(), append([]string{"loadgen", "median"}, args...), &out, &out); err == nil {
			t.Errorf("median %v: no error, printed:\n%s", args, out.String())
		}
	}
}
