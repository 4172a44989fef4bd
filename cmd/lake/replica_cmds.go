package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/lakehouse/lake/replica"
)

func init() {
	register(&command{name: "clone", summary: "copy a snapshot of a table to another store as a new table", run: runClone})
	register(&command{name: "sync", summary: "keep a version-for-version replica of a table in another store", run: runSync})
}

func runClone(ctx context.Context, e *env, args []string) error {
	fs := newFlags("clone", "SRC DST [--version N] [--shallow] [--parallel N] [--json]", e)
	version := &nonNegFlag{want: "versions start at 0 (`lake history SRC` lists the source's versions)"}
	fs.Var(version, "version", "clone version `N` of SRC (default: the latest)")
	shallow := fs.Bool("shallow", false, "copy no files: DST's log names SRC's files by absolute URI (a vacuum of SRC breaks DST)")
	parallel := fs.Int("parallel", 16, "parallel file transfers")
	asJSON := fs.Bool("json", false, "print the result as one JSON line")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if err := checkPair(pos[0], pos[1], *parallel); err != nil {
		return err
	}
	to, sink := transferOptions(e, "clone", *parallel)
	opts := &replica.CloneOptions{Shallow: *shallow, Options: to}
	if version.set {
		opts.Version = &version.n
	}
	start := time.Now()
	res, err := replica.Clone(ctx, pos[0], pos[1], opts)
	sink.p.done()
	if err != nil {
		return err
	}
	el := time.Since(start)
	if *asJSON {
		return json.NewEncoder(e.stdout).Encode(map[string]any{
			"source_version": res.SourceVersion, "table_id": res.TableID, "files": res.Files, "bytes": res.Bytes,
			"files_copied": res.FilesCopied, "bytes_copied": res.BytesCopied, "files_skipped": res.FilesSkipped,
			"files_checksummed": res.FilesChecksummed, "files_md5": res.FilesMD5, "files_crc32c": res.FilesCRC32C,
			"files_crc32": res.FilesCRC32, "made_relative": res.MadeRelative, "shallow": *shallow, "seconds": el.Seconds(),
		})
	}
	kind := "deep"
	if *shallow {
		kind = "shallow"
	}
	fmt.Fprintf(e.stdout, "cloned %s version %d to %s (%s): version 0 with %d files, %s; copied %d files (%s) in %.2fs, %d already there; new table id %s\n",
		pos[0], res.SourceVersion, pos[1], kind, res.Files, mib(res.Bytes), res.FilesCopied, mib(res.BytesCopied), el.Seconds(), res.FilesSkipped, res.TableID)
	if *shallow {
		fmt.Fprintf(e.stderr, "lake clone: note: the shallow clone reads %s's files; a vacuum there breaks it (its property %s names the source)\n", pos[0], replica.ShallowSourceProperty)
	}
	return nil
}

func runSync(ctx context.Context, e *env, args []string) error {
	fs := newFlags("sync", "SRC DST [--follow] [--interval D] [--parallel N] [--json]", e)
	follow := fs.Bool("follow", false, "keep syncing every --interval until interrupted")
	intervalS := fs.String("interval", "10s", "how often --follow polls SRC (Go durations, d, w)")
	parallel := fs.Int("parallel", 16, "parallel file transfers")
	asJSON := fs.Bool("json", false, "print each round's result as one JSON line")
	pos, err := parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	if err := checkPair(pos[0], pos[1], *parallel); err != nil {
		return err
	}
	interval, err := parseDuration(*intervalS)
	if err != nil || interval <= 0 {
		return usagef("--interval %q: want a positive duration such as 10s, 5m or 1h", *intervalS)
	}
	to, sink := transferOptions(e, "sync", *parallel)
	opts := &replica.SyncOptions{Options: to}
	rounds := 0
	report := func(res *replica.SyncResult, el time.Duration) {
		rounds++
		sink.p.done()
		if *asJSON {
			json.NewEncoder(e.stdout).Encode(map[string]any{
				"from": res.From, "to": res.To, "latest": res.Latest, "bootstrapped": res.Bootstrapped,
				"files_copied": res.FilesCopied, "bytes_copied": res.BytesCopied, "files_skipped": res.FilesSkipped,
				"files_checksummed": res.FilesChecksummed, "files_md5": res.FilesMD5, "files_crc32c": res.FilesCRC32C,
				"files_crc32": res.FilesCRC32, "seconds": el.Seconds(),
			})
			return
		}
		if res.From > res.To && res.Bootstrapped {
			fmt.Fprintf(e.stdout, "started %s at the source's checkpoint %d: copied %d files (%s) in %.2fs, %d already there\n",
				pos[1], res.To, res.FilesCopied, mib(res.BytesCopied), el.Seconds(), res.FilesSkipped)
			return
		}
		if res.From > res.To {
			if rounds == 1 { // --follow says it once, not every interval
				fmt.Fprintf(e.stdout, "%s is up to date at version %d\n", pos[1], res.To)
			}
			return
		}
		how := ""
		if res.Bootstrapped {
			how = fmt.Sprintf(" (started at the source's checkpoint %d)", res.From-1)
		}
		fmt.Fprintf(e.stdout, "synced versions %d..%d to %s%s: copied %d files (%s) in %.2fs, %d already there\n",
			res.From, res.To, pos[1], how, res.FilesCopied, mib(res.BytesCopied), el.Seconds(), res.FilesSkipped)
	}
	if !*follow {
		start := time.Now()
		res, err := replica.Sync(ctx, pos[0], pos[1], opts)
		if err != nil {
			return err
		}
		report(res, time.Since(start))
		return nil
	}
	start := time.Now()
	return replica.Follow(ctx, pos[0], pos[1], interval, opts, func(res *replica.SyncResult) {
		report(res, time.Since(start))
		start = time.Now().Add(interval) // the next round starts after the wait
	})
}

// checkPair refuses what has no meaning before touching either table.
func checkPair(src, dst string, parallel int) error {
	if parallel < 1 {
		return usagef("--parallel %d: want 1 or more", parallel)
	}
	if strings.TrimRight(src, "/") == strings.TrimRight(dst, "/") {
		return usagef("SRC and DST are the same location (%s)", src)
	}
	return nil
}

// progressSink shows transfers on the progress line.
type progressSink struct {
	p    *progress
	name string
}

func (s *progressSink) show(pr replica.Progress) {
	if !s.p.due() {
		return
	}
	frac := 0.0
	if pr.TotalBytes > 0 {
		frac = min(float64(pr.Bytes)/float64(pr.TotalBytes), 1)
	}
	n := int(frac * 24)
	fmt.Fprintf(s.p.w, "\r%s [%s%s] %3.0f%% %d/%d files, %s/%s ", s.name, strings.Repeat("=", n), strings.Repeat(" ", 24-n),
		frac*100, pr.Files, pr.TotalFiles, mib(pr.Bytes), mib(pr.TotalBytes))
}

func transferOptions(e *env, name string, parallel int) (replica.Options, *progressSink) {
	s := &progressSink{p: newProgress(e.stderr), name: name}
	return replica.Options{Concurrency: parallel, Progress: s.show}, s
}
