// The lake dashboard: plain JavaScript over this server's JSON APIs. No framework, no build
// step, nothing loaded from another origin (the page's Content-Security-Policy allows only
// 'self'). The page reads GET /v1/dashboard, which answers 200 with each endpoint's own status
// and body (a browser logs every answer of 400 or more as a console error, even one a script
// handles); api() never throws and never logs, and a part that failed becomes a note in its
// panel.
(function () {
  "use strict";

  var REFRESH_MS = 15000;
  var SERIES_WINDOWS = 24;
  var SVGNS = "http://www.w3.org/2000/svg";
  var TOKEN_KEY = "lake-read-token";
  var token = "";
  var timer = null;
  var loading = false;
  var again = false; // a load was asked for while one ran (a new token, Refresh)

  function $(id) { return document.getElementById(id); }

  // el builds an element; attrs are attributes (class, title, ...), kids are nodes or strings
  // (always set as text, never parsed as HTML).
  function el(tag, attrs, kids) {
    var n = document.createElement(tag);
    setAttrs(n, attrs);
    append(n, kids);
    return n;
  }

  function svg(tag, attrs, kids) {
    var n = document.createElementNS(SVGNS, tag);
    setAttrs(n, attrs);
    append(n, kids);
    return n;
  }

  function setAttrs(n, attrs) {
    if (!attrs) return;
    Object.keys(attrs).forEach(function (k) {
      if (attrs[k] !== null && attrs[k] !== undefined) n.setAttribute(k, String(attrs[k]));
    });
  }

  function append(n, kids) {
    if (kids === null || kids === undefined) return;
    if (!Array.isArray(kids)) kids = [kids];
    kids.forEach(function (k) {
      if (k === null || k === undefined) return;
      n.appendChild(typeof k === "object" ? k : document.createTextNode(String(k)));
    });
  }

  function clear(n) { while (n.firstChild) n.removeChild(n.firstChild); }

  // ---- formatting ----

  function fmtInt(n) {
    if (n === null || n === undefined) return "–";
    return Number(n).toLocaleString("en-US");
  }

  function fmtNum(x, digits) {
    if (x === null || x === undefined || typeof x !== "number" || !isFinite(x)) return "–";
    return x.toFixed(digits === undefined ? 3 : digits);
  }

  function fmtPct(x) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    return (x * 100).toFixed(x > 0 && x < 0.001 ? 3 : 1) + "%";
  }

  // fmtTime shows an RFC 3339 time as "2024-05-06 10:00 UTC".
  function fmtTime(s) {
    if (!s) return "–";
    var d = new Date(s);
    if (isNaN(d.getTime())) return String(s);
    return d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
  }

  function ago(s) {
    var d = new Date(s);
    if (!s || isNaN(d.getTime())) return "";
    var sec = Math.round((Date.now() - d.getTime()) / 1000);
    var fut = sec < 0;
    sec = Math.abs(sec);
    var txt;
    if (sec < 90) txt = sec + " s";
    else if (sec < 5400) txt = Math.round(sec / 60) + " min";
    else if (sec < 172800) txt = Math.round(sec / 3600) + " h";
    else txt = Math.round(sec / 86400) + " d";
    return fut ? "in " + txt : txt + " ago";
  }

  function fmtSeconds(x) {
    if (typeof x !== "number" || !isFinite(x)) return "–";
    if (x < 1) return Math.round(x * 1000) + " ms";
    if (x < 120) return x.toFixed(1) + " s";
    return (x / 60).toFixed(1) + " min";
  }

  // ---- the API ----

  // api GETs path and resolves to {status, ok, body}; it never rejects.
  function api(path) {
    var headers = { "Accept": "application/json" };
    if (token) headers["Authorization"] = "Bearer " + token;
    return fetch(path, { headers: headers, cache: "no-store" }).then(function (resp) {
      return resp.text().then(function (text) {
        var body = null;
        try { body = text ? JSON.parse(text) : null; } catch (e) { body = null; }
        return { status: resp.status, ok: resp.ok, body: body };
      });
    }).catch(function (err) {
      return { status: 0, ok: false, body: { error: "the server did not answer (" + (err && err.message ? err.message : err) + ")" } };
    });
  }

  function errorText(res) {
    var msg = res.body && res.body.error ? res.body.error : "";
    switch (res.status) {
      case 401: return "This server needs a read token: enter it at the top of the page.";
      case 503: return "Not available yet: " + (msg || "the server has nothing to show here yet.");
      case 0: return "Cannot reach the server: " + msg;
    }
    return "HTTP " + res.status + (msg ? ": " + msg : "");
  }

  // dashboard GETs /v1/dashboard with the query and resolves to {part, series}: part(name)
  // gives a part as {status, ok, body}, like api(), and series(item) a trending item's series.
  // When the call itself failed, every part is that failure.
  function dashboard(query) {
    return api("/v1/dashboard" + (query ? "?" + query : "")).then(function (res) {
      var whole = res.ok && res.body && res.body.parts;
      function wrap(p, what) {
        if (!whole) return res;
        if (!p) return { status: 0, ok: false, body: { error: "the server's answer has no " + what } };
        return { status: p.status, ok: p.status >= 200 && p.status < 300, body: p.body };
      }
      return {
        part: function (name) { return wrap(whole ? res.body.parts[name] : null, name); },
        series: function (item) { return wrap(whole && res.body.series ? res.body.series[item] : null, "series of " + item); }
      };
    });
  }

  // note shows msg in the panel's note (kind: "wait" for a 503, "bad" for other failures);
  // null hides it.
  function note(panel, msg, kind) {
    var n = panel.querySelector(".note");
    if (!n) return;
    if (!msg) {
      n.hidden = true;
      n.textContent = "";
      return;
    }
    n.hidden = false;
    n.className = "note" + (kind ? " " + kind : "");
    n.textContent = msg;
  }

  function failed(panel, res) {
    note(panel, errorText(res), res.status === 503 ? "wait" : "bad");
  }

  // itemButton is an item id that, clicked, searches its similar items.
  function itemButton(id) {
    var b = el("button", { "type": "button", "class": "item", "title": "Show the items similar to " + id }, id);
    b.addEventListener("click", function () {
      $("similar-item").value = id;
      searchSimilar();
      $("panel-similar").scrollIntoView({ behavior: "smooth", block: "nearest" });
    });
    return b;
  }

  // ---- charts ----

  // sparkline draws a series of {count, expected, trending} as an SVG: the count as a line,
  // the expectation dashed, windows where the item was trending as dots. A null breaks a line.
  function sparkline(points) {
    var w = 168, h = 34, pad = 3;
    var n = points.length;
    var max = 1;
    points.forEach(function (p) {
      if (typeof p.count === "number") max = Math.max(max, p.count);
      if (typeof p.expected === "number") max = Math.max(max, p.expected);
    });
    function x(i) { return n < 2 ? w / 2 : pad + i * (w - 2 * pad) / (n - 1); }
    function y(v) { return h - pad - (v / max) * (h - 2 * pad); }
    function path(key) {
      var d = "", pen = false;
      points.forEach(function (p, i) {
        var v = p[key];
        if (typeof v !== "number") { pen = false; return; }
        d += (pen ? " L" : " M") + x(i).toFixed(1) + " " + y(v).toFixed(1);
        pen = true;
      });
      return d.trim();
    }
    var last = null;
    for (var i = n - 1; i >= 0; i--) {
      if (typeof points[i].count === "number") { last = points[i]; break; }
    }
    var s = svg("svg", { "class": "spark", "viewBox": "0 0 " + w + " " + h, "width": w, "height": h, "role": "img" });
    s.appendChild(svg("title", null, last
      ? "latest window with a count: " + fmtTime(last.window_start) + ", count " + fmtInt(last.count) +
        (typeof last.expected === "number" ? ", expected " + fmtNum(last.expected, 1) : "")
      : "no counts in these windows"));
    s.appendChild(svg("line", { "x1": pad, "x2": w - pad, "y1": h - pad, "y2": h - pad, "class": "axis" }));
    var de = path("expected");
    if (de) s.appendChild(svg("path", { "d": de, "class": "expected" }));
    var dc = path("count");
    if (dc) s.appendChild(svg("path", { "d": dc, "class": "count" }));
    points.forEach(function (p, i) {
      if (typeof p.count === "number") {
        s.appendChild(svg("circle", { "cx": x(i).toFixed(1), "cy": y(p.count).toFixed(1), "r": p.trending ? 2.4 : 1.4, "class": p.trending ? "hot" : "dot" }));
      }
    });
    return s;
  }

  // minuteChart draws the last hour's events (and quarantined rows on top) per minute.
  function minuteChart(minutes) {
    var w = 720, h = 90, padB = 14, padT = 4;
    var n = minutes.length || 1;
    var max = 1;
    minutes.forEach(function (m) { max = Math.max(max, (m.events || 0) + (m.quarantined || 0)); });
    var bw = w / n;
    var s = svg("svg", { "class": "minutes", "viewBox": "0 0 " + w + " " + h, "preserveAspectRatio": "none", "role": "img" });
    s.appendChild(svg("title", null, "events (blue) and quarantined rows (red) per minute over the last hour; the highest minute has " + fmtInt(max)));
    minutes.forEach(function (m, i) {
      var ev = m.events || 0, q = m.quarantined || 0;
      var he = (ev / max) * (h - padB - padT), hq = (q / max) * (h - padB - padT);
      var g = svg("g", null, svg("title", null, fmtTime(m.minute) + ": " + fmtInt(ev) + " events, " + fmtInt(q) + " quarantined"));
      g.appendChild(svg("rect", { "x": (i * bw + 0.5).toFixed(1), "y": (h - padB - he).toFixed(1), "width": Math.max(bw - 1, 1).toFixed(1), "height": he.toFixed(1), "class": "ev" }));
      if (q > 0) {
        g.appendChild(svg("rect", { "x": (i * bw + 0.5).toFixed(1), "y": (h - padB - he - hq).toFixed(1), "width": Math.max(bw - 1, 1).toFixed(1), "height": hq.toFixed(1), "class": "q" }));
      }
      s.appendChild(g);
    });
    s.appendChild(svg("line", { "x1": 0, "x2": w, "y1": h - padB + 0.5, "y2": h - padB + 0.5, "class": "axis" }));
    s.appendChild(svg("text", { "x": 2, "y": h - 2, "class": "label" }, "60 min ago"));
    s.appendChild(svg("text", { "x": w - 2, "y": h - 2, "class": "label end" }, "now"));
    return s;
  }

  // ---- panels ----

  function renderWindowPanel(kind, res, seriesOf) {
    var panel = $("panel-" + kind), table = $(kind + "-table"), tbody = table.querySelector("tbody");
    clear(tbody);
    if (!res.ok || !res.body) {
      table.hidden = true;
      $(kind + "-window").textContent = "";
      failed(panel, res);
      return;
    }
    var a = res.body;
    $(kind + "-window").textContent = "window from " + fmtTime(a.window_start) + " · v" + a.version;
    var items = a.items || [];
    if (!items.length) {
      table.hidden = true;
      note(panel, kind === "trending" ? "Nothing is surging in the latest closed window." : "No items in the latest closed window.");
      return;
    }
    note(panel, null);
    table.hidden = false;
    items.forEach(function (it) {
      var cells = [el("td", { "class": "num" }, it.rank), el("td", null, itemButton(it.item_id)), el("td", { "class": "num" }, fmtInt(it.count))];
      if (kind === "trending") {
        // The series holds the expectation of this window too.
        var s = seriesOf(it.item_id), spark = el("td", { "class": "spark-cell" }), expected = null;
        if (s.ok && s.body && s.body.windows) {
          s.body.windows.forEach(function (p) {
            if (p.window_start === a.window_start && typeof p.expected === "number") expected = p.expected;
          });
          spark.appendChild(sparkline(s.body.windows));
        } else {
          spark.appendChild(el("span", { "class": "muted", "title": errorText(s) }, "no series"));
        }
        cells.push(el("td", { "class": "num" }, fmtNum(expected, 1)), el("td", { "class": "num" }, fmtNum(it.score, 2)), spark);
      }
      tbody.appendChild(el("tr", null, cells));
    });
  }

  function renderRanked(list, items) {
    clear(list);
    items.forEach(function (it) {
      list.appendChild(el("li", null, [itemButton(it.item_id), el("span", { "class": "score" }, fmtNum(it.score, 3))]));
    });
  }

  function searchSimilar() {
    var panel = $("panel-similar"), list = $("similar-list");
    var id = $("similar-item").value.trim();
    if (!id) return Promise.resolve();
    note(panel, "Searching…", "wait");
    return dashboard("parts=similar&item=" + encodeURIComponent(id)).then(function (d) {
      var res = d.part("similar");
      clear(list);
      if (res.status === 404) {
        note(panel, "Unknown item " + JSON.stringify(id) + ": the model has no similar items for it.", "bad");
        return;
      }
      if (!res.ok || !res.body) { failed(panel, res); return; }
      var items = res.body.items || [];
      note(panel, items.length ? "Items similar to " + id + " (similar_items v" + res.body.version + "):" : "No similar items for " + id + ".");
      renderRanked(list, items);
    });
  }

  var sourceText = {
    model: "from the model (user_recommendations)",
    recent: "a user the model has not seen: items similar to what they touched recently",
    trending: "a user with no recent events: what is trending",
    popular: "a user with no recent events: what is popular"
  };

  function searchRecs() {
    var panel = $("panel-recs");
    var id = $("recs-user").value.trim();
    if (!id) return Promise.resolve();
    note(panel, "Asking…", "wait");
    $("recs-source").textContent = "";
    return dashboard("parts=recs&user=" + encodeURIComponent(id)).then(function (d) {
      renderRecs(id, d.part("recs"));
    });
  }

  function renderRecs(id, res) {
    var panel = $("panel-recs"), list = $("recs-list");
    clear(list);
    if (!res.ok || !res.body) { failed(panel, res); return; }
    note(panel, null);
    $("recs-source").textContent = "For " + id + ": " + (sourceText[res.body.source] || res.body.source) + " · v" + res.body.version;
    renderRanked(list, res.body.items || []);
  }

  function stat(label, value, title, cls) {
    return el("div", { "class": "stat" + (cls ? " " + cls : ""), "title": title || null }, [el("div", { "class": "value" }, value), el("div", { "class": "label" }, label)]);
  }

  function renderHealth(res) {
    var panel = $("panel-health"), stats = $("health-stats"), chart = $("health-chart");
    var rt = $("reasons-table"), tbody = rt.querySelector("tbody");
    clear(stats); clear(chart); clear(tbody);
    rt.hidden = true;
    if (!res.ok || !res.body) { failed(panel, res); return; }
    var h = res.body;
    var msgs = [];
    if (h.version === null || h.version === undefined) msgs.push("The events table " + h.table + " has no commits yet.");
    if (h.partial) msgs.push("The last hour held more commits than were read: the counts cover its newest part.");
    (h.errors || []).forEach(function (e) { msgs.push("Could not read " + e); });
    note(panel, msgs.length ? msgs.join(" ") : null, h.errors && h.errors.length ? "bad" : "wait");
    var lastFull = h.minutes && h.minutes.length > 1 ? h.minutes[h.minutes.length - 2] : null;
    stats.appendChild(stat("events / min (hour average)", fmtNum(h.events_per_minute, 1), "events committed over the last hour, divided by 60"));
    stats.appendChild(stat("events / min (last full minute)", lastFull ? fmtInt(lastFull.events) : "–", lastFull ? fmtTime(lastFull.minute) : null));
    stats.appendChild(stat("events, last hour", fmtInt(h.events), h.commits + " commits to " + h.table + (h.version !== null && h.version !== undefined ? " (now v" + h.version + ")" : "")));
    stats.appendChild(stat("quarantine rate", fmtPct(h.quarantine_rate), fmtInt(h.quarantined) + " rows quarantined in " + h.quarantine_table, h.quarantine_rate > 0.05 ? "warn" : null));
    stats.appendChild(stat("queue lag", h.queue_lag_seconds === null || h.queue_lag_seconds === undefined ? "not reported" : fmtSeconds(h.queue_lag_seconds),
      "how long the oldest event of the committer's last batch had waited in the queue", h.queue_lag_seconds > 60 ? "warn" : null));
    chart.appendChild(minuteChart(h.minutes || []));
    var reasons = h.quarantine_reasons || [];
    if (reasons.length) {
      rt.hidden = false;
      reasons.forEach(function (r) {
        tbody.appendChild(el("tr", null, [el("td", { "class": "reason" }, r.reason), el("td", { "class": "num" }, fmtInt(r.count))]));
      });
      rt.querySelector("th").textContent = "quarantine reason (newest " + h.quarantine_reason_files + " file" + (h.quarantine_reason_files === 1 ? "" : "s") + ")";
    }
  }

  function recallOf(run) {
    var m = run.metrics || {};
    return typeof m["recall@10"] === "number" ? m["recall@10"] : null;
  }

  function driftCell(run) {
    var d = run.metrics && run.metrics.drift;
    if (!d || typeof d !== "object") return el("td", { "class": "muted" }, "–");
    var dl = el("dl", { "class": "drift" });
    Object.keys(d).sort().forEach(function (k) {
      var v = d[k];
      dl.appendChild(el("dt", null, k.replace(/_/g, " ")));
      dl.appendChild(el("dd", null, typeof v === "number" ? fmtNum(v, 3) : (v === null ? "–" : JSON.stringify(v))));
    });
    return el("td", null, dl);
  }

  function renderModels(res) {
    var panel = $("panel-models"), table = $("models-table"), tbody = table.querySelector("tbody");
    clear(tbody);
    var served = res.ok && res.body && res.body.served ? res.body.served : null;
    $("served").textContent = served && Object.keys(served).length
      ? "serving " + Object.keys(served).sort().map(function (k) { return k + " v" + served[k]; }).join(", ")
      : "";
    if (!res.ok || !res.body) { table.hidden = true; failed(panel, res); return; }
    var runs = res.body.runs || [];
    if (!runs.length) {
      table.hidden = true;
      note(panel, "No job run is registered yet: run `lake als` or `lake trending` with --output " + (res.body.prefix || "PREFIX") + ".");
      return;
    }
    note(panel, null);
    table.hidden = false;
    runs.forEach(function (r) {
      var recall = recallOf(r);
      tbody.appendChild(el("tr", { "class": "run " + (r.status || "") }, [
        el("td", { "class": "mono", "title": "source version " + r.source_version }, r.run_id),
        el("td", null, r.job),
        el("td", null, el("span", { "class": "badge " + (r.status || "") }, r.status)),
        el("td", { "title": r.created_at }, fmtTime(r.created_at)),
        el("td", { "class": "num" }, recall === null ? "–" : fmtNum(recall, 4)),
        driftCell(r),
        el("td", { "class": "reason" }, r.reason || "")
      ]));
    });
  }

  // The scheduled jobs: shown only when the server has a scheduler (GET /v1/ops answers).
  function renderOps(res) {
    var panel = $("panel-ops"), table = $("ops-table"), thead = table.querySelector("thead"), tbody = table.querySelector("tbody");
    if (res.status === 503 || res.status === 404) { panel.hidden = true; return; }
    panel.hidden = false;
    clear(thead); clear(tbody);
    if (!res.ok || !res.body) { table.hidden = true; failed(panel, res); return; }
    var b = res.body, rows = null;
    if (Array.isArray(b)) rows = b;
    else if (Array.isArray(b.tasks)) rows = b.tasks;
    else if (Array.isArray(b.jobs)) rows = b.jobs;
    else Object.keys(b).some(function (k) { if (Array.isArray(b[k])) { rows = b[k]; return true; } return false; });
    if (!rows || !rows.length) { table.hidden = true; note(panel, "No scheduled jobs."); return; }
    note(panel, null);
    table.hidden = false;
    var known = rows[0] && typeof rows[0] === "object" && ("name" in rows[0]) && ("next_run" in rows[0] || "last_start" in rows[0] || "schedule" in rows[0]);
    if (known) {
      thead.appendChild(el("tr", null, ["job", "schedule", "state", "last run", "next run", "last result", "last error"].map(function (h) { return el("th", null, h); })));
      rows.forEach(function (t) {
        var state = t.running ? "running" : (t.consecutive_failures > 0 ? "failing" : (t.runs > 0 ? "ok" : "waiting"));
        var last = t.last_end || t.last_start;
        var result = t.last_result ? (t.last_result.summary || "") + (t.last_result.run_status ? " (" + t.last_result.run_status + ")" : "") : "";
        tbody.appendChild(el("tr", null, [
          el("td", null, t.name),
          el("td", { "class": "muted" }, t.schedule || ""),
          el("td", null, el("span", { "class": "badge " + state }, state)),
          el("td", { "title": last || "" }, last ? ago(last) : "never"),
          el("td", { "title": t.next_run || "" }, t.next_run ? ago(t.next_run) : (t.running ? "running" : "on a condition")),
          el("td", null, result),
          el("td", { "class": "reason bad-text" }, t.last_error || "")
        ]));
      });
      return;
    }
    var keys = [];
    rows.forEach(function (r) {
      if (r && typeof r === "object") Object.keys(r).forEach(function (k) { if (keys.indexOf(k) < 0) keys.push(k); });
    });
    thead.appendChild(el("tr", null, keys.map(function (k) { return el("th", null, k); })));
    rows.forEach(function (r) {
      tbody.appendChild(el("tr", null, keys.map(function (k) {
        var v = r ? r[k] : null;
        return el("td", null, v === null || v === undefined ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)));
      })));
    });
  }

  function renderTables(res) {
    var panel = $("panel-tables"), box = $("tables-list");
    clear(box);
    if (!res.ok || !res.body) { failed(panel, res); return; }
    note(panel, null);
    (res.body.tables || []).forEach(function (t) {
      var ver = t.version === null || t.version === undefined ? (t.status || "not a table yet") : "v" + t.version;
      if (t.served_version !== undefined && t.served_version !== null && t.served_version !== t.version) ver += " (serving v" + t.served_version + ")";
      var card = el("div", { "class": "table-card" }, [
        el("h3", null, [t.name, " ", el("span", { "class": "sub" }, ver)]),
        el("div", { "class": "uri mono" }, t.uri)
      ]);
      var hist = t.history || [];
      if (hist.length) {
        var tb = el("tbody");
        hist.forEach(function (c) {
          tb.appendChild(el("tr", null, [
            el("td", { "class": "num" }, c.version),
            el("td", { "title": c.timestamp }, fmtTime(c.timestamp)),
            el("td", null, c.operation || ""),
            el("td", { "class": "muted" }, c.summary || "")
          ]));
        });
        card.appendChild(el("table", { "class": "rows history" }, [
          el("thead", null, el("tr", null, [el("th", { "class": "num" }, "version"), el("th", null, "time"), el("th", null, "operation"), el("th", null, "rows and files")])),
          tb
        ]));
      }
      box.appendChild(card);
    });
  }

  // ---- the page ----

  function loadAll() {
    if (loading) {
      again = true;
      return Promise.resolve();
    }
    loading = true;
    if (timer) { clearTimeout(timer); timer = null; }
    var user = $("recs-user").value.trim();
    var q = "windows=" + SERIES_WINDOWS + (user ? "&user=" + encodeURIComponent(user) : "");
    return dashboard(q).then(function (d) {
      var panels = [
        function () { renderWindowPanel("trending", d.part("trending"), d.series); },
        function () { renderWindowPanel("popular", d.part("popular")); },
        function () { renderHealth(d.part("health")); },
        function () { renderModels(d.part("models")); },
        function () { renderOps(d.part("ops")); },
        function () { renderTables(d.part("tables")); }
      ];
      if (user) panels.push(function () { renderRecs(user, d.part("recs")); });
      panels.forEach(function (render) {
        // One panel's surprise must not stop the others; it still reaches the console.
        try { render(); } catch (e) { setTimeout(function () { throw e; }, 0); }
      });
    }).then(function () {
      loading = false;
      $("updated").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
      document.body.setAttribute("data-loaded", "true");
      if (again) {
        again = false;
        loadAll();
      } else {
        timer = setTimeout(loadAll, REFRESH_MS);
      }
    });
  }

  function initToken() {
    var params = new URLSearchParams(location.search);
    var t = params.get("token");
    try {
      if (t !== null) {
        sessionStorage.setItem(TOKEN_KEY, t);
        // Keep the token out of the address bar (and of screenshots and history).
        params.delete("token");
        var q = params.toString();
        history.replaceState(null, "", location.pathname + (q ? "?" + q : "") + location.hash);
      }
      token = sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (e) {
      token = t || "";
    }
    $("token").value = token;
    return params;
  }

  function init() {
    var params = initToken();
    $("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      token = $("token").value.trim();
      try { sessionStorage.setItem(TOKEN_KEY, token); } catch (e) { /* private mode: this page only */ }
      loadAll();
    });
    $("refresh").addEventListener("click", function () { loadAll(); });
    $("similar-form").addEventListener("submit", function (ev) { ev.preventDefault(); searchSimilar(); });
    $("recs-form").addEventListener("submit", function (ev) { ev.preventDefault(); searchRecs(); });
    if (params.get("item")) { $("similar-item").value = params.get("item"); searchSimilar(); }
    if (params.get("user")) $("recs-user").value = params.get("user");
    loadAll();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
