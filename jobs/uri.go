package jobs

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ChildURI is the URI of the table name under prefix, formed on the URI's path and keeping its
// query string: ChildURI("s3://b/p?region=x", "item_factors") is "s3://b/p/item_factors?region=x".
func ChildURI(prefix, name string) string {
	base, query, hasQuery := strings.Cut(prefix, "?")
	child := strings.TrimRight(base, "/") + "/" + name
	if strings.HasSuffix(base, "://") { // a bucket root: s3://b is fine, but "mem://" alone has no path
		child = base + name
	}
	if hasQuery {
		child += "?" + query
	}
	return child
}

// ParseDuration reads a duration in Go's forms ("90m", "36h", "1h30m") plus days and weeks
// ("7d", "2w", "1w2d12h"); a day is 24 hours.
func ParseDuration(s string) (time.Duration, error) {
	orig := s
	if s == "" {
		return 0, fmt.Errorf("empty duration; want e.g. 36h, 7d or 2w")
	}
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	var total time.Duration
	for s != "" {
		// The longest leading number, then its unit.
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		j := i
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		if i == 0 || j == i {
			return 0, fmt.Errorf("invalid duration %q; want e.g. 90m, 36h, 7d or 2w", orig)
		}
		num, unit := s[:i], s[i:j]
		var d time.Duration
		switch unit {
		case "d", "w":
			f, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, fmt.Errorf("invalid duration %q; want e.g. 90m, 36h, 7d or 2w", orig)
			}
			day := 24 * time.Hour
			if unit == "w" {
				day *= 7
			}
			d = time.Duration(f * float64(day))
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, fmt.Errorf("invalid duration %q; want e.g. 90m, 36h, 7d or 2w", orig)
			}
		}
		total += d
		s = s[j:]
	}
	if neg {
		total = -total
	}
	return total, nil
}
