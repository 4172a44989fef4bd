package source

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Timestamp formats (Options.TimestampFormat, Mapping.TimestampFormat); anything else is a Go
// time layout.
const (
	TimestampEpochS           = "epoch_s"
	TimestampEpochMS          = "epoch_ms"
	TimestampEpochUS          = "epoch_us"
	TimestampRFC3339          = "rfc3339"
	TimestampAuto             = ""                 // RFC 3339 strings; a bare number is an error naming the flag
	TimestampRFC3339OrEpochMS = "rfc3339|epoch_ms" // the collector's: strings RFC 3339, numbers epoch ms
)

// ErrNumericTimestamp is returned (wrapped in a *ConfigError) when a source sends a bare number as
// its timestamp and no format says what unit it is in.
var ErrNumericTimestamp = errors.New("the timestamp is a bare number and no --timestamp-format says its unit")

// tsParser parses one timestamp value into microseconds since the epoch, UTC.
type tsParser struct {
	format string
	loc    *time.Location
}

func newTSParser(format, zone string) (*tsParser, error) {
	p := &tsParser{format: format, loc: time.UTC}
	if zone != "" {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			return nil, fmt.Errorf("--timezone %q: %v (want an IANA name such as Europe/Paris, or UTC)", zone, err)
		}
		p.loc = loc
	}
	switch format {
	case TimestampEpochS, TimestampEpochMS, TimestampEpochUS, TimestampRFC3339, TimestampAuto, TimestampRFC3339OrEpochMS:
	default:
		// A Go layout must at least format and parse its own reference time.
		ref := time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)
		if _, err := time.ParseInLocation(format, ref.Format(format), time.UTC); err != nil || !strings.ContainsAny(format, "0123456789") {
			return nil, fmt.Errorf("--timestamp-format %q: want epoch_s, epoch_ms, epoch_us, rfc3339 or a Go layout such as 2006-01-02 15:04:05", format)
		}
	}
	return p, nil
}

// parse parses s; isNum says the source typed it as a number (JSON). The error is a reason for
// the quarantine, except ErrNumericTimestamp, which is the caller's to report.
func (p *tsParser) parse(s string, isNum bool) (int64, error) {
	switch p.format {
	case TimestampEpochS:
		return epoch(s, 1_000_000)
	case TimestampEpochMS:
		return epoch(s, 1_000)
	case TimestampEpochUS:
		return epoch(s, 1)
	case TimestampRFC3339OrEpochMS:
		if isNum || looksNumeric(s) {
			return epoch(s, 1_000)
		}
		return p.iso(s)
	case TimestampAuto, TimestampRFC3339:
		if isNum || looksNumeric(s) {
			if p.format == TimestampAuto {
				return 0, ErrNumericTimestamp
			}
			return 0, fmt.Errorf("timestamp %q is a number, not RFC 3339", s)
		}
		return p.iso(s)
	}
	t, err := time.ParseInLocation(p.format, s, p.loc)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q does not match the layout %q", s, p.format)
	}
	return t.UnixMicro(), nil
}

// iso parses RFC 3339 with an offset, and the same without one (or with a space for the T) in
// the parser's zone.
func (p *tsParser) iso(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixMicro(), nil
	}
	for _, layout := range isoLayouts {
		if t, err := time.ParseInLocation(layout, s, p.loc); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("timestamp %q is not RFC 3339 (e.g. 2024-03-07T10:15:00Z)", s)
}

var isoLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02",
}

func looksNumeric(s string) bool {
	if s == "" {
		return false
	}
	if s[0] == '-' || s[0] == '+' {
		s = s[1:]
	}
	dot := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' && !dot {
			dot = true
			continue
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != "" && s != "."
}

// epoch parses an integer (or, for coarse units, a decimal) count of units since the epoch into
// microseconds, refusing what overflows.
func epoch(s string, unit int64) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > math.MaxInt64/unit || n < math.MinInt64/unit {
			return 0, fmt.Errorf("timestamp %s is out of range", s)
		}
		return n * unit, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("timestamp %q is not a number of %s since the epoch", s, unitName(unit))
	}
	us := f * float64(unit)
	if us > 9.2e18 || us < -9.2e18 {
		return 0, fmt.Errorf("timestamp %s is out of range", s)
	}
	return int64(math.Round(us)), nil
}

func unitName(unit int64) string {
	switch unit {
	case 1_000_000:
		return "seconds"
	case 1_000:
		return "milliseconds"
	}
	return "microseconds"
}
