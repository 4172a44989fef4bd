package integration

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lakehouse/lake/internal/testutil/tablerows"

	"github.com/lakehouse/lake/reader"
	"github.com/lakehouse/lake/table"
)

// requireRabbit returns the AMQP URL of the test RabbitMQ; a missing or unreachable server fails
// under CI=true and skips elsewhere.
func requireRabbit(t testing.TB) string {
	t.Helper()
	u := os.Getenv("LAKE_TEST_AMQP_URL")
	missing := func(why string) {
		msg := why + ": run scripts/services.sh start and eval \"$(scripts/services.sh env)\""
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	if u == "" {
		missing("LAKE_TEST_AMQP_URL is not set")
	}
	if os.Getenv("RABBIT_SERVER_URL") == "" {
		os.Setenv("RABBIT_SERVER_URL", u)
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:5672", 2*time.Second)
	if err != nil {
		missing("RabbitMQ is not reachable on 127.0.0.1:5672")
	}
	c.Close()
	return u
}

// proc is a lake subprocess whose stderr is kept (and scanned for a pattern).
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	errb strings.Builder
	done chan struct{}
	err  error
}

func startLake(t testing.TB, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(lake(t), args...), done: make(chan struct{})}
	p.cmd.Env = os.Environ()
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.errb.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

func (p *proc) stderr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.errb.String()
}

// waitFor waits until stderr matches re and returns the first submatch.
func (p *proc) waitFor(t testing.TB, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(p.stderr()); m != nil {
			if len(m) > 1 {
				return m[1]
			}
			return m[0]
		}
		select {
		case <-p.done:
			t.Fatalf("lake exited (%v) before printing %v:\n%s", p.err, re, p.stderr())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %v within %v:\n%s", re, within, p.stderr())
	return ""
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if p.err != nil {
			t.Fatalf("lake exited with %v:\n%s", p.err, p.stderr())
		}
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		t.Fatalf("lake did not stop within 60 s of SIGTERM:\n%s", p.stderr())
	}
}

// kill9 kills the process with SIGKILL and waits for it.
func (p *proc) kill9() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

var listenRE = regexp.MustCompile(`listening on https?://(\S+)`)

// startServe starts `lake serve` on a free port and returns the process and its base URL.
func startServe(t testing.TB, args ...string) (*proc, string) {
	t.Helper()
	p := startLake(t, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)...)
	addr := p.waitFor(t, listenRE, 30*time.Second)
	return p, "http://" + addr
}

// columnValues scans one string column of the table's latest snapshot (sorted).
func columnValues(t testing.TB, uri, col string) []string {
	t.Helper()
	var out []string
	for _, r := range tablerows.Latest(t, uri, col) {
		s, _ := r[col].(string)
		out = append(out, s)
	}
	return out
}

// rows scans the given string columns of the table as row maps.
func rows(t testing.TB, uri string, cols ...string) []map[string]string {
	t.Helper()
	ctx := context.Background()
	tbl, err := table.Open(ctx, uri, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Close()
	snap, err := tbl.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := reader.NewScan(ctx, tbl, snap, &reader.ScanOptions{Columns: cols})
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for rec, err := range sc.Records(ctx) {
		if err != nil {
			t.Fatal(err)
		}
		for i := range int(rec.NumRows()) {
			r := map[string]string{}
			for j, c := range cols {
				col := rec.Column(j)
				if col.IsNull(i) {
					continue
				}
				r[c] = col.ValueStr(i)
			}
			out = append(out, r)
		}
	}
	return out
}

func uniqueName(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }
