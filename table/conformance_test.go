package table_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lakehouse/lake/internal/testutil"
	"github.com/lakehouse/lake/table"
	"github.com/lakehouse/lake/txlog"
)

// decodeAll URL-decodes a path until it no longer changes, as the corpus checker does.
func decodeAll(p string) string {
	for {
		d, err := url.PathUnescape(p)
		if err != nil || d == p {
			return p
		}
		p = d
	}
}

func expectedFiles(t *testing.T, tbl string, v int64) []string {
	data, err := os.ReadFile(testutil.ExpectedFile(tbl, fmt.Sprintf("v%d.files", v)))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, decodeAll(l))
		}
	}
	slices.Sort(out)
	return out
}

// Every table and version of the corpus: the active files match the expectation; tables with no
// expected versions are refused with an error naming a reader feature.
func TestConformanceFiles(t *testing.T) {
	ctx := context.Background()
	for _, exp := range testutil.Expectations(t) {
		t.Run(exp.Table, func(t *testing.T) {
			path := testutil.CopyTable(t, exp.Table)
			tbl, err := table.Open(ctx, path, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer tbl.Close()
			if len(exp.Versions) == 0 {
				_, err := tbl.Snapshot(ctx)
				var uf *txlog.UnsupportedFeatureError
				if !errors.As(err, &uf) {
					t.Fatalf("want an unsupported-feature error, got %v", err)
				}
				if !strings.Contains(err.Error(), uf.Feature) || uf.Feature == "" {
					t.Fatalf("error does not name the feature: %v", err)
				}
				return
			}
			latest, err := tbl.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if latest.Version() != exp.Latest {
				t.Errorf("latest version %d, want %d", latest.Version(), exp.Latest)
			}
			for _, v := range exp.SortedVersions() {
				snap, err := tbl.SnapshotAt(ctx, v)
				if err != nil {
					t.Errorf("v%d: %v", v, err)
					continue
				}
				var got []string
				for _, a := range snap.Files() {
					got = append(got, decodeAll(a.Path))
				}
				slices.Sort(got)
				want := expectedFiles(t, exp.Table, v)
				if !slices.Equal(got, want) {
					t.Errorf("v%d: files differ:\n got %d %v\nwant %d %v", v, len(got), head(got), len(want), head(want))
				}
				if n := exp.Versions[fmt.Sprint(v)].Files; n != len(got) {
					t.Errorf("v%d: %d files, meta.json says %d", v, len(got), n)
				}
			}
		})
	}
}

func head(s []string) []string {
	if len(s) > 4 {
		return s[:4]
	}
	return s
}
