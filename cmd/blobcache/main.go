// Command blobcache looks at and manages a blobcache cache from the shell:
// read, write and delete entries, count them, clear or cull a location,
// report statistics (entries, bytes, expired entries, oldest and newest),
// and load-test the cache against its raw store (bench).
//
// Usage:
//
//	blobcache [-url URL] [-q] <command> [flags] [args]
//
// The cache URL is any URL cache.Open takes, from -url or, when that is
// absent, the BLOBCACHE_URL environment variable:
//
//	export BLOBCACHE_URL='s3://my-bucket?location=cache&region=eu-west-1'
//	blobcache stats
//	blobcache set -ttl 10m greeting hello
//	blobcache get greeting
//	blobcache clear
//
// Commands: get, set, delete, has, len, clear, cull, stats, bench;
// `blobcache -h` documents each with its flags, and `blobcache help COMMAND`
// one of them.
//
// Exit status: 0 on success; 1 on an error, and for get and has when the key
// has no live entry (as grep exits 1 when nothing matches); 2 on a usage
// error (unknown command or flag, a flag value that does not parse or is out
// of range, missing argument, no cache URL, an invalid URL option).
//
// clear and stats list the whole location and, on a terminal, show progress
// bars on standard error; nothing is drawn when standard error is not a
// terminal or with -q. clear asks for confirmation on the terminal unless
// -yes is given, and refuses to run without -yes when standard input is not a
// terminal.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/blobcache/blobcache/cache"
	"github.com/blobcache/blobcache/driver"
	_ "github.com/blobcache/blobcache/drivers/all" // every built-in scheme: mem, file, s3, gs, azblob
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // an error, or a miss for get and has
	exitUsage = 2
)

// envURL is the environment variable holding the default cache URL.
const envURL = "BLOBCACHE_URL"

// env is what a command runs with.
type env struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	url    string
	quiet  bool
	flags  flagValues // the command's own flags
}

// command is one subcommand.
type command struct {
	name    string
	args    string // synopsis of the arguments after the flags
	summary string // one line
	detail  string // paragraphs after the synopsis
	// flags defines the command's own flags in fs, stored in v; nil for
	// none.
	flags func(fs *flag.FlagSet, v *flagValues)
	// check validates the command's flags in v (and keeps what it parsed
	// there) before the cache URL is opened; nil when there is nothing to
	// check. Its errors are usage errors.
	check func(v *flagValues) error
	// minArgs and maxArgs bound the positional arguments (-1: no maximum).
	minArgs, maxArgs int
	run              func(e *env, c *cache.Cache, args []string) error
}

// openURL opens the cache a command runs on. Tests replace it to put a
// failing store under a command.
var openURL = func(ctx context.Context, rawURL string) (*cache.Cache, error) {
	return cache.Open(ctx, rawURL)
}

// usageError is an error in how the command was called: exit status 2.
type usageError struct{ msg string }

// Error implements error.
func (u *usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// missError reports a key without a live entry: exit status 1, the message
// on standard error.
type missError struct{ key string }

// Error implements error.
func (m *missError) Error() string {
	return fmt.Sprintf("%q: no live entry (absent or expired)", m.key)
}

// run is the whole program: it parses args, runs the command and returns
// the exit status. Messages go to stderr prefixed "blobcache: ".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr}
	global := flag.NewFlagSet("blobcache", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	addCommonFlags(global, e)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(stdout)
			return exitOK
		}
		return e.usageFail(err.Error(), "")
	}
	rest := global.Args()
	if len(rest) == 0 {
		return e.usageFail("no command given", "")
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		return e.help(rest)
	}
	cmd := findCommand(name)
	if cmd == nil {
		return e.usageFail(fmt.Sprintf("unknown command %q", name), "")
	}
	fs := flag.NewFlagSet("blobcache "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	addCommonFlags(fs, e)
	if cmd.flags != nil {
		cmd.flags(fs, &e.flags)
	}
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printCommandUsage(stdout, cmd)
			return exitOK
		}
		return e.usageFail(err.Error(), cmd.name)
	}
	pos := fs.Args()
	switch {
	case len(pos) < cmd.minArgs:
		return e.usageFail(fmt.Sprintf("%s: missing argument: usage: blobcache %s %s", cmd.name, cmd.name, cmd.args), cmd.name)
	case cmd.maxArgs >= 0 && len(pos) > cmd.maxArgs:
		return e.usageFail(fmt.Sprintf("%s: too many arguments: usage: blobcache %s %s", cmd.name, cmd.name, cmd.args), cmd.name)
	}
	if cmd.check != nil {
		if err := cmd.check(&e.flags); err != nil {
			return e.usageFail(cmd.name+": "+err.Error(), cmd.name)
		}
	}
	if e.url == "" {
		e.url = os.Getenv(envURL)
	}
	if e.url == "" {
		return e.usageFail("no cache URL: pass -url URL or set "+envURL+" (e.g. s3://bucket?location=cache, file:///var/cache/app)", "")
	}
	c, err := openURL(ctx, e.url)
	if err != nil {
		if errors.Is(err, cache.ErrInvalidOption) {
			return e.usageFail(err.Error(), "")
		}
		return e.fail(err)
	}
	defer c.Close()
	if err := cmd.run(e, c, pos); err != nil {
		var ue *usageError
		if errors.As(err, &ue) {
			return e.usageFail(cmd.name+": "+ue.msg, cmd.name)
		}
		return e.fail(fmt.Errorf("%s: %w", cmd.name, err))
	}
	return exitOK
}

// addCommonFlags defines the flags every command accepts, before or after
// the command's name.
func addCommonFlags(fs *flag.FlagSet, e *env) {
	fs.StringVar(&e.url, "url", e.url, "cache `URL` (default $"+envURL+")")
	fs.BoolVar(&e.quiet, "q", e.quiet, "quiet: no progress bars")
}

