package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/quirehq/quire/auth"
)

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// runToken prints an access token signed with the server's secret, for
// scripts and for handing out links: `quire token --doc ID [--doc ID2]
// [--prefix P] [--read-only] [--ttl 1h]`. The token and a newline go to
// stdout, nothing else, so that `TOKEN=$(quire token ...)` works.
func runToken(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var docs, prefixes stringList
	fs.Var(&docs, "doc", "a document the token opens (repeatable)")
	fs.Var(&prefixes, "prefix", "open every document whose ID starts with this (repeatable; '' opens every document)")
	readOnly := fs.Bool("read-only", false, "grant read-only access (default read-write)")
	ttl := fs.Duration("ttl", time.Hour, "how long the token is valid")
	subject := fs.String("subject", "", "who the token is for (its sub claim, shown in the server's logs)")
	secret := fs.String("auth-secret", "", "the server's secret (default $"+auth.EnvSecret+")")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: quire token --doc ID [--doc ID2] [--prefix P] [--read-only] [--ttl 1h]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "quire token: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	if len(docs) == 0 && len(prefixes) == 0 {
		fmt.Fprintln(stderr, "quire token: name at least one --doc or --prefix")
		fs.Usage()
		return 2
	}
	key := *secret
	if key == "" {
		key = os.Getenv(auth.EnvSecret)
	}
	if key == "" {
		fmt.Fprintf(stderr, "quire token: no secret: pass --auth-secret or set %s to the server's secret\n", auth.EnvSecret)
		return 1
	}
	access := auth.ReadWrite
	if *readOnly {
		access = auth.ReadOnly
	}
	tok, err := mintToken([]byte(key), auth.Grant{Docs: docs, Prefixes: prefixes, Access: access, Subject: *subject}, *ttl)
	if err != nil {
		fmt.Fprintf(stderr, "quire token: %v\n", err)
		return 1
	}
	if auth.WeakSecret([]byte(key)) {
		fmt.Fprintf(stderr, "quire token: warning: the secret is shorter than %d bytes; `openssl rand -base64 32` makes a strong one\n", auth.MinSecretBytes)
	}
	fmt.Fprintln(stdout, tok)
	return 0
}

func mintToken(secret []byte, g auth.Grant, ttl time.Duration) (string, error) {
	a, err := auth.New(secret, nil)
	if err != nil {
		return "", err
	}
	return a.Mint(g, ttl)
}
