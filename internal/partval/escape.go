package partval

import (
	"strings"
	"unicode/utf8"
)

// needsEscape lists the ASCII characters Hive and Spark escape in partition folder names
// (Spark's ExternalCatalogUtils.charToEscape on a non-Windows host): the control characters,
// `"#%'*/:=?\{[]^` and DEL. NUL is escaped too, which Spark forgets; no filesystem holds it.
var needsEscape = func() (t [128]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for _, c := range "\"#%'*/:=?\\\x7f{[]^" {
		t[c] = true
	}
	return t
}()

const hexDigits = "0123456789ABCDEF"

// EscapePathSegment escapes s for a Hive-style partition folder name (`name=value`): the
// characters Spark escapes become %XX (upper-case hex, as Spark writes), and so does every byte
// of s that is not part of valid UTF-8, so that the folder name is valid UTF-8 and
// UnescapePathSegment gives s back exactly. Other characters, spaces and non-ASCII letters
// included, are kept.
func EscapePathSegment(s string) string {
	i := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if needsEscape[c] {
				break
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			break
		}
		i += n
	}
	if i == len(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if needsEscape[c] {
				b.WriteByte('%')
				b.WriteByte(hexDigits[c>>4])
				b.WriteByte(hexDigits[c&15])
			} else {
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
			i++
			continue
		}
		b.WriteString(s[i : i+n])
		i += n
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// UnescapePathSegment reverses EscapePathSegment, as Spark's unescapePathName does: every %XX
// with two hex digits becomes the byte XX (whichever writer escaped it, and whatever it
// escaped: some wrote `%20` for a space); a % not followed by two hex digits is kept.
func UnescapePathSegment(s string) string {
	i := strings.IndexByte(s, '%')
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(s[:i])
	for i < len(s) {
		c := s[i]
		if c == '%' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				b.WriteByte(hi<<4 | lo)
				i += 3
				continue
			}
		}
		b.WriteByte(c)
		i++
	}
	return b.String()
}

// PartitionSegment is the folder name of one partition column: the escaped name, "=", and the
// escaped value or NullPartition for a null (nil) value.
func PartitionSegment(column string, value *string) string {
	v := NullPartition
	if value != nil && *value != "" {
		v = EscapePathSegment(*value)
	}
	return EscapePathSegment(column) + "=" + v
}

// uriSafe lists the bytes EncodeURIPath keeps: RFC 3986 unreserved characters, the path
// separator, and "=" (so partition folders read as in Spark's logs).
var uriSafe = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~/=" {
		t[c] = true
	}
	return t
}()

// EncodeURIPath turns a relative object key (`x=A%2FA/part-0.parquet`) into the URI that
// add.path and remove.path hold (`x=A%252FA/part-0.parquet`): the protocol says the path is an
// RFC 2396 URI. Every byte other than letters, digits, "-._~/=" is percent-encoded, so the
// result decodes the same way under every URI decoder (a "+" is not mistaken for a space, a ":"
// not for a scheme).
func EncodeURIPath(key string) string {
	n := 0
	for i := 0; i < len(key); i++ {
		if !uriSafe[key[i]] {
			n++
		}
	}
	if n == 0 {
		return key
	}
	b := make([]byte, 0, len(key)+2*n)
	for i := 0; i < len(key); i++ {
		c := key[i]
		if uriSafe[c] {
			b = append(b, c)
		} else {
			b = append(b, '%', hexDigits[c>>4], hexDigits[c&15])
		}
	}
	return string(b)
}

// DecodeURIPath turns an add.path or remove.path back into the object key: it decodes every
// %XX once. A malformed escape is kept as it is (Spark's logs never hold one).
func DecodeURIPath(path string) string { return UnescapePathSegment(path) }
