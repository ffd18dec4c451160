// Outlast dashboard: live updates (server-sent events), local times, JSON checking, confirmations and charts.
// Everything works without this script; it only makes pages livelier.
(function () {
  "use strict";

  // -- confirmations ------------------------------------------------------------------------
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) e.preventDefault();
  });

  // -- JSON editors -------------------------------------------------------------------------
  function checkJson(area) {
    var out = document.getElementById(area.getAttribute("aria-describedby"));
    var form = area.form;
    var ok = true, message = "Valid JSON";
    try { JSON.parse(area.value); } catch (err) { ok = false; message = "Not valid JSON: " + err.message; }
    if (out) { out.textContent = message; out.className = "json-check " + (ok ? "ok" : "bad"); }
    area.setAttribute("aria-invalid", ok ? "false" : "true");
    if (form) {
      var submit = form.querySelector("button[type=submit]");
      var runAgain = form.querySelector("input[name=mode][value=run]");
      if (submit) submit.disabled = !ok && !(runAgain && runAgain.checked);
    }
  }
  function setupJson(root) {
    root.querySelectorAll("textarea[data-json]").forEach(function (area) {
      area.addEventListener("input", function () { checkJson(area); });
      if (area.form) area.form.addEventListener("change", function () { checkJson(area); });
      checkJson(area);
    });
    root.querySelectorAll("select[data-template-for]").forEach(function (select) {
      select.addEventListener("change", function () {
        var target = document.getElementById(select.dataset.templateFor);
        var option = select.options[select.selectedIndex];
        if (!target || !option) return;
        target.value = JSON.stringify(JSON.parse(option.dataset.json), null, 2);
        checkJson(target);
      });
    });
    root.querySelectorAll("select[data-toggle-custom]").forEach(function (select) {
      select.addEventListener("change", function () {
        document.querySelectorAll(".custom-range").forEach(function (el) { el.hidden = select.value !== "custom"; });
      });
    });
  }

  // -- charts (uPlot, vendored) ---------------------------------------------------------------
  function drawCharts(root) {
    if (!window.uPlot) return;
    root.querySelectorAll("[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var d = JSON.parse(el.dataset.chart);
      var width = Math.max(el.clientWidth, 140), height = el.clientHeight || 56;
      var x = d.x.map(function (ms) { return ms / 1000; });
      var stackFailed = d.failed.map(function (v, i) { return v + d.other[i]; });
      var stackAll = d.completed.map(function (v, i) { return v + stackFailed[i]; });
      var bars = uPlot.paths.bars({ size: [0.8, 24] });
      var small = height < 70;
      new uPlot({
        width: width, height: height, legend: { show: false }, cursor: { show: !small, points: { show: false } },
        padding: [4, 2, 0, 2],
        scales: { x: { time: true }, y: { range: function (u, min, max) { return [0, Math.max(1, max)]; } } },
        axes: [{ show: !small, size: 22, font: "11px system-ui", stroke: "#667085", grid: { show: false }, ticks: { show: false } },
               { show: !small, size: 30, font: "11px system-ui", stroke: "#667085", grid: { stroke: "#eef0f3" }, ticks: { show: false } }],
        series: [{}, { label: "completed", fill: "#4ade80", stroke: "#4ade80", paths: bars, points: { show: false } },
                 { label: "failed", fill: "#f87171", stroke: "#f87171", paths: bars, points: { show: false } },
                 { label: "other", fill: "#cbd5e1", stroke: "#cbd5e1", paths: bars, points: { show: false } }],
      }, [x, stackAll, stackFailed, d.other], el);
      el.dataset.drawn = "1";
    });
  }

  // -- times in the viewer's time zone ---------------------------------------------------------
  // The server writes UTC (<time datetime="...Z">2026-12-07 15:45:33 UTC</time>); shown here in local time.
  function pad(n, width) { return String(n).padStart(width || 2, "0"); }
  // One format for every time on the dashboard, realtime.js's messages included.
  function localTime(d, format) {
    var date = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate());
    var clock = pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    return format === "clock" ? clock + "." + pad(d.getMilliseconds(), 3)
      : format === "short" ? date.slice(5) + " " + clock : date + " " + clock;
  }
  window.outlastLocalTime = localTime;
  function localTimes(root) {
    var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
    var name = document.getElementById("tz-name");
    if (name) name.textContent = zone;
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.textContent = localTime(d, el.dataset.format);
      el.title = el.getAttribute("datetime").replace("T", " ").replace("Z", " UTC") + " (shown in " + zone + ")";
    });
  }

  // -- live regions -------------------------------------------------------------------------
  // A live update that fails says so (#live-status) and is tried again; it is never swallowed.
  var RETRY_MS = 3000;
  var refreshing = false, again = false, timer = null;
  function liveStatus(message) {
    var el = document.getElementById("live-status");
    if (!el) return;
    el.textContent = message || "";
    el.hidden = !message;
  }
  function seenIds() {
    var ids = {};
    document.querySelectorAll("tr[data-id]").forEach(function (tr) { ids[tr.dataset.id] = true; });
    return ids;
  }
  function update(html, before) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    document.querySelectorAll("[data-live-region]").forEach(function (region) {
      var fresh = doc.getElementById(region.id);
      if (!fresh) return;
      var open = {};
      region.querySelectorAll("details[id][open]").forEach(function (d) { open[d.id] = true; });
      region.innerHTML = fresh.innerHTML;
      Array.prototype.forEach.call(fresh.attributes, function (a) { region.setAttribute(a.name, a.value); });
      if (!fresh.hasAttribute("data-poll")) region.removeAttribute("data-poll");
      region.querySelectorAll("details[id]").forEach(function (d) { if (open[d.id]) d.open = true; });
      region.querySelectorAll("tr[data-id]").forEach(function (tr) { if (!before[tr.dataset.id]) tr.classList.add("fresh"); });
      drawCharts(region);
      localTimes(region);
    });
  }
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    var before = seenIds();
    fetch(window.location.href, { headers: { "X-Live": "1" }, credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) throw new Error("the server answered " + r.status + (r.statusText ? " " + r.statusText : ""));
        return r.text();
      })
      .then(function (html) {
        update(html, before);
        liveStatus("");
      })
      .catch(function (err) {
        liveStatus("Live update failed (" + (err && err.message ? err.message : "no answer") +
                    "): this page may be out of date. Trying again…");
        setTimeout(schedule, RETRY_MS);
      })
      .then(function () {
        refreshing = false;
        if (again) { again = false; schedule(); }
        poll();
      });
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 350);
  }
  function poll() {
    var region = document.querySelector("[data-live-region][data-poll]");
    if (region) setTimeout(refresh, parseInt(region.dataset.poll, 10) || 1000);
  }
  function listen() {
    var live = document.body.dataset.live;
    if (!live || !window.EventSource) return;
    var url = "/api/stream" + (live.indexOf("run:") === 0 ? "?run=" + encodeURIComponent(live.slice(4)) : "");
    var source = new EventSource(url);
    source.onmessage = function () { schedule(); };
    source.onopen = function () { liveStatus(""); schedule(); };  // whatever changed before the stream was open
    source.onerror = function () {
      liveStatus(source.readyState === EventSource.CLOSED
        ? "Live updates stopped: the server refused the update stream. Reload the page to see changes."
        : "Live updates lost: the connection to the server broke. Reconnecting…");
    };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function start() {
    setupJson(document);
    localTimes(document);
    drawCharts(document);
    listen();
    poll();
    if (window.uPlot === undefined) window.addEventListener("load", function () { drawCharts(document); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
})();
