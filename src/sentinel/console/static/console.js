// Sentinel duty console: the alert board's live updates (server-sent events, no framework).
// After alert events the server pushes the board's body for this page's filters ("board" events, at most once a
// second, rendered once for every console on the same view); a new red or orange alert shows a banner with its grade in words (and a beep
// when the officer turned sound on). EventSource reconnects by itself and sends Last-Event-ID, so the server
// replays what was missed; after a reset or the database's return the body is fetched once.
(function () {
  "use strict";
  var body = document.getElementById("board-body");
  if (!body || !window.EventSource) { return; }
  var live = document.getElementById("live-state");
  var dbBanner = document.getElementById("db-banner");
  var flash = document.getElementById("flash");
  var sound = document.getElementById("sound");
  var pending = null;
  var seen = {};
  document.querySelectorAll("tr.alert-row").forEach(function (tr) { seen[tr.dataset.alert] = true; });
  try { sound.checked = localStorage.getItem("sentinel.sound") === "1"; } catch (e) { /* private mode */ }
  sound.addEventListener("change", function () {
    try { localStorage.setItem("sentinel.sound", sound.checked ? "1" : "0"); } catch (e) { /* ignore */ }
  });

  function setLive(on) {
    live.textContent = on ? live.dataset.on : live.dataset.off;
    live.className = "live-state " + (on ? "on" : "off");
  }

  function show(html) {
    body.innerHTML = html;
    body.querySelectorAll("tr.alert-row").forEach(function (tr) {
      if (!seen[tr.dataset.alert]) { tr.classList.add("fresh"); seen[tr.dataset.alert] = true; }
    });
  }

  function refresh() {
    pending = null;
    fetch("/board/body" + window.location.search, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) {
        if (r.redirected || r.status === 401) { window.location.reload(); return null; }
        if (r.status === 503) { dbBanner.hidden = false; return null; }
        return r.ok ? r.text() : null;
      })
      .then(function (html) { if (html !== null && html !== undefined) { show(html); } })
      .catch(function () { /* the next event retries */ });
  }

  var lastFetch = 0;
  function schedule() {  // at most one refresh a second, the first 150 ms after the event
    if (pending) { return; }
    pending = setTimeout(function () { lastFetch = Date.now(); refresh(); }, Math.max(150, 1000 - (Date.now() - lastFetch)));
  }

  function beep() {
    try {
      var ctx = new (window.AudioContext || window.webkitAudioContext)();
      var osc = ctx.createOscillator();
      osc.frequency.value = 880; osc.connect(ctx.destination); osc.start(); osc.stop(ctx.currentTime + 0.4);
    } catch (e) { /* no audio */ }
  }

  function announce(ev) {
    var label = (document.querySelector(".count.grade-" + ev.grade) || {}).firstChild;
    var words = label ? label.textContent.trim() : ev.grade;
    flash.textContent = body.dataset.newLabel + " · " + words + " · " + ev.rule_id + " · " + ev.subject + " · " + ev.township;
    flash.className = "banner flash " + ev.grade;
    flash.hidden = false;
    flash.onclick = function () { window.location.href = "/alerts/" + ev.alert_id; };
    if (sound.checked) { beep(); }
  }

  var view = window.location.search.replace(/^\?/, "");
  var source = new EventSource("/events?after=" + encodeURIComponent(body.dataset.after || "") +
                               "&view=" + encodeURIComponent(view));
  source.onopen = function () { setLive(true); };
  source.onerror = function () { setLive(false); };
  source.addEventListener("alert", function (msg) {
    var ev = JSON.parse(msg.data);
    var raisedOrWorse = ev.from_state === null || (ev.from_grade && ev.to_grade && ev.to_grade !== ev.from_grade);
    if (raisedOrWorse && (ev.to_grade === "red" || ev.to_grade === "orange") && ev.state !== "suppressed") { announce(ev); }
  });
  source.addEventListener("board", function (msg) { show(JSON.parse(msg.data)); });
  source.addEventListener("db", function (msg) {
    var ok = JSON.parse(msg.data).ok;
    var was = dbBanner.hidden;
    dbBanner.hidden = ok;
    if (ok && !was) { schedule(); }
  });
  source.addEventListener("reset", function () { schedule(); });
  source.addEventListener("ended", function () {  // the session ended (signed out, expired, key revoked)
    source.close();
    window.location.href = "/login?next=" + encodeURIComponent(window.location.pathname + window.location.search);
  });
})();
