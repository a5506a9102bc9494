// Fulcrum web UI: progressive enhancement of server-rendered pages.
// - the phone-width menu toggle;
// - a confirmation dialog for destructive forms (data-confirm); without
//   JavaScript the server asks on a page of its own;
// - the dashboard's live status and graphs (uPlot), polled every 2 s, and
//   the service page's graphs, both started from the statistics history
//   the server keeps (1 h or 24 h) and extended as it grows.
// No inline script is needed anywhere (strict Content-Security-Policy).
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  function ready(fn) {
    if (document.readyState !== "loading") fn();
    else document.addEventListener("DOMContentLoaded", fn);
  }

  // ---- menu ----
  function setupMenu() {
    var btn = document.getElementById("menu-toggle");
    var shell = document.getElementById("shell");
    if (!btn || !shell) return;
    btn.addEventListener("click", function () {
      var open = shell.classList.toggle("nav-open");
      btn.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  // ---- confirmation dialog ----
  function setupConfirm() {
    var dlg = document.getElementById("confirm-dialog");
    if (!dlg || typeof dlg.showModal !== "function") return;
    var text = document.getElementById("confirm-text");
    var ok = document.getElementById("confirm-ok");
    var pending = null;
    document.addEventListener("submit", function (ev) {
      var form = ev.target;
      if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
      if (form.dataset.confirmed === "yes") return;
      ev.preventDefault();
      pending = { form: form, submitter: ev.submitter || null };
      text.textContent = form.dataset.confirm;
      var label = pending.submitter && pending.submitter.textContent.trim();
      ok.textContent = label || "Confirm";
      dlg.returnValue = "";
      dlg.showModal();
      document.getElementById("confirm-cancel").focus();
    }, true);
    dlg.addEventListener("close", function () {
      var p = pending;
      pending = null;
      if (!p || dlg.returnValue !== "ok") return;
      var input = document.createElement("input");
      input.type = "hidden";
      input.name = "confirmed";
      input.value = "yes";
      p.form.appendChild(input);
      p.form.dataset.confirmed = "yes";
      if (typeof p.form.requestSubmit === "function") p.form.requestSubmit(p.submitter);
      else p.form.submit();
    });
  }

  // ---- sessions that end while a page polls ----
  function setupExpiry() {
    document.body.addEventListener("htmx:responseError", function (ev) {
      var xhr = ev.detail && ev.detail.xhr;
      if (xhr && xhr.status === 401) window.location.assign(xhr.getResponseHeader("HX-Redirect") || "/login?expired=1");
    });
  }

  // ---- number formatting ----
  function fmtBits(v) {
    if (v == null || isNaN(v)) return "–";
    var units = ["bit/s", "kbit/s", "Mbit/s", "Gbit/s", "Tbit/s"];
    var i = 0;
    while (v >= 1000 && i < units.length - 1) { v /= 1000; i++; }
    return (v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)) + " " + units[i];
  }
  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function fmtClock(secs) {
    var d = new Date(secs * 1000);
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }
  function fmtNum(v) {
    if (v == null || isNaN(v)) return "–";
    if (v >= 100 || Number.isInteger(v)) return String(Math.round(v));
    return v.toFixed(1);
  }
  function last(arr) {
    for (var i = arr.length - 1; i >= 0; i--) if (arr[i] != null) return arr[i];
    return null;
  }
  function setText(id, s) {
    var el = document.getElementById(id);
    if (el) el.textContent = s;
  }

  // ---- badges, built without innerHTML ----
  function badge(state, cls) {
    var b = document.createElement("span");
    b.className = "badge " + (cls || "st-off");
    b.textContent = state || "Unknown";
    return b;
  }
  var stateCls = {
    up: "st-up", down: "st-down", failed: "st-down", disabled: "st-off", enabled: "st-info", unknown: "st-info",
    unchecked: "st-info", notserved: "st-warn", draining: "st-warn", degraded: "st-warn"
  };
  function clsOf(state) { return stateCls[String(state || "").toLowerCase()] || "st-off"; }

  // ---- graphs (uPlot) ----
  var colA = "#2f6fed", colB = "#14a37f", colC = "#9a6bf0", colD = "#d98a1c", colE = "#d6455d";
  function width(el) { return Math.max(200, el.clientWidth); }

  function bigChart(el, series, fmt) {
    var opts = {
      width: width(el), height: 190,
      cursor: { drag: { x: false, y: false } },
      legend: { show: false },
      scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.15)]; } } },
      axes: [
        { stroke: "#5a6577", grid: { stroke: "#eef1f6" }, ticks: { stroke: "#e2e7ef" }, space: 70,
          values: function (u, vals) { return vals.map(fmtClock); } },
        { stroke: "#5a6577", grid: { stroke: "#eef1f6" }, ticks: { stroke: "#e2e7ef" }, size: 86,
          values: function (u, vals) { return vals.map(fmt); } }
      ],
      series: [{}].concat(series)
    };
    return new window.uPlot(opts, [[]].concat(series.map(function () { return []; })), el);
  }
  function miniChart(el) {
    var opts = {
      width: width(el), height: 86,
      cursor: { show: false }, legend: { show: false },
      scales: {
        x: { time: true },
        y: { range: function (u, min, max) { var m = Math.max(1, max); return [-m * 0.06, m * 1.2]; } },
        c: { range: function (u, min, max) { var m = Math.max(1, max); return [-m * 0.06, m * 1.2]; } }
      },
      axes: [{ show: false }, { show: false }],
      series: [{},
        { label: "Throughput", stroke: colA, width: 1.5, fill: "rgba(47,111,237,.10)", points: { show: false } },
        { label: "Connections", scale: "c", stroke: colB, width: 1.5, points: { show: false } }]
    };
    return new window.uPlot(opts, [[], [], []], el);
  }

  // ---- statistics history kept by the server ----
  // The graphs start from /ui/history (the same data as GET
  // /api/v1/history) and are then extended with the points that are new
  // (?since=), so they show the past when a page is opened.
  var rangeSecs = { "1h": 3600, "24h": 86400 };

  // getJSON reads a live JSON resource of the session; null when it is
  // not there (a 401 sends the browser to the login page).
  function getJSON(url) {
    return fetch(url, { headers: { "X-Fulcrum-Live": "1" }, credentials: "same-origin", cache: "no-store" })
      .then(function (r) {
        if (r.status === 401) {
          window.location.assign(r.headers.get("HX-Redirect") || "/login?expired=1");
          return null;
        }
        return r.ok ? r.json() : null;
      })
      .catch(function () { return null; });
  }
  function times(col, k) {
    return (col || []).map(function (v) { return v == null ? null : v * k; });
  }
  function sum(a, b) {
    return a.map(function (x, i) { return x == null && b[i] == null ? null : (x || 0) + (b[i] || 0); });
  }
  // History keeps named columns over a time column "t", within a range.
  function History(range) { this.range = range; this.reset(); }
  History.prototype.reset = function () { this.cols = { t: [] }; };
  History.prototype.last = function () { var t = this.cols.t; return t.length ? t[t.length - 1] : 0; };
  // add appends columns (each as long as t); missing ones are nulls.
  History.prototype.add = function (t, cols) {
    var self = this, n = this.cols.t.length;
    Object.keys(cols).forEach(function (k) {
      if (!self.cols[k]) self.cols[k] = new Array(n).fill(null);
    });
    Object.keys(this.cols).forEach(function (k) {
      if (k === "t") return;
      var c = cols[k] || new Array(t.length).fill(null);
      Array.prototype.push.apply(self.cols[k], c);
    });
    Array.prototype.push.apply(this.cols.t, t);
    // Keep only the range.
    var from = this.last() - rangeSecs[this.range], cut = 0;
    while (cut < this.cols.t.length && this.cols.t[cut] < from) cut++;
    if (cut > 0) Object.keys(this.cols).forEach(function (k) { self.cols[k] = self.cols[k].slice(cut); });
  };
  History.prototype.col = function (k) { return this.cols[k] || new Array(this.cols.t.length).fill(null); };

  // setupRangeSwitch shows a 1 h / 24 h switch and calls onChange with
  // the range chosen.
  function setupRangeSwitch(el, onChange) {
    if (!el) return;
    el.hidden = false;
    var buttons = el.querySelectorAll("button[data-range]");
    Array.prototype.forEach.call(buttons, function (b) {
      b.addEventListener("click", function () {
        Array.prototype.forEach.call(buttons, function (o) { o.setAttribute("aria-pressed", o === b ? "true" : "false"); });
        onChange(b.getAttribute("data-range"));
      });
    });
  }

  // ---- dashboard ----
  function setupDashboard() {
    var root = document.getElementById("dashboard");
    if (!root || typeof window.uPlot !== "function") return;
    var revision = root.getAttribute("data-revision");
    var charts = { openedAt: Date.now() / 1000, source: "live" };

    var connsEl = document.getElementById("chart-conns");
    var bpsEl = document.getElementById("chart-bps");
    charts.conns = bigChart(connsEl, [
      { label: "Open", stroke: colA, width: 2, fill: "rgba(47,111,237,.08)", points: { show: false } },
      { label: "New/s", stroke: colB, width: 2, points: { show: false } }
    ], fmtNum);
    charts.bps = bigChart(bpsEl, [
      { label: "In", stroke: colA, width: 2, fill: "rgba(47,111,237,.08)", points: { show: false } },
      { label: "Out", stroke: colC, width: 2, points: { show: false } }
    ], fmtBits);
    charts.vs = {};
    Array.prototype.forEach.call(document.querySelectorAll("[data-vs-chart]"), function (el) {
      charts.vs[el.getAttribute("data-vs-chart")] = { el: el, plot: miniChart(el) };
    });
    window.fulcrumCharts = charts; // for the browser tests and the curious

    window.addEventListener("resize", function () {
      charts.conns.setSize({ width: width(connsEl), height: 190 });
      charts.bps.setSize({ width: width(bpsEl), height: 190 });
      Object.keys(charts.vs).forEach(function (id) {
        var c = charts.vs[id];
        c.plot.setSize({ width: width(c.el), height: 86 });
      });
    });

    // draw shows series: t, the total's conns, cps, in and out (bit/s),
    // and per service in, out (bit/s) and conns.
    function draw(t, tot, vs) {
      charts.conns.setData([t, tot.conns, tot.cps]);
      charts.bps.setData([t, tot.in, tot.out]);
      setText("leg-conns", fmtNum(last(tot.conns)));
      setText("leg-cps", fmtNum(last(tot.cps)));
      setText("leg-in", fmtBits(last(tot.in)));
      setText("leg-out", fmtBits(last(tot.out)));
      setText("stat-conns", fmtNum(last(tot.conns)));
      setText("stat-cps", fmtNum(last(tot.cps)));
      setText("stat-bps", fmtBits((last(tot.in) || 0) + (last(tot.out) || 0)));
      Object.keys(charts.vs).forEach(function (id) {
        var s = vs(id);
        if (!s) return;
        var bps = sum(s.in, s.out);
        charts.vs[id].plot.setData([t, bps, s.conns]);
        var el = document.querySelector('[data-vs-bps="' + id + '"]');
        if (el) el.textContent = fmtBits(last(bps));
      });
    }

    // The server's history, when it keeps one; else the graphs show what
    // /ui/metrics reports while the page is open.
    var hist = new History("1h");
    charts.history = hist;
    function addHistory(d) {
      var cols = { conns: d.total.active, cps: d.total.cps, in: times(d.total.bytesIn, 8), out: times(d.total.bytesOut, 8) };
      Object.keys(d.vs || {}).forEach(function (id) {
        var s = d.vs[id];
        cols["in." + id] = times(s.bytesIn, 8);
        cols["out." + id] = times(s.bytesOut, 8);
        cols["conns." + id] = s.active;
      });
      hist.add(d.t, cols);
    }
    function drawHistory() {
      draw(hist.cols.t, { conns: hist.col("conns"), cps: hist.col("cps"), in: hist.col("in"), out: hist.col("out") }, function (id) {
        return { in: hist.col("in." + id), out: hist.col("out." + id), conns: hist.col("conns." + id) };
      });
    }
    function loadHistory() {
      return getJSON("/ui/history?range=" + hist.range).then(function (d) {
        if (!d || !d.total) return;
        hist.reset();
        addHistory(d);
        charts.source = "history";
        drawHistory();
      });
    }
    function extendHistory() {
      if (charts.source !== "history") return null;
      var range = hist.range;
      return getJSON("/ui/history?range=" + range + "&since=" + hist.last()).then(function (d) {
        if (!d || !d.total || range !== hist.range || !d.t.length) return;
        addHistory(d);
        drawHistory();
      });
    }
    setupRangeSwitch(document.getElementById("dash-range"), function (range) {
      hist.range = range;
      loadHistory();
    });

    function update(d) {
      if (String(d.revision) !== revision) {
        // Services were added, changed or removed: show the new set.
        window.location.reload();
        return;
      }
      if (charts.source !== "history") {
        draw(d.t, d.total, function (id) { return d.vs[id]; });
      }
      (d.status || []).forEach(function (st) {
        var id = String(st.id);
        var card = document.querySelector('.vs-card[data-vs="' + id + '"]');
        if (card) card.className = "vs-card " + clsOf(st.state);
        var holder = document.querySelector('[data-vs-state="' + id + '"]');
        if (holder) holder.replaceChildren(badge(st.state, clsOf(st.state)));
        var conns = document.querySelector('[data-vs-conns="' + id + '"]');
        if (conns) conns.textContent = String(st.conns);
        var reason = document.querySelector('[data-vs-reason="' + id + '"]');
        if (reason) { reason.textContent = st.reason || ""; reason.hidden = !st.reason; }
        var rs = document.querySelector('[data-vs-rs="' + id + '"]');
        if (rs) {
          var wrap = document.createElement("span");
          wrap.className = "counts";
          (st.rs || []).forEach(function (c) { wrap.appendChild(badge(c.n + " " + c.state, clsOf(c.state))); });
          if (!st.rs || !st.rs.length) {
            var tag = document.createElement("span");
            tag.className = "tag";
            tag.textContent = "no real servers";
            wrap.appendChild(tag);
          }
          rs.replaceChildren(wrap);
        }
      });
      root.setAttribute("data-updated", String(Date.now()));
    }

    var timer = null;
    function poll() {
      timer = null;
      getJSON("/ui/metrics")
        .then(function (d) { if (d) update(d); return extendHistory(); })
        .catch(function () { /* the next poll retries */ })
        .finally(function () { timer = window.setTimeout(poll, 2000); });
    }
    loadHistory().finally(poll);
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && timer === null) poll();
    });
  }

  // ---- confirmations fade after a while ----
  function setupFlash() {
    var f = document.querySelector(".flash-ok");
    if (!f) return;
    window.setTimeout(function () { f.classList.add("gone"); }, 12000);
    f.addEventListener("click", function () { f.classList.add("gone"); });
  }

  // ---- the countdown of a network change waiting for confirmation ----
  function setupNetPending() {
    var banner = document.getElementById("net-pending");
    var out = document.getElementById("net-countdown");
    if (!banner || !out) return;
    var deadline = Number(banner.getAttribute("data-deadline"));
    if (!deadline) return;
    var reloaded = false;
    function tick() {
      var left = Math.max(0, Math.ceil((deadline - Date.now()) / 1000));
      out.textContent = String(left);
      if (left > 0) { window.setTimeout(tick, 250); return; }
      // Rolled back by now: show the settings as they are again, once.
      if (!reloaded) { reloaded = true; window.setTimeout(function () { window.location.reload(); }, 1500); }
    }
    tick();
  }

  // ---- the service page's graphs, from the statistics history ----
  function setupVSGraphs() {
    var root = document.getElementById("vs-graphs");
    if (!root || typeof window.uPlot !== "function") return;
    var q = "vs=" + encodeURIComponent(root.getAttribute("data-history-vs"));
    var sub = root.getAttribute("data-history-subvs");
    if (sub) q += "&subvs=" + encodeURIComponent(sub);
    var bpsEl = document.getElementById("vs-chart-bps");
    var loadEl = document.getElementById("vs-chart-load");
    var charts = window.fulcrumCharts = window.fulcrumCharts || {};
    charts.openedAt = charts.openedAt || Date.now() / 1000;
    charts.vsBps = bigChart(bpsEl, [
      { label: "In", stroke: colA, width: 2, fill: "rgba(47,111,237,.08)", points: { show: false } },
      { label: "Out", stroke: colC, width: 2, points: { show: false } }
    ], fmtBits);
    charts.vsLoad = bigChart(loadEl, [
      { label: "Open", stroke: colA, width: 2, fill: "rgba(47,111,237,.08)", points: { show: false } },
      { label: "New/s", stroke: colB, width: 2, points: { show: false } },
      { label: "Requests/s", stroke: colC, width: 2, points: { show: false } },
      { label: "4xx/s", stroke: colD, width: 1.5, points: { show: false } },
      { label: "5xx/s", stroke: colE, width: 1.5, points: { show: false } }
    ], fmtNum);
    var hist = charts.vsHistory = new History("1h");
    var note = document.getElementById("vs-graphs-note");
    window.addEventListener("resize", function () {
      charts.vsBps.setSize({ width: width(bpsEl), height: 190 });
      charts.vsLoad.setSize({ width: width(loadEl), height: 190 });
    });
    function add(d) {
      if (note) { note.textContent = d.untracked || ""; note.hidden = !d.untracked; }
      var s = d.series || {};
      hist.add(d.t, { in: times(s.bytesIn, 8), out: times(s.bytesOut, 8), conns: s.active, cps: s.cps, rps: s.rps, r4: s.r4xx, r5: s.r5xx });
      var t = hist.cols.t;
      charts.vsBps.setData([t, hist.col("in"), hist.col("out")]);
      charts.vsLoad.setData([t, hist.col("conns"), hist.col("cps"), hist.col("rps"), hist.col("r4"), hist.col("r5")]);
      setText("vs-leg-in", fmtBits(last(hist.col("in"))));
      setText("vs-leg-out", fmtBits(last(hist.col("out"))));
      setText("vs-leg-conns", fmtNum(last(hist.col("conns"))));
      setText("vs-leg-cps", fmtNum(last(hist.col("cps"))));
      setText("vs-leg-rps", fmtNum(last(hist.col("rps"))));
      setText("vs-leg-r4", fmtNum(last(hist.col("r4"))));
      setText("vs-leg-r5", fmtNum(last(hist.col("r5"))));
      root.setAttribute("data-updated", String(Date.now()));
    }
    var loaded = false;
    function load() {
      return getJSON("/ui/history?" + q + "&range=" + hist.range).then(function (d) {
        loaded = !!d;
        if (!d) {
          if (note) { note.textContent = "No statistics history for this service yet."; note.hidden = false; }
          return;
        }
        hist.reset();
        add(d);
      });
    }
    function tick() {
      var range = hist.range;
      var next = loaded
        ? getJSON("/ui/history?" + q + "&range=" + range + "&since=" + hist.last()).then(function (d) {
          if (d && range === hist.range && d.t.length) add(d);
        })
        : load();
      next.finally(function () { window.setTimeout(tick, 2000); });
    }
    setupRangeSwitch(document.getElementById("vs-range"), function (range) {
      hist.range = range;
      load();
    });
    load().finally(function () { window.setTimeout(tick, 2000); });
  }

  ready(function () {
    setupFlash();
    setupNetPending();
    setupMenu();
    setupConfirm();
    setupExpiry();
    setupDashboard();
    setupVSGraphs();
  });
})();
