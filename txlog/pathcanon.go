package txlog

import (
	"net/url"
	"path"
	"strings"
)

// This file decides when two paths of add and remove actions name the same file. The protocol
// stores a path as a URI (RFC 2396), relative to the table root or absolute, so one file has
// many spellings: file:/a/b, file:///a/b and /a/b; "a%20b" and "a b"; "./x" and "x". Replay
// matches actions by a canonical form of the path, as Spark does (it qualifies scheme-less
// absolute paths and compares URIs), and goes one step further: a remove that names a file under
// the table by its absolute URI matches the add that named it by its relative path.

// canonicalPath returns the canonical form of p, a path of an add or remove action, for the table
// whose root URI is root ("" when unknown).
//
//   - A relative path stays relative: URL-decoded once (a '%' that starts no valid escape is a
//     literal '%'), cleaned of "." and ".." segments and repeated slashes, then re-escaped with
//     one fixed escaping. A leading slash that was escaped ("%2Fa") stays escaped.
//   - An absolute path is scheme://authority/path with the same decoding, cleaning and escaping
//     of its path; the scheme is lower-cased. A path without a scheme ("/a/b") takes the root's
//     scheme and authority, or file:// without a root; "file:/a/b", "file:///a/b" and
//     "file://localhost/a/b" are all "file:///a/b".
//   - With a root, an absolute path under the root becomes relative to it, so it matches the
//     relative spelling of the same file.
//
// canonicalPath is idempotent: canonicalPath(root, canonicalPath(root, p)) is
// canonicalPath(root, p). A path already in canonical relative form is returned as is, without
// allocating: that is nearly every path Spark and lake write.
func canonicalPath(root, p string) string {
	if plainRelative(p) {
		return p
	}
	c, abs := canonical(p)
	if root == "" {
		return c
	}
	r, rootAbs := canonical(root)
	if !rootAbs {
		return c
	}
	if !abs {
		return c
	}
	if strings.HasPrefix(c, "file:///") && strings.HasPrefix(p, "/") {
		// A scheme-less absolute path is on the table's file system.
		c = schemeAuthority(r) + c[len("file://"):]
	}
	r = strings.TrimSuffix(r, "/")
	if rest, ok := strings.CutPrefix(c, r+"/"); ok && rest != "" {
		return rest
	}
	return c
}

// schemeAuthority is the "scheme://authority" part of a canonical absolute URI.
func schemeAuthority(c string) string {
	i := strings.Index(c, "://")
	j := strings.IndexByte(c[i+3:], '/')
	if j < 0 {
		return c
	}
	return c[:i+3+j]
}

// canonical returns the canonical form of p without a root, and whether it is absolute.
func canonical(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	if scheme, rest, ok := splitScheme(p); ok {
		authority, upath := "", rest
		if strings.HasPrefix(rest, "//") {
			rest = rest[2:]
			if i := strings.IndexByte(rest, '/'); i >= 0 {
				authority, upath = rest[:i], rest[i:]
			} else {
				authority, upath = rest, "/"
			}
		}
		if scheme == "file" && strings.EqualFold(authority, "localhost") {
			authority = ""
		}
		return scheme + "://" + authority + escapePath(cleanAbs(decode(upath))), true
	}
	if p[0] == '/' {
		return "file://" + escapePath(cleanAbs(decode(p))), true
	}
	d := decode(p)
	if d == "" {
		return "", false
	}
	var c string
	if d[0] == '/' {
		// An escaped leading slash: keep it escaped, so the result stays relative.
		c = "%2F" + escapePath(strings.TrimLeft(path.Clean(d), "/"))
	} else {
		c = escapePath(path.Clean(d))
	}
	return c, false
}

// cleanAbs cleans the path part of an absolute URI; it always starts with a slash.
func cleanAbs(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return path.Clean(p)
}

// decode URL-decodes p once; a p with an invalid escape is taken literally.
func decode(p string) string {
	if !strings.ContainsRune(p, '%') {
		return p
	}
	d, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return d
}

// splitScheme splits "scheme:rest" (RFC 3986: a letter, then letters, digits, '+', '-', '.').
// The scheme is lower-cased.
func splitScheme(p string) (scheme, rest string, ok bool) {
	i := strings.IndexByte(p, ':')
	if i <= 0 {
		return "", "", false
	}
	for j := 0; j < i; j++ {
		c := p[j]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case j > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", "", false
		}
	}
	return strings.ToLower(p[:i]), p[i+1:], true
}

// keepByte reports whether a byte stays unescaped in a canonical path: RFC 3986's unreserved
// characters, the sub-delimiters but ':' (so no relative path can look like a scheme), '@',
// and the separator '/'.
func keepByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	switch c {
	case '-', '.', '_', '~', '!', '$', '&', '\'', '(', ')', '*', '+', ',', ';', '=', '@', '/':
		return true
	}
	return false
}

const hexDigits = "0123456789ABCDEF"

// upperHex is the value of an upper-case hex digit, or -1.
func upperHex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// escapePath escapes every byte keepByte does not keep as %XX (upper-case hex).
func escapePath(p string) string {
	n := 0
	for i := 0; i < len(p); i++ {
		if !keepByte(p[i]) {
			n++
		}
	}
	if n == 0 {
		return p
	}
	var b strings.Builder
	b.Grow(len(p) + 2*n)
	for i := 0; i < len(p); i++ {
		c := p[i]
		if keepByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// plainRelative reports whether p is already a canonical relative path: kept bytes and
// upper-case escapes of bytes that are not kept, no leading or trailing slash, no empty, "." or
// ".." segment.
func plainRelative(p string) bool {
	if p == "" || p[0] == '/' || p[len(p)-1] == '/' {
		return false
	}
	segStart := 0
	for i := 0; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c == '%' {
				if i+2 >= len(p) {
					return false
				}
				hi, lo := upperHex(p[i+1]), upperHex(p[i+2])
				if hi < 0 || lo < 0 || keepByte(byte(hi<<4|lo)) {
					return false
				}
				i += 2
				continue
			}
			if !keepByte(c) {
				return false
			}
			if c != '/' {
				continue
			}
		}
		switch p[segStart:i] {
		case "", ".", "..":
			return false
		}
		segStart = i + 1
	}
	return true
}

// replayKey is the key under which replay applies a remove of path (with deletion vector dv):
// its FileKey, or, for an absolute URI under the table's root (LogOptions.Root), the key of the
// same file named relative to the root, as Spark resolves it. A log opened without a root (the
// txlog API on a bare bucket) cannot tell, so there an absolute URI whose key no active file has
// matches the active file whose relative path is a suffix of it, at a segment boundary, when
// exactly one does. Adds are keyed by FileKey alone, so an add never replaces another file on a
// guess.
func (s *Snapshot) replayKey(p string, dv *DeletionVector) string {
	k := FileKey(p, dv)
	if s.files.has(k) || s.files.len() == 0 {
		return k
	}
	c, abs := canonical(p)
	if !abs {
		return k
	}
	if s.root != "" { // exact: the path relative to the table's root, and no guessing
		if rel := canonicalPath(s.root, p); rel != c {
			return FileKey(rel, dv)
		}
		return k
	}
	rest := c[strings.Index(c, "://")+3:]
	found := ""
	for {
		i := strings.IndexByte(rest, '/')
		if i < 0 {
			break
		}
		rest = rest[i+1:]
		if rest == "" {
			break
		}
		if ck := FileKey(rest, dv); s.files.has(ck) {
			if found != "" {
				return k // ambiguous: keep the absolute key
			}
			found = ck
		}
	}
	if found != "" {
		return found
	}
	return k
}
