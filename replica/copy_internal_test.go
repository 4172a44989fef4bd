package replica

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
)

// TestCopyDetectsCorruption copies a source file whose bytes no longer match the MD5 its store
// recorded (fileblob keeps the MD5 in a sidecar written with the object; the bytes are then
// changed on disk, keeping the size): the copy fails verification and leaves nothing behind.
func TestCopyDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	for _, dstLocal := range []bool{false, true} {
		dir := t.TempDir()
		src, err := fileblob.OpenBucket(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if err := src.WriteAll(ctx, "part-0.parquet", []byte("hello world"), nil); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "part-0.parquet"), []byte("HELLO world"), 0o644); err != nil {
			t.Fatal(err)
		}
		dst := memblob.OpenBucket(nil)
		defer dst.Close()
		// dstLocal: the destination is taken to report no MD5s, so the bytes sent are hashed
		// and compared with the source's MD5; otherwise the destination's MD5 is compared.
		c := newCopier(src, dst, dstLocal, "src", 0, (&Options{}).withDefaults())
		err = c.copyAll(ctx, []fileRef{{key: "part-0.parquet", path: "part-0.parquet", size: 11}})
		var ve *VerifyError
		if !errors.As(err, &ve) || ve.What != "MD5" || ve.Path != "part-0.parquet" {
			t.Fatalf("dstLocal=%v: got %v", dstLocal, err)
		}
		if ok, _ := dst.Exists(ctx, "part-0.parquet"); ok {
			t.Fatalf("dstLocal=%v: the bad copy was left at the destination", dstLocal)
		}
		// An intact file passes and is counted as checksummed.
		if err := src.WriteAll(ctx, "part-1.parquet", []byte("intact"), nil); err != nil {
			t.Fatal(err)
		}
		if err := c.copyAll(ctx, []fileRef{{key: "part-1.parquet", path: "part-1.parquet", size: 6}}); err != nil {
			t.Fatal(err)
		}
		if s := c.snapshotStats(); s.FilesCopied != 1 || s.FilesChecksummed != 1 {
			t.Fatalf("dstLocal=%v: %+v", dstLocal, s)
		}
	}
}

func TestDVKey(t *testing.T) {
	// The example of the protocol's "Deletion Vector Descriptor" section.
	k, err := dvKey("ab^-aqEH.-t@S}K{vb[*k^")
	if err != nil {
		t.Fatal(err)
	}
	if want := "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"; k != want {
		t.Fatalf("got %s, want %s", k, want)
	}
	if _, err := dvKey("short"); err == nil {
		t.Fatal("a short path was accepted")
	}
}

func TestZ85RoundTrip(t *testing.T) {
	k, err := dvKey("ab" + z85Encode([]byte{0xd2, 0xc6, 0x39, 0xaa, 0x88, 0x16, 0x43, 0x1a, 0xaa, 0xf6, 0xd3, 0xfe, 0x25, 0x12, 0xff, 0x61}))
	if err != nil {
		t.Fatal(err)
	}
	if want := "ab/deletion_vector_d2c639aa-8816-431a-aaf6-d3fe2512ff61.bin"; k != want {
		t.Fatalf("got %s, want %s", k, want)
	}
	if got := z85Encode([]byte{0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B}); got != "HelloWorld" {
		t.Fatalf("z85 of the spec's example: %s", got)
	}
}

func TestKeyPlanner(t *testing.T) {
	var k keyPlanner
	if got := k.take("d=1/a.parquet", "rel"); got != "d=1/a.parquet" {
		t.Fatal(got)
	}
	a := k.take("d=1/a.parquet", "s3://b/t/d=1/a.parquet")
	if a == "d=1/a.parquet" || !strings.HasPrefix(a, "d=1/a-c") || !strings.HasSuffix(a, ".parquet") {
		t.Fatalf("clash got %s", a)
	}
	if again := k.take("d=1/a.parquet", "s3://b/t/d=1/a.parquet"); again != a {
		t.Fatalf("the same file got %s, then %s", a, again)
	}
}
