package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// On a shared two-core machine one floor-then-headcount pair's ratio moves
// by 10% or more from one run to the next, so bench/run.sh runs several
// pairs (PAIRS), each on fresh servers, and "loadgen median" reads their
// reports and prints the median of each ratio.

// ratioHeading starts the table writeRatios prints, and readRatios looks
// for; the N follows it.
const ratioHeading = "### headcount against the floor, N = "

// ratios is one report's table of ratios: the measure names in order,
// and each one's ratio (headcount / floor).
type ratios struct {
	n      string // the N of the heading, as written
	names  []string
	values map[string]float64
}

// readRatios reads the table of ratios out of a loadgen report.
func readRatios(r io.Reader) (ratios, error) {
	rs := ratios{values: make(map[string]float64)}
	in := false
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, ratioHeading); ok {
			rs.n, _, _ = strings.Cut(rest, " ")
			in = true
			continue
		}
		if !in {
			continue
		}
		if line == "" && len(rs.names) > 0 {
			break // the table's end
		}
		name, ratio, ok := ratioRow(line)
		if !ok {
			continue // the header, its rule, a row without a ratio
		}
		if _, dup := rs.values[name]; !dup {
			rs.names = append(rs.names, name)
		}
		rs.values[name] = ratio
	}
	if err := sc.Err(); err != nil {
		return rs, err
	}
	if len(rs.names) == 0 {
		return rs, errors.New("no table of ratios to the floor in it")
	}
	return rs, nil
}

// ratioRow reads a row "| name | floor | headcount | **1.23x** |".
func ratioRow(line string) (name string, ratio float64, ok bool) {
	cells := strings.Split(strings.Trim(line, "|"), "|")
	if len(cells) != 4 {
		return "", 0, false
	}
	last := strings.TrimSpace(cells[3])
	num, found := strings.CutPrefix(last, "**")
	num, found2 := strings.CutSuffix(num, "x**")
	if !found || !found2 {
		return "", 0, false
	}
	ratio, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return "", 0, false
	}
	return strings.TrimSpace(cells[0]), ratio, true
}

// writeMedians prints, over the pairs' tables, each measure's median
// ratio, the lowest, the highest and every pair's, in the first table's
// order of measures. An even number of pairs takes the mean of the two
// middle ones.
func writeMedians(w io.Writer, pairs []ratios) {
	fmt.Fprintf(w, "\n%s%s: median of %d pairs\n\n", ratioHeading, pairs[0].n, len(pairs))
	fmt.Fprintln(w, "| measure | median of the pairs | lowest | highest | each pair |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | --- |")
	for _, name := range pairs[0].names {
		var each []string
		var vs []float64
		for _, p := range pairs {
			v, ok := p.values[name]
			if !ok {
				each = append(each, "-")
				continue
			}
			each = append(each, fmt.Sprintf("%.2fx", v))
			vs = append(vs, v)
		}
		slices.Sort(vs)
		k := len(vs)
		med := vs[k/2]
		if k%2 == 0 {
			med = (vs[k/2-1] + vs[k/2]) / 2
		}
		fmt.Fprintf(w, "| %s | **%.2fx** | %.2fx | %.2fx | %s |\n", name, med, vs[0], vs[k-1], strings.Join(each, ", "))
	}
}

// runMedian is "loadgen median REPORT...": the median table of the
// reports' ratios, all of one N.
func runMedian(files []string, stdout io.Writer) error {
	if len(files) == 0 {
		return errors.New("median: name the reports of the pairs")
	}
	var pairs []ratios
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fmt.Errorf("median: %w", err)
		}
		rs, err := readRatios(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("median: %s: %w", name, err)
		}
		if len(pairs) > 0 && rs.n != pairs[0].n {
			return fmt.Errorf("median: %s is of N = %s, %s of N = %s", name, rs.n, files[0], pairs[0].n)
		}
		pairs = append(pairs, rs)
	}
	writeMedians(stdout, pairs)
	return nil
}
