// Realtime messages on the dashboard: a run's messages on its page, a channel on the Realtime
// page. A channel token is fetched first (POST /api/realtime/token, as the logged-in user), then
// an EventSource reads GET /api/realtime; when it closes (an expired token), a new token is
// fetched and reading resumes after the last id shown. Data is shown as text, never as HTML.
(function () {
  "use strict";
  var MAX_ROWS = 500;

  function watch(section) {
    var run = section.dataset.realtimeRun;
    var channel = run ? "run:" + run : section.dataset.realtimeChannel;
    var topics = section.dataset.realtimeTopics || "";
    var body = section.querySelector("tbody");
    var state = section.querySelector(".realtime-state");
    var lastId = "0";

    function show(text) { state.textContent = text; }

    function add(message) {
      var row = document.createElement("tr");
      var when = new Date(message.ts);  // in the format of every other time on the page (app.js)
      [String(message.id), window.outlastLocalTime ? window.outlastLocalTime(when) : when.toISOString(),
        message.channel, message.topic,
        JSON.stringify(message.data)].forEach(function (text, i) {
        var cell = document.createElement("td");
        if (i === 4) {
          var pre = document.createElement("pre");
          pre.className = "logline";
          pre.textContent = text;
          cell.appendChild(pre);
        } else {
          cell.textContent = text;
          if (i < 2) cell.className = "mono";
        }
        row.appendChild(cell);
      });
      body.appendChild(row);
      while (body.rows.length > MAX_ROWS) body.deleteRow(0);
    }

    function connect() {
      var tokenBody = JSON.stringify({ channel: channel, topics: topics ? topics.split(",") : null });
      fetch("/api/realtime/token", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json" }, body: tokenBody,
      }).then(function (r) {
        if (!r.ok) throw new Error("token refused (" + r.status + ")");
        return r.json();
      }).then(function (t) {
        var params = new URLSearchParams(run ? { run_id: run } : { channel: channel });
        if (topics) params.set("topics", topics);
        params.set("since", lastId);
        params.set("token", t.token);
        var source = new EventSource("/api/realtime?" + params.toString());
        source.onopen = function () { show(body.rows.length ? "Live." : "Live: no messages yet."); };
        source.onmessage = function (e) {
          var message = JSON.parse(e.data);
          lastId = String(message.id);
          add(message);
          show("Live.");
        };
        source.addEventListener("overflow", function () { show("Live (caught up after falling behind)."); });
        source.onerror = function () {
          if (source.readyState === EventSource.CLOSED) {
            show("Reconnecting…");
            setTimeout(connect, 2000);
          }
        };
      }).catch(function (err) { show("Not connected: " + err.message); setTimeout(connect, 5000); });
    }
    connect();
  }

  document.querySelectorAll("[data-realtime-run], [data-realtime-channel]").forEach(watch);
})();
