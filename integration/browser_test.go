package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// requireChromium returns the path of Debian's chromium (LAKE_TEST_CHROMIUM, else
// /usr/bin/chromium); missing fails under CI=true and skips elsewhere.
func requireChromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("LAKE_TEST_CHROMIUM")
	if path == "" {
		path = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(path); err != nil {
		msg := "chromium not found at " + path + ": run scripts/services.sh start (it installs Debian's chromium) and eval \"$(scripts/services.sh env)\""
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return path
}

// A real browser on the demo shop of `lake serve --demo-site`: headless Chromium loads the page
// (which includes /pixel.js), clicks a product and two buttons, and the events (four views, a
// click, an add_to_cart and a purchase with its value) arrive in the table under the user id
// the snippet keeps in its cookie.
func TestBrowserDemoShop(t *testing.T) {
	chromium := requireChromium(t)
	uri := filepath.Join(t.TempDir(), "events")
	runLake(t, "create", uri, "--schema", "interactions")
	srv, base := startServe(t, "--table", uri, "--demo-site", "--batch-interval", "200ms")

	ctx, console := openBrowser(t, chromium)

	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/demo/"), chromedp.WaitVisible("#p-mug")); err != nil {
		t.Fatalf("browser: open the demo shop: %v\n%s", err, srv.stderr())
	}
	user, err := chromedp.Run(ctx, chromedp.Evaluate[string](`window.lake.user`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	cookie, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	if err := chromedp.Do(ctx,
		chromedp.Click("#p-mug h2"),
		chromedp.Click("#cart-tee"),
		chromedp.Click("#buy-cap"),
	); err != nil {
		t.Fatalf("browser: click: %v\n%s", err, srv.stderr())
	}
	if user == "" || !strings.Contains(cookie, "lake_uid=") {
		t.Fatalf("the snippet set no user id: user %q, cookie %q", user, cookie)
	}

	want := []string{
		"purchase sku-cap 15", "add_to_cart sku-tee", "click sku-mug",
		"view sku-bag", "view sku-cap", "view sku-mug", "view sku-tee",
	}
	sort.Strings(want)
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got = got[:0]
		for _, r := range rows(t, uri, "user_id", "item_id", "interaction_type", "source", "value") {
			if r["user_id"] != user {
				t.Fatalf("an event of another user %q (the browser's is %q)", r["user_id"], user)
			}
			if r["source"] != "collector" {
				t.Errorf("source %q", r["source"])
			}
			s := r["interaction_type"] + " " + r["item_id"]
			if v, ok := r["value"]; ok {
				s += " " + v
			}
			got = append(got, s)
		}
		if len(got) >= len(want) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	sort.Strings(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("events in the table:\n%s\nwant:\n%s\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), srv.stderr())
	}
	if errs := console.errors(); len(errs) > 0 {
		t.Errorf("the demo shop logged console errors: %v", errs)
	}
	srv.stop(t)
	t.Logf("user %s: %d events from headless Chromium in the table", user, len(got))
}
