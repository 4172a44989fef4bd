// Command lake is the command-line interface of the lake table engine: create Delta tables, read
// their history and snapshots, ingest data, and maintain them. See shared/CONTRACT.md and the
// README for the commands.
//
// Exit status: 0 on success, 1 on a failure, 2 on a usage error. Errors go to stderr as one line
// that says what is wrong and what to do.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
)

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a command writes to; tests replace it.
type env struct {
	stdout io.Writer
	stderr io.Writer
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	if p := os.Getenv("LAKE_CPUPROFILE"); p != "" { // for performance work: a CPU profile of one command
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			defer pprof.StopCPUProfile()
		}
	}
	code := run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	pprof.StopCPUProfile()
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 {
		// A usage error is one line; the command list is for `lake help`.
		fmt.Fprintln(e.stderr, "lake: missing command; run `lake help` for the list")
		return 2
	}
	if args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		printUsage(e.stderr)
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(e.stderr, "lake: unknown command %q; run `lake help` for the list\n", args[0])
		return 2
	}
	err := c.run(ctx, e, args[1:])
	if err == nil {
		return 0
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(e.stderr, "lake %s: %s\n", c.name, msg)
	var ue *usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "lake: a Delta Lake table engine for interaction data.")
	fmt.Fprintln(w, "\nUsage: lake COMMAND [ARGS] [FLAGS]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	for _, n := range names {
		fmt.Fprintf(w, "  %-*s  %s\n", width, n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun `lake COMMAND -h` for a command's flags.")
}

// newFlags returns a flag set that reports errors as usage errors instead of exiting. Its Usage
// text goes to the flag set's output, which parse keeps discarded except for -h: a usage error
// is the one line run prints, and only -h prints the Usage text.
func newFlags(name, usage string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: lake %s %s\n", name, usage)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses flags interspersed with positional arguments and checks the number of positional
// arguments is within [min, max] (max < 0: no limit).
func parse(fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	out := fs.Output()
	fs.SetOutput(io.Discard)
	defer fs.SetOutput(out)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(out)
				fs.Usage()
				return nil, err
			}
			return nil, usagef("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < min {
		return nil, usagef("missing argument; usage: %s", usageLine(fs))
	}
	if max >= 0 && len(pos) > max {
		return nil, usagef("too many arguments: %q", pos[max:])
	}
	return pos, nil
}

// usageLine is the first line of fs's Usage text without its "Usage: " ("lake cat URI [...]").
func usageLine(fs *flag.FlagSet) string {
	var b strings.Builder
	out := fs.Output()
	fs.SetOutput(&b)
	fs.Usage()
	fs.SetOutput(out)
	line, _, _ := strings.Cut(b.String(), "\n")
	return strings.TrimPrefix(line, "Usage: ")
}

// nonNegFlag is an integer flag that refuses negative values (a version, or a limit where 0
// says "no limit"); set records whether the command line gave it. want says what is accepted,
// for the usage error ("versions start at 0").
type nonNegFlag struct {
	n    int64
	set  bool
	want string
}

func (f *nonNegFlag) String() string {
	if f == nil {
		return "0"
	}
	return strconv.FormatInt(f.n, 10)
}

func (f *nonNegFlag) Set(s string) error {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return fmt.Errorf("too large; %s", f.want)
	case err != nil:
		return fmt.Errorf("not a whole number; %s", f.want)
	case n < 0:
		return errors.New(f.want)
	}
	f.n, f.set = n, true
	return nil
}

// listFlag is a repeatable (and comma-splittable when split is set) string flag.
type listFlag struct {
	vals  []string
	split bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(s string) error {
	if l.split {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				l.vals = append(l.vals, p)
			}
		}
		return nil
	}
	l.vals = append(l.vals, s)
	return nil
}
