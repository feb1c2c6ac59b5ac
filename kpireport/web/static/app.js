// kpireport serve: the only script. It polls a job's progress and the send ledger; every
// page works without it (reload to see progress).
"use strict";
(function () {
  function poll(url, every, handle) {
    var stop = false;
    function tick() {
      if (stop) return;
      fetch(url, {credentials: "same-origin", cache: "no-store"})
        .then(function (r) { return r.json(); })
        .then(function (data) { if (handle(data) === false) { stop = true; } else { setTimeout(tick, every); } })
        .catch(function () { setTimeout(tick, every * 3); });
    }
    tick();
  }
  var job = document.querySelector("[data-job]");
  if (job) {
    var bar = job.querySelector("[data-progress]"), status = job.querySelector("[data-status]");
    poll(job.getAttribute("data-job"), 400, function (data) {
      if (data.total) { bar.max = data.total; bar.value = data.done; }
      if (data.state === "running") {
        status.textContent = data.total ? job.getAttribute("data-counting") + " " + data.done + " / " + data.total
                                        : job.getAttribute("data-working");
        return true;
      }
      if (data.state === "done" && data.next) { window.location.assign(data.next); return false; }
      // a failure (or a job with nowhere to go): the server's page says what and offers a way back
      window.location.reload();
      return false;
    });
  }
  // a download that changes the page (passwords handed out): show the new state after it
  document.querySelectorAll("form[data-reload-after]").forEach(function (form) {
    form.addEventListener("submit", function () { setTimeout(function () { window.location.reload(); }, 1500); });
  });
  var delivery = document.querySelector("[data-delivery]");
  if (delivery) {
    var body = delivery.querySelector("[data-rows]"), live = delivery.querySelector("[data-job-status]");
    var last = null, watching = null;  // a send seen running here: when it ends, the page shows the new state
    poll(delivery.getAttribute("data-delivery"), 700, function (data) {
      var signature = JSON.stringify(data.rows || []);
      var changed = signature !== last;  // rewrite only what changed: the table is aria-live
      last = signature;
      if (changed && data.rows && data.rows.length) {
        body.textContent = "";
        data.rows.forEach(function (row) {
          var tr = document.createElement("tr");
          [row.report, row.name || "", row.recipient, null, row.updated || "", row.detail || ""].forEach(function (text) {
            var td = document.createElement("td");
            if (text === null) {
              var badge = document.createElement("span");
              badge.className = "badge " + row.state.replace(/ /g, "-"); badge.textContent = row.label || row.state; td.appendChild(badge);
            } else { td.textContent = text; }
            tr.appendChild(td);
          });
          body.appendChild(tr);
        });
      }
      var counts = delivery.querySelector("[data-counts]");
      if (changed && counts && data.rows && data.rows.length) {
        var tally = {};
        var labels = {};
        data.rows.forEach(function (row) { tally[row.state] = (tally[row.state] || 0) + 1; labels[row.state] = row.label || row.state; });
        counts.textContent = "";
        Object.keys(tally).sort().forEach(function (state) {
          var badge = document.createElement("span");
          badge.className = "badge " + state.replace(/ /g, "-");
          badge.textContent = tally[state] + " " + labels[state];
          counts.appendChild(badge);
          counts.appendChild(document.createTextNode(" "));
        });
      }
      var banner = document.querySelector("[data-banner]");
      if (banner && data.job && data.job.state !== "running") { banner.hidden = true; }
      if (data.job && data.job.kind === "send" && data.job.state === "running") { watching = data.job.id; }
      if (data.job && watching === data.job.id && data.job.state !== "running") {
        watching = null;
        setTimeout(function () { window.location.reload(); }, 300);
      }
      if (data.job && data.job.kind !== "build") {
        live.textContent = data.job.label +
          (data.job.total ? " · " + data.job.done + "/" + data.job.total : "") +
          (data.job.message ? " · " + data.job.message : "");
        live.setAttribute("data-state", data.job.state);
        var shown = document.querySelector("[data-test-password]");
        if (shown && data.job.kind === "test" && data.job.test_password) {
          shown.querySelector("[data-test-password-value]").textContent = data.job.test_password;
          shown.hidden = false;
        }
      }
      return true;
    });
  }
})();
