package txlog

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCanonicalPath(t *testing.T) {
	cases := []struct {
		root, in, want string
	}{
		// Relative paths: canonical already, escaped or not, dot segments.
		{"", "part-0001.parquet", "part-0001.parquet"},
		{"", "day=2024-01-01/part-0.parquet", "day=2024-01-01/part-0.parquet"},
		{"", "./day=2024-01-01//part-0.parquet", "day=2024-01-01/part-0.parquet"},
		{"", "a/../b/p.parquet", "b/p.parquet"},
		{"", "city=New%20York/p.parquet", "city=New%20York/p.parquet"},
		{"", "city=New York/p.parquet", "city=New%20York/p.parquet"},
		{"", "city=new%20york/p.parquet", "city=new%20york/p.parquet"},
		{"", "ts=2024-01-01 00%3A00%3A00/p.parquet", "ts=2024-01-01%2000%3A00%3A00/p.parquet"},
		{"", "ts=2024-01-01 00:00:00/p.parquet", "ts=2024-01-01%2000%3A00%3A00/p.parquet"},
		{"", "x=A%252FB/p.parquet", "x=A%252FB/p.parquet"}, // one decoding: the folder "x=A%2FB"
		{"", "x=100%/p.parquet", "x=100%25/p.parquet"},     // an invalid escape is a literal '%'
		{"", "x=100%25/p.parquet", "x=100%25/p.parquet"},
		{"", "caf%C3%A9/p.parquet", "caf%C3%A9/p.parquet"},
		{"", "café/p.parquet", "caf%C3%A9/p.parquet"},
		{"", "%2Fp.parquet", "%2Fp.parquet"}, // an escaped leading slash stays relative
		{"", "", ""},
		// Absolute paths.
		{"", "file:/tmp/t/p.parquet", "file:///tmp/t/p.parquet"},
		{"", "file:///tmp/t/p.parquet", "file:///tmp/t/p.parquet"},
		{"", "file://localhost/tmp/t/p.parquet", "file:///tmp/t/p.parquet"},
		{"", "/tmp/t/p.parquet", "file:///tmp/t/p.parquet"},
		{"", "FILE:/tmp/a%20b/p.parquet", "file:///tmp/a%20b/p.parquet"},
		{"", "file:/tmp/a b/p.parquet", "file:///tmp/a%20b/p.parquet"},
		{"", "s3://bucket/t/p.parquet", "s3://bucket/t/p.parquet"},
		{"", "s3://bucket/t//x=a%20b/./p.parquet", "s3://bucket/t/x=a%20b/p.parquet"},
		{"", "s3a://bucket/t/p.parquet", "s3a://bucket/t/p.parquet"},
		// With a root: absolute paths under it become relative.
		{"file:///tmp/t", "file:/tmp/t/p.parquet", "p.parquet"},
		{"file:///tmp/t/", "/tmp/t/x=1/p.parquet", "x=1/p.parquet"},
		{"/tmp/t", "file:///tmp/t/a%20b/p.parquet", "a%20b/p.parquet"},
		{"file:///tmp/t", "p.parquet", "p.parquet"},
		{"file:///tmp/t", "file:///tmp/other/p.parquet", "file:///tmp/other/p.parquet"},
		{"file:///tmp/t", "file:///tmp/tt/p.parquet", "file:///tmp/tt/p.parquet"},
		{"s3://bucket/t", "s3://bucket/t/p.parquet", "p.parquet"},
		{"s3://bucket/t", "/t/p.parquet", "p.parquet"}, // scheme-less: the table's file system
		{"s3://bucket/t", "s3://other/t/p.parquet", "s3://other/t/p.parquet"},
	}
	for _, c := range cases {
		if got := canonicalPath(c.root, c.in); got != c.want {
			t.Errorf("canonicalPath(%q, %q) = %q, want %q", c.root, c.in, got, c.want)
		}
		if got := canonicalPath(c.root, canonicalPath(c.root, c.in)); got != c.want {
			t.Errorf("canonicalPath(%q, %q) is not idempotent: %q", c.root, c.in, got)
		}
	}
}

