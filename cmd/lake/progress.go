package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a progress line on a terminal (nothing elsewhere): a bar when the total bytes
// are known, with bytes, rows and rows/s.
type progress struct {
	w     io.Writer
	tty   bool
	start time.Time
	last  time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	p := &progress{w: w, start: time.Now()}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	return p
}

// update shows rows and commits so far.
func (p *progress) update(rows, commits int64) {
	if !p.due() {
		return
	}
	fmt.Fprintf(p.w, "\r%d rows, %d commits, %s rows/s ", rows, commits, rate(rows, time.Since(p.start)))
}

// bytes shows a bar of done of total bytes (total <= 0: unknown) with rows.
func (p *progress) bytes(name string, done, total, rows int64) {
	if !p.due() {
		return
	}
	el := time.Since(p.start)
	if total > 0 {
		frac := min(float64(done)/float64(total), 1)
		n := int(frac * 24)
		fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %s/%s, %d rows, %s rows/s ", name, strings.Repeat("=", n),
			strings.Repeat(" ", 24-n), frac*100, mib(done), mib(total), rows, rate(rows, el))
		return
	}
	fmt.Fprintf(p.w, "\r%s %s, %d rows, %s rows/s ", name, mib(done), rows, rate(rows, el))
}

func (p *progress) due() bool {
	if !p.tty || time.Since(p.last) < 250*time.Millisecond {
		return false
	}
	p.last = time.Now()
	p.shown = true
	return true
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

func rate(n int64, d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	r := float64(n) / d.Seconds()
	if r >= 1e6 {
		return fmt.Sprintf("%.2fM", r/1e6)
	}
	return fmt.Sprintf("%.0f", r)
}
