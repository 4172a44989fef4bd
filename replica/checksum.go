package replica

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"io"
	"strings"
	"sync/atomic"

	gcs "cloud.google.com/go/storage"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"gocloud.dev/blob"
)

// The checksums a copy compares where the stores offer them. What each store reports (measured
// on the emulators of scripts/services.sh, and as documented for the real services):
//
//   - MD5: blob.Attributes.MD5 on memblob, GCS (not for composed objects), S3 (single-part
//     uploads: the ETag) and Azure (Content-MD5, when the uploader sent or the service computed
//     it); local directories report none.
//   - CRC32C: GCS, on every object (storage.ObjectAttrs.CRC32C, through Attributes.As). S3 keeps
//     x-amz-checksum-crc32c for objects uploaded with that algorithm and returns it on a GET
//     with ChecksumMode ENABLED (not on gocloud's HEAD, which does not ask).
//   - CRC32: S3 keeps x-amz-checksum-crc32 for objects uploaded by the AWS SDK's default
//     (RequestChecksumCalculation "when supported" sends CRC32): every object gocloud's s3blob
//     writes. versitygw v1.8.0 stores and returns it like AWS.
//
// Azure's CRC64 is not compared (blob.Attributes does not carry it, and nothing else of ours
// computes it).
const (
	sumMD5 = iota
	sumCRC32C
	sumCRC32
	numSums
)

// sumNames are the checksums' names, as VerifyError.What gives them.
var sumNames = [numSums]string{"MD5", "CRC32C", "CRC32"}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sums are one side's checksums, indexed by sum*; nil: not known.
type sums [numSums][]byte

// attrSums returns the checksums a store reports in an object's attributes: MD5, and GCS's
// CRC32C.
func attrSums(a *blob.Attributes) sums {
	var s sums
	s[sumMD5] = a.MD5
	var oa gcs.ObjectAttrs
	if a.As(&oa) && oa.CRC32C != 0 { // 0: unset (a real CRC32C of 0 is then just not compared)
		s[sumCRC32C] = binary.BigEndian.AppendUint32(nil, oa.CRC32C)
	}
	return s
}

// askS3Checksum is a BeforeRead that asks S3 for the object's stored checksums.
func askS3Checksum(as func(any) bool) error {
	var in *s3.GetObjectInput
	if as(&in) {
		in.ChecksumMode = s3types.ChecksumModeEnabled
	}
	return nil
}

// readerSums returns the checksums a source's GET answered with, and whether it answered with
// any: S3's CRC32C and CRC32 (see askS3Checksum) and its ETag where it is an MD5 (single-part
// uploads), GCS's CRC32C. Composite checksums of S3 multipart uploads ("...-N") are checksums
// of the parts' checksums, not of the bytes, and are left out.
func readerSums(r *blob.Reader) (s sums, ok bool) {
	var out s3.GetObjectOutput
	if r.As(&out) {
		if out.ChecksumType != s3types.ChecksumTypeComposite {
			for k, v := range map[int]*string{sumCRC32C: out.ChecksumCRC32C, sumCRC32: out.ChecksumCRC32} {
				if v == nil || strings.Contains(*v, "-") {
					continue
				}
				if b, err := base64.StdEncoding.DecodeString(*v); err == nil && len(b) == 4 {
					s[k] = b
				}
			}
		}
		if e := aws.ToString(out.ETag); len(e) == 34 && e[0] == '"' && e[33] == '"' {
			if b, err := hex.DecodeString(e[1:33]); err == nil {
				s[sumMD5] = b
			}
		}
	}
	var gr *gcs.Reader
	if r.As(&gr) && gr.Attrs.CRC32C != 0 && !gr.Attrs.Decompressed {
		s[sumCRC32C] = binary.BigEndian.AppendUint32(nil, gr.Attrs.CRC32C)
	}
	for _, v := range s {
		if len(v) > 0 {
			return s, true
		}
	}
	return s, false
}

// hashers hash the bytes a copy sends; nil entries are not computed.
type hashers [numSums]hash.Hash

// writer returns one writer feeding every hasher, or nil when there is none.
func (h *hashers) writer() io.Writer {
	var ws []io.Writer
	for _, x := range h {
		if x != nil {
			ws = append(ws, x)
		}
	}
	switch len(ws) {
	case 0:
		return nil
	case 1:
		return ws[0]
	}
	return io.MultiWriter(ws...)
}

func (h *hashers) sums() sums {
	var s sums
	for k, x := range h {
		if x != nil {
			s[k] = x.Sum(nil)
		}
	}
	return s
}

// noteReports records whether a store reported a checksum: 0 unknown, 1 yes, 2 no. One object
// that has it makes it "yes" for good (GCS omits MD5 only for composed objects).
func noteReports(state *atomic.Int32, has bool) {
	if has {
		state.Store(1)
	} else {
		state.CompareAndSwap(0, 2)
	}
}