func TestCanonicalPathNoAlloc(t *testing.T) {
	for _, p := range []string{
		"day=2024-01-01/part-00000-0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0.c000.snappy.parquet",
		"ts=2024-01-01%2000%253A00%253A00/part-00000.snappy.parquet", // Spark's escaped timestamps
	} {
		if n := testing.AllocsPerRun(100, func() { _ = FileKey(p, nil) }); n != 0 {
			t.Errorf("FileKey(%q) allocates %v times", p, n)
		}
	}
}

// spellings returns other spellings of the file that canonical relative path rel names under
// the table at root (an absolute local directory).
func spellings(root, rel string) []string {
	dec, err := url.PathUnescape(rel)
	if err != nil {
		dec = rel
	}
	abs := strings.TrimSuffix(root, "/") + "/" + rel
	out := []string{rel, "./" + rel, "file:" + abs, "file://" + abs, "file://localhost" + abs, abs}
	// Unescaped spellings exist when the first segment holds no ':' (it would read as a scheme).
	first, _, _ := strings.Cut(dec, "/")
	if !strings.Contains(first, ":") {
		out = append(out, url.PathEscape(dec)) // escapes '/' too: "%2F" is a slash once decoded
		if !strings.Contains(dec, "%") {
			out = append(out, dec) // the literal path, when it cannot read as escaped
		}
	}
	return out
}

func FuzzCanonicalPath(f *testing.F) {
	for _, s := range []string{"p.parquet", "a b/c%20d", "file:/x/y", "file:///x/y", "/x/./y/../z",
		"s3://b/k", "%2Fa", "100%", "x=A%252F/p", "c:x", "ts=1 00:00:00/p", "café", ""} {
		f.Add("/tmp/table", s)
	}
	f.Fuzz(func(t *testing.T, root, p string) {
		if c, _ := canonical(p); plainRelative(p) && c != p {
			t.Fatalf("the fast path keeps %q, whose canonical form is %q", p, c)
		}
		for _, r := range []string{"", root} {
			c := canonicalPath(r, p)
			if again := canonicalPath(r, c); again != c {
				t.Fatalf("not idempotent: canonicalPath(%q, %q) = %q, then %q", r, p, c, again)
			}
		}
		// Every spelling of a file under a table names it by one key.
		rel := canonicalPath("", p)
		if rel == "" || strings.Contains(rel, "://") || strings.HasPrefix(rel, "%2F") ||
			rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
			return
		}
		const root2 = "/tmp/table"
		for _, sp := range spellings(root2, rel) {
			if got := canonicalPath("file://"+root2, sp); got != rel {
				t.Fatalf("%q under %s: key %q, want %q (from %q)", sp, root2, got, rel, p)
			}
		}
	})
}

