package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/quirehq/quire/crdt"
)

// runInspect prints the text of one root of a stored Yjs update, or with
// --json a summary of it. It is the first tool to reach for when a stored
// document looks wrong, so every failure is one line on stderr and exit 1.
func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("inspect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	root := fs.String("root", "content", "name of the root Y.Text to print")
	asJSON := fs.Bool("json", false, "print a JSON summary instead of the text")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: quire inspect FILE [--root NAME] [--json]")
		fs.PrintDefaults()
	}
	file, err := parseInterspersed(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if file == "" {
		fs.Usage()
		return 2
	}
	if err := inspect(file, *root, *asJSON, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "quire inspect: %v\n", err)
		return 1
	}
	return 0
}

// parseInterspersed parses flags placed before or after the one positional
// argument, since `quire inspect FILE --json` is how people type it.
func parseInterspersed(fs *flag.FlagSet, args []string) (string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return "", err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(positional) > 1 {
		fmt.Fprintf(fs.Output(), "quire %s: expected one FILE, got %d arguments\n", fs.Name(), len(positional))
		return "", errors.New("too many arguments")
	}
	if len(positional) == 0 {
		return "", nil
	}
	return positional[0], nil
}

func inspect(file, root string, asJSON bool, stdout, stderr io.Writer) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if asJSON {
		sum, err := crdt.Summarize(data)
		if err != nil {
			return fmt.Errorf("%s: not a Yjs v1 update: %w", file, err)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(sum)
	}
	doc := crdt.NewDoc(crdt.Options{})
	if _, err := doc.ApplyUpdate(data); err != nil {
		return fmt.Errorf("%s: not a Yjs v1 update: %w", file, err)
	}
	if doc.HasPending() {
		// Structs whose dependencies are not in the file cannot be placed;
		// the text is still worth printing, but say it is partial.
		fmt.Fprintf(stderr, "quire inspect: warning: %s lacks updates some of its structs depend on; the text is partial\n", file)
	}
	_, err = io.WriteString(stdout, doc.GetText(root).String())
	return err
}
