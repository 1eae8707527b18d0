package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/headcount/headcount/config"
)

// action is what the command line asks for.
type action int

const (
	serve action = iota
	showHelp
	showVersion
)

// usageError is a command line headcount does not accept: main prints it
// with the usage on stderr and exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// parseArgs reads the command line: nothing (serve), --help or --version.
// Configuration is the environment's, so anything else is an error.
func parseArgs(args []string) (action, error) {
	if len(args) <= 1 {
		return serve, nil
	}
	if len(args) == 2 {
		switch args[1] {
		case "--help", "-help", "-h":
			return showHelp, nil
		case "--version", "-version":
			return showVersion, nil
		}
	}
	return serve, usageError{fmt.Sprintf("unexpected arguments %q: headcount is configured through the environment", args[1:])}
}

const usage = `Usage:
  headcount             serve, configured by the environment (below)
  headcount --help      print this help
  headcount --version   print the version and the revision it was built from
`

// writeUsage writes the short usage, for a command line that is wrong.
func writeUsage(w io.Writer) {
	fmt.Fprint(w, usage, "Run headcount --help for every variable.\n")
}

// writeHelp writes what headcount does and every variable it reads, with
// its default and meaning, from the table config.Load parses.
func writeHelp(w io.Writer) {
	fmt.Fprint(w, `headcount serves a page where people sign in with GitHub, and a live
Server-Sent Events stream (GET /events) that tells every subscriber how
many subscribers are connected, the moment anyone joins or leaves. Several
instances on one Redis share one count.

`, usage, "\nEnvironment:\n")
	for _, v := range config.Variables() {
		fmt.Fprintf(w, "  %s\n", v.Name)
		for _, line := range wrap(v.Meaning, 72) {
			fmt.Fprintf(w, "      %s\n", line)
		}
		fmt.Fprintf(w, "      default: %s\n", v.Default)
	}
	fmt.Fprint(w, `
Signals: SIGTERM or SIGINT ends every stream and exits 0 within 5 seconds;
SIGHUP reloads the TLS certificate and key.
`)
}

// wrap cuts text into lines of at most width characters, at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	return append(lines, line)
}

// version is the module version and the VCS revision the binary was
// built from, as the Go toolchain recorded them.
func version() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "headcount: no build information"
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	v := "headcount " + info.Main.Version
	if rev := settings["vcs.revision"]; rev != "" {
		v += " revision " + rev
		if t := settings["vcs.time"]; t != "" {
			v += " (" + t + ")"
		}
		if settings["vcs.modified"] == "true" {
			v += " with local changes"
		}
	} else {
		v += " (no VCS revision recorded)"
	}
	return v + ", " + info.GoVersion
}