// TestReplayPathForms replays logs where a remove (or a later add) names a file in another
// spelling than its add: the file is gone from (or replaced in) the snapshot.
func TestReplayPathForms(t *testing.T) {
	ctx := context.Background()
	type step struct {
		add    string // path of an add, or ""
		remove string // path of a remove, or ""
	}
	cases := []struct {
		name   string
		steps  []step
		active []string // paths of the active files, sorted
	}{
		{"escaped vs unescaped", []step{{add: "day=a%20b/p1.parquet"}, {remove: "day=a b/p1.parquet"}}, nil},
		{"unescaped vs escaped", []step{{add: "day=a b/p1.parquet"}, {remove: "day=a%20b/p1.parquet"}}, nil},
		{"file: vs file:///", []step{{add: "file:/data/t/p1.parquet"}, {remove: "file:///data/t/p1.parquet"}}, nil},
		{"bare vs file:", []step{{add: "/data/t/p1.parquet"}, {remove: "file:/data/t/p1.parquet"}}, nil},
		{"dot segments", []step{{add: "./x/p1.parquet"}, {remove: "x//p1.parquet"}}, nil},
		{"absolute remove of a relative add", []step{{add: "day=a%20b/p1.parquet"}, {add: "p2.parquet"},
			{remove: "file:///data/t/day=a%20b/p1.parquet"}}, []string{"p2.parquet"}},
		// Without the root, two active files fit: the remove matches neither.
		{"absolute remove, ambiguous", []step{{add: "p1.parquet"}, {add: "x/p1.parquet"},
			{remove: "file:///data/t/x/p1.parquet"}}, []string{"p1.parquet", "x/p1.parquet"}},
		{"re-add in another spelling", []step{{add: "a b.parquet"}, {add: "a%20b.parquet"}}, []string{"a%20b.parquet"}},
		{"other file kept", []step{{add: "p1.parquet"}, {remove: "p10.parquet"}}, []string{"p1.parquet"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, b := newTestLog(t, nil)
			s := createTable(t, l, nil)
			_ = s
			for i, st := range c.steps {
				var acts []Action
				if st.add != "" {
					acts = append(acts, addAction(st.add, "d"))
				}
				if st.remove != "" {
					acts = append(acts, removeAction(st.remove))
				}
				data, err := EncodeActions(acts)
				if err != nil {
					t.Fatal(err)
				}
				key := fmt.Sprintf("%s%020d.json", LogDir, i+1)
				if err := b.WriteAll(ctx, key, data, nil); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := l.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range snap.Files() {
				got = append(got, a.Path)
			}
			if fmt.Sprint(got) != fmt.Sprint(c.active) {
				t.Errorf("active files %q, want %q", got, c.active)
			}
			// A checkpoint keeps the same state, and later removes still match.
			if _, err := l.Checkpoint(ctx, snap); err != nil {
				t.Fatal(err)
			}
			if len(c.active) == 0 {
				return
			}
			ts := time.Now().UnixMilli()
			data, _ := EncodeActions([]Action{{Remove: &Remove{Path: "file:///data/t/" + c.active[0], DeletionTimestamp: &ts}}})
			if err := b.WriteAll(ctx, fmt.Sprintf("%s%020d.json", LogDir, len(c.steps)+1), data, nil); err != nil {
				t.Fatal(err)
			}
			snap2, err := l.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if snap2.NumFiles() != len(c.active)-1 {
				t.Errorf("after a checkpoint and an absolute remove of %s: %d files, want %d", c.active[0], snap2.NumFiles(), len(c.active)-1)
			}
		})
	}
}

// With the table's root known (LogOptions.Root, set by table.Open), a remove by absolute URI
// matches exactly the file it names under the root, even where the suffix rule would find two
// candidates, and a remove of a file outside the root matches nothing.
func TestReplayPathFormsWithRoot(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		steps  []Action
		active string
	}{
		{"exact under the root", []Action{addAction("p1.parquet", "d"), addAction("x/p1.parquet", "d"),
			removeAction("file:///data/t/x/p1.parquet")}, "[p1.parquet]"},
		{"bare absolute path under the root", []Action{addAction("day=a%20b/p1.parquet", "d"),
			removeAction("/data/t/day=a b/p1.parquet")}, "[]"},
		{"outside the root: no guess", []Action{addAction("x/p1.parquet", "d"),
			removeAction("file:///elsewhere/x/p1.parquet")}, "[x/p1.parquet]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			l, b := newTestLog(t, &LogOptions{Root: "file:///data/t"})
			createTable(t, l, nil)
			for i, a := range c.steps {
				data, err := EncodeActions([]Action{a})
				if err != nil {
					t.Fatal(err)
				}
				if err := b.WriteAll(ctx, fmt.Sprintf("%s%020d.json", LogDir, i+1), data, nil); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := l.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range snap.Files() {
				got = append(got, a.Path)
			}
			slices.Sort(got)
			if g := fmt.Sprint(got); g != c.active {
				t.Errorf("active files %s, want %s", g, c.active)
			}
		})
	}
}
