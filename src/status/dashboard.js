"use strict";
// The dropcast dashboard: polls /api/jobs every second and redraws the tables. Every
// value from the server is put in the page as text (never as HTML).
(function () {
  const POLL_MS = 1000;
  let timer = null;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k.startsWith("data-")) node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function short(hash) {
    return hash ? hash.slice(0, 12) : "";
  }

  function ago(iso) {
    if (!iso) return "";
    const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
    if (s < 60) return "just now";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 86400) return Math.floor(s / 3600) + "h ago";
    return iso.slice(0, 10);
  }

  function when(iso) {
    return el("time", { dateTime: iso || "", title: iso || "" }, ago(iso));
  }

  // A time ahead (a planned slot): the local date and time.
  function at(iso) {
    const d = new Date(iso);
    return el("time", { dateTime: iso, title: iso }, isNaN(d) ? iso : d.toLocaleString());
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n) + " " + units[i];
  }

  function hashCell(hash) {
    return el("td", { class: "hash", title: hash || "" }, short(hash));
  }

  const drawn = {};

  // Redraws a table only when its data (or the minute) changed, so that a button is not
  // replaced under the pointer.
  function fill(id, data, row) {
    const key = JSON.stringify(data) + Math.floor(Date.now() / 60000);
    if (drawn[id] === key) return;
    drawn[id] = key;
    const rows = data.map(row);
    const section = document.getElementById(id);
    const heading = section.querySelector("h2");
    let n = heading.querySelector(".n");
    if (!n) { n = el("span", { class: "n" }); heading.append(" ", n); }
    n.textContent = rows.length ? "(" + rows.length + ")" : "";
    section.querySelector("tbody").replaceChildren(...rows);
  }

  function showMessage(text, isError) {
    const m = document.getElementById("message");
    m.textContent = text;
    m.className = isError ? "notice error" : "notice";
    m.hidden = !text;
  }

  async function retry(hash, video, button) {
    button.disabled = true;
    try {
      const res = await fetch("/api/retry/" + encodeURIComponent(hash), {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-Dropcast-Request": "1" },
      });
      const body = await res.json().catch(() => ({}));
      if (res.ok) {
        showMessage("Requeued " + (body.video || video) + ".", false);
      } else {
        showMessage("Cannot retry " + video + ": " + (body.error || res.statusText), true);
        button.disabled = false;
      }
    } catch (e) {
      showMessage("Cannot retry " + video + ": " + e, true);
      button.disabled = false;
    }
    poll();
  }

  function problemRow(job) {
    const button = el("button", { class: "retry", type: "button", "data-sha256": job.sha256, title: "Put this job back in the queue" }, "Retry");
    button.addEventListener("click", () => retry(job.sha256, job.video, button));
    const reason = el("td", { class: "reason" }, job.reason || "");
    if (job.hint) reason.append(el("div", { class: "hint" }, job.hint));
    return el("tr", { "data-sha256": job.sha256, "data-state": job.state },
      el("td", {}, job.video, el("div", { class: "muted" }, job.account + " · ", when(job.at))),
      el("td", { class: "state " + job.state }, job.state),
      el("td", {}, job.step || "", job.class ? el("div", { class: "muted" }, job.class) : null),
      reason,
      hashCell(job.sha256),
      el("td", {}, button));
  }

  function postLink(job) {
    if (job.post_state) return el("span", { class: "pending", title: job.note || "" }, job.post_state.replace(/_/g, " "));
    if (!job.url || !job.url.startsWith("https://")) return job.aweme_id || "";
    return el("a", { href: job.url, target: "_blank", rel: "noopener noreferrer" }, job.aweme_id || job.url);
  }

  function render(v) {
    const a = v.agent;
    const parts = ["pid " + a.pid];
    if (a.watching) parts.push("watching: " + a.watching);
    if (a.sandbox) parts.push("sandbox (nothing reaches Douyin)");
    if (a.started_at) parts.push("started " + ago(a.started_at));
    document.getElementById("agent").textContent = parts.join(" · ");
    const order = ["active", "published", "done", "failed", "unconfirmed", "abandoned", "duplicate"];
    const states = Object.keys(v.counts).sort((x, y) => order.indexOf(x) - order.indexOf(y));
    document.getElementById("counts").replaceChildren(
      ...states.map((state) => el("span", { "data-state": state }, state + " " + v.counts[state])));

    fill("in-flight", v.in_flight, (j) => {
      const total = j.bytes_total || 0;
      const progress = total > 0
        ? el("span", {}, el("progress", { max: total, value: j.bytes_done }), " " + Math.floor(100 * j.bytes_done / total) + "% of " + bytes(total))
        : "";
      return el("tr", { "data-sha256": j.sha256 || "", "data-state": "in_flight", "data-video": j.video },
        el("td", {}, j.video), el("td", {}, j.account || ""), el("td", { class: "state" }, j.step),
        el("td", {}, progress), hashCell(j.sha256));
    });
    fill("queued", v.queued, (j) => el("tr", { "data-sha256": j.sha256, "data-state": "queued" },
      el("td", {}, j.video), el("td", {}, j.account), el("td", {}, j.attempts),
      el("td", {}, when(j.since)), hashCell(j.sha256)));
    fill("waiting", v.waiting_for_caption, (w) => el("tr", { "data-video": w.video },
      el("td", {}, w.video), el("td", {}, when(w.since))));
    fill("held", v.held_in_inbox || [], (h) => el("tr", { "data-video": h.video },
      el("td", {}, h.video), el("td", { class: "reason" }, h.reason), el("td", {}, when(h.since))));
    fill("paused", v.paused_accounts, (p) => el("tr", {},
      el("td", {}, p.account), el("td", {}, p.reason), el("td", {}, when(p.since))));
    agents(v);
    plan(v.plan || []);
    logins(v.login_codes || []);
    fill("failures", v.failures, problemRow);
    fill("unconfirmed", v.unconfirmed, problemRow);
    fill("posts", v.recent_posts, (p) => el("tr", { "data-sha256": p.sha256, "data-state": p.state },
      el("td", {}, when(p.published_at)), el("td", {}, p.video), el("td", {}, p.account),
      el("td", {}, postLink(p)), hashCell(p.sha256)));
    document.body.dataset.loaded = "1";
  }

  // The posting plan: each account's next free slot, then its planned videos by slot.
  function plan(accounts) {
    document.getElementById("plan").hidden = accounts.length === 0;
    const rows = [];
    for (const a of accounts) {
      rows.push(el("tr", { "data-account": a.account, "data-state": "next" },
        el("td", {}, a.account, el("div", { class: "muted" }, a.windows.join(", ") + " · " + a.time_zone + " · ≤ " + a.daily_max + "/day")),
        el("td", { class: "muted" }, "next free slot"), el("td", {}, a.next_free ? at(a.next_free) : "none"), el("td", {}, "")));
      for (const p of a.planned) {
        rows.push(el("tr", { "data-account": a.account, "data-video": p.file, "data-state": p.state },
          el("td", {}, a.account), el("td", {}, p.file), el("td", {}, at(p.slot)), el("td", { class: "state" }, p.state)));
      }
    }
    fill("plan", rows, (r) => r);
  }

  // Every agent sharing the ledger; shown when there are several or the ledger is shared.
  function agents(v) {
    const list = v.agents || [];
    document.getElementById("agents").hidden = !(v.ledger_shared || list.length > 1);
    fill("agents", list, (a) => el("tr", { "data-agent": a.name, "data-state": a.alive ? "alive" : (a.stopped ? "stopped" : "silent") },
      el("td", {}, a.name), el("td", {}, a.host + " · pid " + a.pid), el("td", {}, a.version),
      el("td", {}, when(a.heartbeat_at)),
      el("td", { class: "state" }, a.alive ? "alive" : (a.stopped ? "stopped" : "silent")),
      el("td", {}, a.jobs.map((j) => "#" + j.id + (j.file ? " " + j.file : "")).join(", "))));
  }

  // The QR codes `dropcast login` waits on; the section shows only while there are some.
  function logins(codes) {
    const key = JSON.stringify(codes);
    if (drawn.logins === key) return;
    drawn.logins = key;
    const section = document.getElementById("logins");
    section.hidden = codes.length === 0;
    section.querySelector(".codes").replaceChildren(...codes.map((c) =>
      el("figure", { "data-account": c.account },
        el("img", { src: c.image, alt: "QR code to log " + c.account + " in", width: 240, height: 240 }),
        el("figcaption", {}, c.account + " · shown ", when(c.since)))));
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const res = await fetch("/api/jobs", { credentials: "same-origin", cache: "no-store" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      render(await res.json());
      document.getElementById("agent").classList.remove("error");
    } catch (e) {
      document.getElementById("agent").textContent = "cannot reach the agent (" + e.message + "); retrying…";
    }
    timer = setTimeout(poll, POLL_MS);
  }

  poll();
})();
