// Command quire is a Yjs-compatible real-time collaboration server.
//
// Usage:
//
//	quire serve [--listen HOST:PORT] [--db PATH] [flags]
//	quire inspect FILE [--root NAME] [--json]
//	quire token --doc ID [--read-only] [--ttl 1h]
//
// Each subcommand lives in its own cmd_*.go file; the logic lives in the packages.
package main

import (
	"fmt"
	"io"
	"os"
)

// command is one subcommand: it parses its own flags and returns the exit status.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"serve", "run the collaboration server", runServe},
		{"inspect", "print the text or a summary of a stored Yjs update", runInspect},
		{"token", "print an access token signed with the server's secret", runToken},
	}
}

func main() {
	os.Exit(dispatch(os.Args[1:], os.Stdout, os.Stderr))
}

func dispatch(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "quire: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: quire <command> [flags]")
	fmt.Fprintln(w)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}
