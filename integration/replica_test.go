package integration

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"gocloud.dev/blob"
	"golang.org/x/sync/errgroup"

	"github.com/lakehouse/lake/compaction"
	"github.com/lakehouse/lake/internal/storage"
	"github.com/lakehouse/lake/internal/storage/storagetest"
	"github.com/lakehouse/lake/internal/testutil/daytable"
	"github.com/lakehouse/lake/replica"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

func backend(t *testing.T, name string) storagetest.Backend {
	for _, b := range storagetest.Backends(t) {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("no backend %s", name)
	return storagetest.Backend{}
}

// TestReplicaAcrossStores clones and syncs between pairs of stores in which every store is a
// source and a destination: rows at the destination equal the source's at every mirrored
// version, time travel works there, and the clone equals the source's latest version.
func TestReplicaAcrossStores(t *testing.T) {
	pairs := [][2]string{{"local", "s3"}, {"s3", "gcs"}, {"gcs", "azure"}, {"azure", "local"}, {"mem", "azure"}, {"gcs", "mem"}}
	for _, p := range pairs {
		t.Run(p[0]+"-"+p[1], func(t *testing.T) {
			ctx := context.Background()
			src := backend(t, p[0]).URI(t)
			dst := backend(t, p[1]).URI(t)
			cl := backend(t, p[1]).URI(t)
			st := daytable.Create(t, src, map[string]string{"delta.checkpointInterval": "3", "team": "recs"})
			for i := range 4 {
				daytable.Append(t, st, i*10, 10)
			}
			res, err := replica.Sync(ctx, src, dst, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.From != 0 || res.To != 4 || res.FilesCopied != 8 {
				t.Fatalf("sync: %+v", res)
			}
			t.Logf("sync %s: %d files copied, %d verified by a checksum (MD5 %d, CRC32C %d, CRC32 %d; the others by size)", p[0]+"-"+p[1], res.FilesCopied, res.FilesChecksummed, res.FilesMD5, res.FilesCRC32C, res.FilesCRC32)
			if (p[0] == "gcs" || p[1] == "gcs") && p[1] != "local" && res.FilesCRC32C != res.FilesCopied {
				t.Fatalf("sync %s: %d of %d copies checked by CRC32C", p[0]+"-"+p[1], res.FilesCRC32C, res.FilesCopied)
			}
			v := daytable.Append(t, st, 40, 10)
			if res, err := replica.Sync(ctx, src, dst, nil); err != nil || res.From != v || res.To != v {
				t.Fatalf("incremental sync: %+v, %v", res, err)
			}
			dt := daytable.Open(t, dst)
			for w := int64(0); w <= v; w++ {
				if got, want := daytable.Rows(t, dt, w), daytable.Rows(t, st, w); !slices.Equal(got, want) {
					t.Fatalf("version %d: %d rows at %s, %d at %s", w, len(got), p[1], len(want), p[0])
				}
			}
			if snap, err := dt.SnapshotAt(ctx, 2); err != nil || snap.NumFiles() != 4 {
				t.Fatalf("time travel to 2: %v", err)
			}
			if dir := dt.LocalDir(); dir != "" {
				// DuckDB reads the replica's files.
				snap, _ := dt.Snapshot(ctx)
				var quoted []string
				for _, f := range snap.Files() {
					quoted = append(quoted, "'"+filepath.Join(dir, filepath.FromSlash(f.Path))+"'")
				}
				var n int
				q := fmt.Sprintf("SELECT count(DISTINCT id) FROM read_parquet([%s], hive_partitioning = true)", strings.Join(quoted, ", "))
				if err := openDuck(t).QueryRow(q).Scan(&n); err != nil || n != 50 {
					t.Fatalf("duckdb: %d rows, %v", n, err)
				}
			}

			cres, err := replica.Clone(ctx, src, cl, nil)
			if err != nil {
				t.Fatal(err)
			}
			ct := daytable.Open(t, cl)
			if got, want := daytable.Rows(t, ct, 0), daytable.Rows(t, st, v); !slices.Equal(got, want) || len(got) != 50 {
				t.Fatalf("clone: %d rows, want %d", len(got), len(want))
			}
			snap, _ := ct.Snapshot(ctx)
			if snap.Configuration()["team"] != "recs" || cres.FilesCopied != 10 {
				t.Fatalf("clone: %+v, configuration %v", cres, snap.Configuration())
			}
			if _, err := replica.Clone(ctx, src, cl, nil); err == nil {
				t.Fatal("a second clone into the same place was not refused")
			}
		})
	}
}

// TestReplicaDeepCloneOfShallow deep-clones a shallow clone (local source, shallow clone on
// mem://) to GCS: the copy reads the same rows, names its files by relative path, verifies
// every copy by CRC32C, and stays readable after the original is vacuumed.
func TestReplicaDeepCloneOfShallow(t *testing.T) {
	ctx := context.Background()
	orig := backend(t, "local").URI(t)
	shal := backend(t, "mem").URI(t)
	deep := backend(t, "gcs").URI(t)
	ot := daytable.Create(t, orig, nil)
	for i := range 3 {
		daytable.Append(t, ot, i*10, 10)
	}
	if _, err := replica.Clone(ctx, orig, shal, &replica.CloneOptions{Shallow: true}); err != nil {
		t.Fatal(err)
	}
	daytable.Append(t, daytable.Open(t, shal), 100, 4)
	want := daytable.Rows(t, daytable.Open(t, shal), 1)
	res, err := replica.Clone(ctx, shal, deep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.MadeRelative != 6 || res.FilesCopied != 8 || res.FilesCRC32C != 8 {
		t.Fatalf("%+v", res)
	}
	dt := daytable.Open(t, deep)
	snap, _ := dt.Snapshot(ctx)
	for _, f := range snap.Files() {
		if strings.Contains(f.Path, "://") {
			t.Fatalf("absolute path %s in the deep copy", f.Path)
		}
	}
	if _, err := compaction.Optimize(ctx, ot, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := compaction.Vacuum(ctx, ot, &compaction.VacuumOptions{Retention: time.Nanosecond, Force: true, Now: func() time.Time { return time.Now().Add(time.Hour) }}); err != nil {
		t.Fatal(err)
	}
	if got := daytable.Rows(t, daytable.Open(t, deep), 0); !slices.Equal(got, want) || len(got) != 34 {
		t.Fatalf("after the original's vacuum: %d rows, want %d", len(got), len(want))
	}
}

// TestReplicaWhileWriting syncs (following) from a local table to S3 while two writers append
// and optimize compacts; after they stop, a final sync gives S3 the source's rows at every
// version.
func TestReplicaWhileWriting(t *testing.T) {
	ctx := context.Background()
	src := backend(t, "local").URI(t)
	dst := backend(t, "s3").URI(t)
	st := daytable.Create(t, src, map[string]string{"delta.checkpointInterval": "5"})
	daytable.Append(t, st, 0, 10)
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	followed := 0
	follow := make(chan error, 1)
	go func() {
		follow <- replica.Follow(fctx, src, dst, 20*time.Millisecond, nil, func(r *replica.SyncResult) {
			if r.To >= r.From {
				followed++
			}
		})
	}()
	var g errgroup.Group
	for w := range 2 {
		g.Go(func() error {
			wt, err := table.Open(ctx, src, nil)
			if err != nil {
				return err
			}
			defer wt.Close()
			for i := range 6 {
				daytable.Append(t, wt, 1000*(w+1)+i*10, 10)
			}
			return nil
		})
	}
	g.Go(func() error {
		time.Sleep(100 * time.Millisecond)
		ot, err := table.Open(ctx, src, nil)
		if err != nil {
			return err
		}
		defer ot.Close()
		_, err = compaction.Optimize(ctx, ot, nil)
		return err
	})
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := <-follow; err != nil {
		t.Fatal(err)
	}
	res, err := replica.Sync(ctx, src, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	dt := daytable.Open(t, dst)
	snap, _ := st.Snapshot(ctx)
	if res.Latest != snap.Version() {
		t.Fatalf("final sync reached %d, the source is at %d", res.Latest, snap.Version())
	}
	for v := int64(0); v <= snap.Version(); v++ {
		if got, want := daytable.Rows(t, dt, v), daytable.Rows(t, st, v); !slices.Equal(got, want) {
			t.Fatalf("version %d: %d rows at dst, %d at src", v, len(got), len(want))
		}
	}
	if n := len(daytable.Rows(t, dt, snap.Version())); n != 130 {
		t.Fatalf("%d rows at the end, want 130", n)
	}
	t.Logf("%d versions; %d follow rounds copied something before the writers stopped", snap.Version()+1, followed)
}

// TestReplicaKill9 kills `lake sync` with SIGKILL while it copies files, then runs it again:
// the replica converges with every row once, and the rerun skips the files the first run
// verified.
func TestReplicaKill9(t *testing.T) {
	ctx := context.Background()
	work := t.TempDir()
	src, dst := filepath.Join(work, "src"), filepath.Join(work, "dst")
	st := daytable.Create(t, src, nil)
	const commits = 30
	for i := range commits {
		daytable.Append(t, st, i*10, 10)
	}
	cmd := exec.Command(lake(t), "sync", src, dst, "--parallel", "1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	killed := false
	for time.Now().Before(deadline) {
		n := countParquet(t, dst)
		if n >= 5 {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			break
		}
		time.Sleep(time.Millisecond)
	}
	cmd.Wait()
	if !killed {
		t.Fatal("the first sync did not copy 5 files in 20 s")
	}
	if _, err := os.Stat(filepath.Join(dst, "_delta_log", fmt.Sprintf("%020d.json", commits))); err == nil {
		t.Skip("the first sync finished before it was killed")
	}
	out := runLake(t, "sync", src, dst, "--json")
	var res map[string]any
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	skipped, copied := res["files_skipped"].(float64), res["files_copied"].(float64)
	if skipped < 4 || skipped+copied != 2*commits {
		t.Fatalf("rerun: %s", out)
	}
	dt := daytable.Open(t, dst)
	got, want := daytable.Rows(t, dt, commits), daytable.Rows(t, st, commits)
	if !slices.Equal(got, want) || len(got) != commits*10 {
		t.Fatalf("%d rows at dst, %d at src", len(got), len(want))
	}
	_ = ctx
	t.Logf("rerun: %s", strings.TrimSpace(out))
}

func countParquet(t *testing.T, dir string) int {
	n := 0
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".parquet") && !strings.Contains(p, ".lake-tmp") {
			n++
		}
		return nil
	})
	return n
}

// TestReplicaBench measures a clone of a table of random-byte files (LAKE_BENCH_REPLICA_MIB,
// default 256 MiB, in files of LAKE_BENCH_REPLICA_FILE_KIB, default 8192: 8 MiB) against a plain parallel copy of the same objects, in the
// same run, between the stores LAKE_BENCH_REPLICA_PAIR names (default "local-local"; e.g.
// "s3-gcs"), and the time of an incremental sync of one new commit on local stores. It runs
// only when LAKE_BENCH_REPLICA is set (Azurite keeps at most 512 MB in memory and frees deleted
// blobs late: with azure, stay at 128 MiB and LAKE_BENCH_REPLICA_ROUNDS=1):
//
//	LAKE_BENCH_REPLICA=1 go test -run TestReplicaBench -v -count=1 .
func TestReplicaBench(t *testing.T) {
	if os.Getenv("LAKE_BENCH_REPLICA") == "" {
		t.Skip("set LAKE_BENCH_REPLICA=1 (and LAKE_BENCH_REPLICA_MIB, LAKE_BENCH_REPLICA_PAIR) to run")
	}
	ctx := context.Background()
	mibs := 256
	if s := os.Getenv("LAKE_BENCH_REPLICA_MIB"); s != "" {
		mibs, _ = strconv.Atoi(s)
	}
	pair := "local-local"
	if s := os.Getenv("LAKE_BENCH_REPLICA_PAIR"); s != "" {
		pair = s
	}
	from, to, _ := strings.Cut(pair, "-")
	src := backend(t, from).URI(t)
	st := daytable.Create(t, src, nil)
	fileKiB := 8 << 10
	if s := os.Getenv("LAKE_BENCH_REPLICA_FILE_KIB"); s != "" {
		fileKiB, _ = strconv.Atoi(s)
	}
	nfiles := max(mibs<<10/fileKiB, 1)
	buf := make([]byte, fileKiB<<10)
	var adds []txlog.Action
	keys := make([]string, nfiles)
	for i := range nfiles {
		rand.Read(buf)
		keys[i] = fmt.Sprintf("day=2024-01-01/part-%05d.parquet", i)
		if err := st.Bucket().WriteAll(ctx, keys[i], buf, nil); err != nil {
			t.Fatal(err)
		}
		day := "2024-01-01"
		adds = append(adds, txlog.Action{Add: &txlog.Add{Path: keys[i], Size: int64(len(buf)), DataChange: true,
			PartitionValues: map[string]*string{"day": &day}, Stats: `{"numRecords":1}`}})
	}
	snap, _ := st.Snapshot(ctx)
	txn := st.Log().NewTransaction(snap, nil)
	txn.AddActions(adds...)
	if _, err := txn.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	total := float64(nfiles*fileKiB) / 1024
	plainCopy := func() time.Duration {
		// The same files, the same parallelism, no log, no verification.
		uri := backend(t, to).URI(t)
		defer wipe(t, uri)
		pl, err := storage.Open(ctx, uri)
		if err != nil {
			t.Fatal(err)
		}
		defer pl.Close()
		start := time.Now()
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(16)
		for _, k := range keys {
			g.Go(func() error {
				r, err := st.Bucket().NewReader(gctx, k, nil)
				if err != nil {
					return err
				}
				defer r.Close()
				return pl.Bucket.Upload(gctx, k, r, &blob.WriterOptions{ContentType: "application/octet-stream"})
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	clone := func() time.Duration {
		uri := backend(t, to).URI(t)
		defer wipe(t, uri)
		start := time.Now()
		res, err := replica.Clone(ctx, src, uri, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.FilesCopied != int64(nfiles) {
			t.Fatalf("clone copied %d files", res.FilesCopied)
		}
		return time.Since(start)
	}
	rounds := 3
	if s := os.Getenv("LAKE_BENCH_REPLICA_ROUNDS"); s != "" {
		rounds, _ = strconv.Atoi(s)
	}
	bestPlain, bestClone := time.Duration(1<<62), time.Duration(1<<62)
	for round := range rounds {
		var plain, cl time.Duration
		if round%2 == 0 {
			plain, cl = plainCopy(), clone()
		} else {
			cl, plain = clone(), plainCopy()
		}
		bestPlain, bestClone = min(bestPlain, plain), min(bestClone, cl)
		t.Logf("round %d, %s, %.0f MiB in %d files: plain parallel copy %.2fs (%.0f MiB/s), clone %.2fs (%.0f MiB/s), ratio %.2f",
			round, pair, total, nfiles, plain.Seconds(), total/plain.Seconds(), cl.Seconds(), total/cl.Seconds(), plain.Seconds()/cl.Seconds())
	}
	t.Logf("best of %d, %s: plain %.0f MiB/s, clone %.0f MiB/s, ratio %.2f", rounds, pair, total/bestPlain.Seconds(), total/bestClone.Seconds(), bestPlain.Seconds()/bestClone.Seconds())

	// Incremental sync of one commit between local tables with some history.
	lsrc := backend(t, "local").URI(t)
	ldst := backend(t, "local").URI(t)
	lt := daytable.Create(t, lsrc, nil)
	for i := range 25 {
		daytable.Append(t, lt, i*10, 10)
	}
	if _, err := replica.Sync(ctx, lsrc, ldst, nil); err != nil {
		t.Fatal(err)
	}
	var times []time.Duration
	for i := range 5 {
		daytable.Append(t, lt, 1000+i*10, 10)
		start := time.Now()
		res, err := replica.Sync(ctx, lsrc, ldst, nil)
		if err != nil || res.From != res.To {
			t.Fatalf("%+v %v", res, err)
		}
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	t.Logf("incremental sync of one commit (2 files) on local stores, 5 runs: min %v, median %v, max %v", times[0], times[2], times[4])
}

// wipe deletes everything under uri (the benchmark's copies, so an in-memory emulator holds one
// at a time).
func wipe(t *testing.T, uri string) {
	ctx := context.Background()
	loc, err := storage.Open(ctx, uri)
	if err != nil {
		t.Fatal(err)
	}
	defer loc.Close()
	it := loc.Bucket.List(nil)
	for {
		obj, err := it.Next(ctx)
		if err != nil {
			return
		}
		loc.Bucket.Delete(ctx, obj.Key)
	}
}