// fail prints err and returns exit status 1.
func (e *env) fail(err error) int {
	msg := err.Error()
	if e.ctx.Err() != nil && errors.Is(err, e.ctx.Err()) {
		msg = "interrupted: " + msg
	}
	fmt.Fprintln(e.stderr, "blobcache: "+msg)
	return exitError
}

// usageFail prints a usage error with a pointer to the help and returns
// exit status 2.
func (e *env) usageFail(msg, cmd string) int {
	fmt.Fprintln(e.stderr, "blobcache: "+msg)
	if cmd != "" {
		fmt.Fprintf(e.stderr, "Run 'blobcache help %s' for usage.\n", cmd)
		return exitUsage
	}
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	fmt.Fprintf(e.stderr, "Usage: blobcache [-url URL] [-q] <command> [flags] [args]\nCommands: %s.\nRun 'blobcache -h' for usage.\n", strings.Join(names, ", "))
	return exitUsage
}

// help prints the whole usage, or one command's.
func (e *env) help(args []string) int {
	switch len(args) {
	case 0:
		printUsage(e.stdout)
		return exitOK
	case 1:
		if cmd := findCommand(args[0]); cmd != nil {
			printCommandUsage(e.stdout, cmd)
			return exitOK
		}
		return e.usageFail(fmt.Sprintf("help: unknown command %q", args[0]), "")
	}
	return e.usageFail("help: too many arguments", "")
}

func findCommand(name string) *command {
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == name })
	if i < 0 {
		return nil
	}
	return commands[i]
}

const usageHead = `Usage: blobcache [-url URL] [-q] <command> [flags] [args]

blobcache reads and manages a blobcache cache: entries kept in S3 or MinIO,
a directory, or any gocloud bucket. It sees the same entries as the
applications that use the cache with the same URL.

The cache URL comes from -url or, when that is absent, from the
BLOBCACHE_URL environment variable. It is any URL cache.Open takes:

  s3://bucket?location=cache&region=eu-west-1
  s3://bucket?endpoint=http://127.0.0.1:9000&use_path_style=true&access_key=KEY&secret_key=SECRET
  file:///var/cache/app?location=cache

Its cache options (location, key_prefix, version, signing_key, timeout,
cull_frequency, cull_policy, is_gzipped, ...) must match the application's to
see the same keys: key_prefix and version are part of every key's object name,
signed entries read only with their key, and location is the folder whose
entries len, clear, cull and stats work on. Entries are the objects named
location/ then 40 lower-case hex digits; any other object, in the folder or
not, is not the cache's: never counted, read or deleted.

Flags (before or after the command; flags come before arguments):
  -url URL   cache URL (default: $BLOBCACHE_URL)
  -q         quiet: no progress bars
  -h         show this help; 'blobcache help COMMAND' or
             'blobcache COMMAND -h' shows one command
`

const usageTail = `
Exit status:
  0  success
  1  an error (the message is on standard error, after "blobcache: "), or,
     for get and has, a key with no live entry: like grep, which exits 1 when
     nothing matches, so 'if blobcache has KEY; then ...' works
  2  a usage error: unknown command or flag, a flag value that does not
     parse or is out of range (each flag's range is in its help), missing
     or extra argument, no cache URL, an invalid option in the URL

Progress: clear and stats list the whole location (one request per 1000
objects on S3) and show progress bars on standard error when it is a
terminal; nothing is drawn when it is not (pipes, files, cron) or with -q.
Results go to standard output.
`

func printUsage(w io.Writer) {
	io.WriteString(w, usageHead)
	// The schemes come from the driver registry, not a list kept by hand:
	// a driver added to drivers/all shows here without an edit.
	fmt.Fprintf(w, "\nSchemes this binary opens: %s.\n\nCommands:\n", strings.Join(driver.Schemes(), ", "))
	for _, c := range commands {
		syn := strings.TrimSpace(c.name + " " + c.args)
		if len(syn) > 24 {
			syn = c.name + " [flags]"
		}
		fmt.Fprintf(w, "  %-24s  %s\n", syn, c.summary)
	}
	io.WriteString(w, "\nCommand details:\n")
	for _, c := range commands {
		io.WriteString(w, "\n")
		writeCommandDetail(w, c, "  ")
	}
	io.WriteString(w, usageTail)
}

func printCommandUsage(w io.Writer, c *command) {
	fmt.Fprintf(w, "Usage: blobcache [-url URL] [-q] %s\n\n", strings.TrimSpace(c.name+" "+c.args))
	writeCommandDetail(w, c, "")
	io.WriteString(w, "\nEvery command also takes -url URL (default $BLOBCACHE_URL) and -q (no progress bars).\nRun 'blobcache -h' for the exit status and everything else.\n")
}

// writeCommandDetail writes a command's synopsis, description and flags,
// each line indented by indent.
func writeCommandDetail(w io.Writer, c *command, indent string) {
	fmt.Fprintf(w, "%s%s\n", indent, strings.TrimSpace(c.name+" "+c.args))
	for line := range strings.SplitSeq(strings.TrimSpace(c.detail), "\n") {
		if line == "" {
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "%s    %s\n", indent, line)
	}
	if c.flags == nil {
		return
	}
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	c.flags(fs, &flagValues{})
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		head := "-" + f.Name
		if name != "" {
			head += " " + name
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" {
			usage += " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s    %s\n", indent, head)
		for _, line := range wrap(usage, 72-len(indent)) {
			fmt.Fprintf(w, "%s        %s\n", indent, line)
		}
	})
}

// wrap splits text into lines of at most width bytes, at spaces.
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
