package server

import (
	"net/http"
	"strconv"
)

// pixelJS is the snippet a page includes with <script src="https://COLLECTOR/pixel.js" defer>.
//
// It keeps a user id in a first-party cookie (lake_uid, created on the first visit; a page may set
// window.lakeConfig = {user: "..."} before the script to use its own), sends a "view" for every
// element with a data-item attribute and no data-type when the page has loaded, and on a click on
// (or inside) an element with data-item sends its data-type (default "click") with data-value as
// the value. Events go to /p.gif on the script's own origin with navigator.sendBeacon (which
// survives the page being left), or an image when beacons are unavailable. window.lake.track(type,
// item, value) sends one by hand.
const pixelJS = `(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src, location.href).origin : "";
  var cfg = window.lakeConfig || {};
  function cookieUser() {
    var m = document.cookie.match(/(?:^|;\s*)lake_uid=([^;]+)/);
    if (m) return decodeURIComponent(m[1]);
    var id = (window.crypto && crypto.randomUUID) ? crypto.randomUUID()
      : Date.now().toString(36) + "-" + Math.random().toString(36).slice(2);
    document.cookie = "lake_uid=" + encodeURIComponent(id) + "; path=/; max-age=31536000; SameSite=Lax";
    return id;
  }
  var user = cfg.user || cookieUser();
  function track(type, item, value) {
    if (!item || !type) return;
    var q = "u=" + encodeURIComponent(user) + "&i=" + encodeURIComponent(item) +
      "&t=" + encodeURIComponent(type) + "&ts=" + Date.now();
    if (value !== undefined && value !== null && value !== "") q += "&v=" + encodeURIComponent(value);
    var url = base + "/p.gif?" + q;
    try { if (navigator.sendBeacon && navigator.sendBeacon(url)) return; } catch (e) {}
    var img = new Image(1, 1);
    img.src = url;
  }
  function init() {
    var els = document.querySelectorAll("[data-item]:not([data-type])");
    for (var i = 0; i < els.length; i++) track("view", els[i].getAttribute("data-item"));
    document.addEventListener("click", function (ev) {
      var el = ev.target && ev.target.closest ? ev.target.closest("[data-item]") : null;
      if (!el) return;
      track(el.getAttribute("data-type") || "click", el.getAttribute("data-item"), el.getAttribute("data-value"));
    }, true);
  }
  window.lake = { user: user, track: track };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
`

// demoHTML is the demo shop of --demo-site.
const demoHTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lake demo shop</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/ui/favicon.svg" type="image/svg+xml">
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; background: #fafafa; }
  .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(12rem, 1fr)); gap: 1rem; }
  .card { background: #fff; border: 1px solid #ddd; border-radius: 8px; padding: 1rem; cursor: pointer; }
  .card h2 { font-size: 1.1rem; margin: 0 0 .5rem; }
  button { margin-top: .5rem; }
  #log { font-family: monospace; font-size: .8rem; color: #555; margin-top: 1rem; }
</style>
</head>
<body>
<h1>lake demo shop</h1>
<p>Every product you see is a <code>view</code>; clicking a product is a <code>click</code>, the buttons are
<code>add_to_cart</code> and <code>purchase</code>. The events go through <code>/pixel.js</code> to the
collector, the queue and the committer into the table.</p>
<div class="grid">
  <div class="card" id="p-mug" data-item="sku-mug"><h2>Mug</h2><p>12.00</p>
    <button id="cart-mug" data-item="sku-mug" data-type="add_to_cart">Add to cart</button>
    <button id="buy-mug" data-item="sku-mug" data-type="purchase" data-value="12">Buy</button></div>
  <div class="card" id="p-tee" data-item="sku-tee"><h2>T-shirt</h2><p>20.00</p>
    <button id="cart-tee" data-item="sku-tee" data-type="add_to_cart">Add to cart</button>
    <button id="buy-tee" data-item="sku-tee" data-type="purchase" data-value="20">Buy</button></div>
  <div class="card" id="p-cap" data-item="sku-cap"><h2>Cap</h2><p>15.00</p>
    <button id="cart-cap" data-item="sku-cap" data-type="add_to_cart">Add to cart</button>
    <button id="buy-cap" data-item="sku-cap" data-type="purchase" data-value="15">Buy</button></div>
  <div class="card" id="p-bag" data-item="sku-bag"><h2>Tote bag</h2><p>9.50</p>
    <button id="cart-bag" data-item="sku-bag" data-type="add_to_cart">Add to cart</button>
    <button id="buy-bag" data-item="sku-bag" data-type="purchase" data-value="9.5">Buy</button></div>
</div>
<div id="log"></div>
<script src="/pixel.js"></script>
<script>
  document.getElementById("log").textContent = "user " + window.lake.user;
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-item]");
    if (el) document.getElementById("log").textContent += " | " + (el.getAttribute("data-type") || "click") + " " + el.getAttribute("data-item");
  });
</script>
</body>
</html>
`

func (s *Server) handlePixelJS(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(pixelJS)))
	w.Write([]byte(pixelJS))
}

func (s *Server) handleDemo(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.Write([]byte(demoHTML))
}
