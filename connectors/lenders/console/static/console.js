// The lender console. Plain JavaScript, no library, no build step.
//
// Every read goes to the lender API with the key as "Authorization: Bearer", so the
// console sees exactly what the API lets this lender see. The key is kept in this
// closure only: never in the URL, a cookie or storage. Text from the data (borrower ids,
// reasons, alerts) is always set with textContent, never parsed as HTML.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  const SVG = "http://www.w3.org/2000/svg";
  let key = null;              // the API key, in memory only
  let me = null;               // {lender_id, name}
  let lastEventId = null;      // the stream's resume point (Last-Event-ID)
  let startCursor = null;      // where the first stream starts: the portfolio's snapshot
  let streamAbort = null;
  let generation = 0;          // one stream loop per sign-in, even after a quick sign-out and in
  let opsTimer = null;
  const sort = { key: "borrower", desc: false };
  const recent = new Map();    // borrower -> version that arrived live (highlighted once)

  // --- small helpers ---------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }
  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }
  // Money is a decimal string: group the digits without ever going through a float.
  function money(m) {
    if (!m) return "";
    const [int, frac] = String(m.amount).split(".");
    const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return `${grouped}${frac ? "." + frac : ""} ${m.currency}`;
  }
  function pct(share) { return share == null ? "" : `${(Number(share) * 100).toFixed(1).replace(/\.0$/, "")}%`; }
  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
  }
  const words = { partially_frozen: "partially frozen" };
  function badge(status) { return el("span", { class: `badge ${status}` }, words[status] || status); }

  async function api(path) {
    let r;
    try {
      r = await fetch(path, { headers: { Authorization: `Bearer ${key}` }, cache: "no-store" });
    } catch (e) {
      throw notice(Object.assign(new Error("the server is not reachable"), { status: 0 }));
    }
    if (r.status === 401) { signOut("Your key is not valid (any more): sign in again."); throw new Error("unauthorized"); }
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON: a proxy's page, a crash */ }
    if (!r.ok || body === null) {
      const err = Object.assign(new Error((body && body.reason) || `HTTP ${r.status}`), { status: r.status });
      throw r.status === 404 ? err : notice(err);
    }
    $("#notice").hidden = true;
    return body;
  }

  // A failed read is said on the page (and the next refresh clears it), never thrown away.
  function notice(err) {
    $("#notice").textContent = `Could not load: ${err.message}. The page retries on the next update or refresh.`;
    $("#notice").hidden = false;
    return err;
  }

  // --- sign in / out ---------------------------------------------------------------
  async function signIn(ev) {
    ev.preventDefault();
    const input = $("#key");
    const candidate = input.value.trim();
    input.value = "";            // not left in the form either
    const r = await fetch("/v1/me", { headers: { Authorization: `Bearer ${candidate}` }, cache: "no-store" });
    if (!r.ok) { $("#signin-error").textContent = "This key is not valid."; return; }
    key = candidate;
    me = await r.json();
    $("#signin-error").textContent = "";
    $("#signin").hidden = true;
    $("#top").hidden = false;
    $("#who").textContent = `${me.name} (${me.lender_id})`;
    // The first page's snapshot gives the stream its start, so nothing falls in between.
    await route();
    follow();
  }

  function signOut(message) {
    key = null; me = null; lastEventId = null; startCursor = null;
    if (streamAbort) streamAbort.abort();
    clearInterval(opsTimer);
    for (const v of ["#view-portfolio", "#view-borrower", "#view-operators", "#top"]) $(v).hidden = true;
    $("#signin").hidden = false;
    $("#signin-error").textContent = message || "";
    setLive("offline");
  }

  // --- routing (the hash holds the view and a borrower id, never the key) -----------
  // Every view's loading promise ends here: failures are already shown by notice().
  function route() {
    return show().catch(() => {});
  }

  function show() {
    if (!key) return Promise.resolve();
    clearInterval(opsTimer);
    const hash = location.hash || "#/";
    for (const v of ["#view-portfolio", "#view-borrower", "#view-operators"]) $(v).hidden = true;
    $("#nav-portfolio").classList.toggle("active", !hash.startsWith("#/operators"));
    $("#nav-operators").classList.toggle("active", hash.startsWith("#/operators"));
    if (hash.startsWith("#/borrower/")) {
      const id = decodeURIComponent(hash.slice("#/borrower/".length));
      $("#view-borrower").hidden = false;
      // Alerts are not on the limit stream: polled while the page is open.
      opsTimer = setInterval(() => showAlerts(id).catch(() => {}), 10000);
      return showBorrower(id);
    }
    if (hash.startsWith("#/operators")) {
      $("#view-operators").hidden = false;
      opsTimer = setInterval(() => showOperators().catch(() => {}), 5000);
      return showOperators();
    }
    $("#view-portfolio").hidden = false;
    return showPortfolio();
  }

  // --- portfolio -------------------------------------------------------------------
  async function showPortfolio() {
    const params = new URLSearchParams({ sort: sort.key, order: sort.desc ? "desc" : "asc" });
    for (const name of ["q", "program", "status"]) if ($(`#${name}`).value) params.set(name, $(`#${name}`).value);
    const data = await api(`/v1/portfolio?${params}`);
    if (startCursor === null) startCursor = data.cursor;
    const select = $("#program");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "" }, "All programs"),
      ...data.programs.map((p) => el("option", { value: p }, p)));
    select.value = chosen;
    $("#count").textContent = `${data.matching} borrower${data.matching === 1 ? "" : "s"}`;
    $("#totals").replaceChildren(...data.totals.flatMap((t) => [
      card(`Total limit (${t.currency})`, money({ amount: t.limit, currency: t.currency })),
      card(`Available (${t.currency})`, money({ amount: t.available, currency: t.currency })),
      card(`Your part (${t.currency})`, money({ amount: t.lender_limit, currency: t.currency })),
    ]));
    for (const th of document.querySelectorAll("#portfolio th[data-sort]")) {
      th.classList.toggle("sorted", th.dataset.sort === sort.key);
      th.classList.toggle("desc", th.dataset.sort === sort.key && sort.desc);
    }
    $("#portfolio tbody").replaceChildren(...data.items.map((b) => {
      const link = el("a", { href: `#/borrower/${encodeURIComponent(b.borrower_id)}` }, b.borrower_id);
      const tr = el("tr", { "data-borrower": b.borrower_id, "data-version": String(b.version) },
        el("td", {}, link), el("td", {}, b.program_id), el("td", {}, badge(b.status)),
        el("td", { class: "num" }, money(b.limit)), el("td", { class: "num" }, money(b.available)),
        el("td", { class: "num" }, `${pct(b.share)} · ${money(b.lender_limit)}`),
        el("td", {}, b.last_change ? b.last_change.text : ""), el("td", {}, when(b.changed_at)));
      if (recent.get(b.borrower_id) === b.version) { tr.classList.add("flash"); recent.delete(b.borrower_id); }
      return tr;
    }));
    $("#empty").hidden = data.items.length > 0;
  }

  function card(label, value) {
    return el("div", { class: "card" }, el("div", { class: "k" }, label), el("div", { class: "v" }, value));
  }

  // --- borrower ----------------------------------------------------------------------
  async function showBorrower(id) {
    let history, alerts;
    try {
      [history, alerts] = await Promise.all([
        api(`/v1/borrowers/${encodeURIComponent(id)}/history?limit=1000`),
        api(`/v1/borrowers/${encodeURIComponent(id)}/alerts?limit=100`)]);
    } catch (e) {
      $("#b-title").textContent = e.status === 404 ? `No borrower ${id} in your portfolio` : `Error: ${e.message}`;
      for (const s of ["#b-summary", "#b-chart", "#b-reasons", "#b-alerts"]) $(s).replaceChildren();
      for (const s of ["#b-components tbody", "#b-versions tbody"]) $(s).replaceChildren();
      return;
    }
    const versions = history.items.map((i) => i.payload);   // newest first
    const cur = versions[0];
    const mine = (cur.lenders || []).find((l) => l.lender_id === me.lender_id);
    $("#b-title").textContent = `${cur.borrower_id} · ${cur.program_id}`;
    $("#b-title").dataset.version = String(cur.version);
    $("#b-summary").replaceChildren(
      card("Limit", money(cur.limit)), card("Available", money(cur.available)),
      card("Outstanding", money(cur.outstanding)), card("Status", badge(cur.status)),
      card("Your share", mine ? `${pct(mine.share)} · ${money(mine.limit)}` : "not funded by you now"),
      card("Version", `v${cur.version} · ${when(history.items[0].occurred_at)}`));
    $("#b-chart").replaceChildren(chart(history.items.slice().reverse()));
    $("#b-reasons").replaceChildren(...cur.reasons.map((r) =>
      el("li", {}, r.text, " ", el("span", { class: "code" }, r.code))));
    renderAlerts(alerts);
    const limit = Number(cur.limit.amount) || 0;
    $("#b-components tbody").replaceChildren(...cur.components.map((c) => {
      const part = limit > 0 ? Math.max(0, Number(c.contribution.amount)) / limit : 0;
      const bar = el("div", { class: "bar" });
      bar.style.width = `${Math.min(100, part * 100).toFixed(1)}%`;   // CSSOM: allowed by the CSP
      const detail = Object.entries(c.detail || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
      return el("tr", {}, el("td", {}, c.kind + (c.frozen ? " (frozen)" : "")), el("td", {}, c.asset_id),
        el("td", { class: "num" }, money(c.contribution)), el("td", {}, bar), el("td", { class: "ids" }, detail));
    }));
    $("#b-versions tbody").replaceChildren(...history.items.map((i) => {
      const p = i.payload;
      const change = p.reasons.find((r) => r.code.startsWith("LIMIT_")) || p.reasons[0];
      const tr = el("tr", { "data-version": String(p.version) }, el("td", {}, `v${p.version}`),
        el("td", {}, when(i.occurred_at)), el("td", { class: "num" }, money(p.limit)),
        el("td", { class: "num" }, money(p.available)), el("td", {}, badge(p.status)),
        el("td", {}, change ? change.text : ""), el("td", { class: "ids" }, (p.trigger_event_ids || []).join(", ")));
      if (recent.get(p.borrower_id) === p.version) tr.classList.add("flash");
      return tr;
    }));
    recent.delete(cur.borrower_id);
  }

  async function showAlerts(id) {
    renderAlerts(await api(`/v1/borrowers/${encodeURIComponent(id)}/alerts?limit=100`));
  }

  function renderAlerts(alerts) {
    $("#b-alerts").replaceChildren(...(alerts.items.length ? alerts.items.map((a) =>
      el("li", { "data-alert": a.payload.alert_id }, badge(a.payload.severity), " ", a.payload.text, " ",
        el("span", { class: "code" }, `${a.payload.code} · ${when(a.occurred_at)}`)))
      : [el("li", { class: "muted" }, "No alerts.")]));
  }

  // A step chart of limit and available: values hold from one version to the next.
  function chart(items) {
    const W = 900, H = 260, L = 90, R = 16, T = 16, B = 36;
    const box = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "limit and available over time" });
    const pts = items.map((i) => ({ t: Date.parse(i.occurred_at), limit: Number(i.payload.limit.amount),
                                    avail: Number(i.payload.available.amount) }));
    if (!pts.length) return box;
    const now = Math.max(Date.now(), pts[pts.length - 1].t);
    const t0 = pts[0].t, t1 = pts.length > 1 ? Math.max(pts[pts.length - 1].t, t0 + 1) : t0 + 3600e3;
    const tEnd = Math.min(now, t1 + (t1 - t0) * 0.05 + 1);
    const ymax = niceMax(Math.max(1, ...pts.map((p) => Math.max(p.limit, p.avail))));
    const x = (t) => L + (t - t0) / (tEnd - t0) * (W - L - R);
    const y = (v) => T + (1 - Math.max(0, v) / ymax) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const v = ymax * i / 4;
      box.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e8ee" }));
      box.append(svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7785" },
        v.toLocaleString("en-US", { maximumFractionDigits: 0 })));
    }
    for (let i = 0; i <= 4; i++) {
      const t = t0 + (tEnd - t0) * i / 4;
      box.append(svg("text", { x: x(t), y: H - 12, "text-anchor": i === 0 ? "start" : i === 4 ? "end" : "middle",
        "font-size": 11, fill: "#6b7785" }, new Date(t).toISOString().replace("T", " ").slice(5, 16)));
    }
    const step = (f) => pts.map((p, i) => `${i ? `L${x(p.t).toFixed(1)},${y(pts[i - 1][f]).toFixed(1)} ` : ""}` +
      `${i ? "L" : "M"}${x(p.t).toFixed(1)},${y(p[f]).toFixed(1)}`).join(" ") +
      ` L${x(tEnd).toFixed(1)},${y(pts[pts.length - 1][f]).toFixed(1)}`;
    box.append(svg("path", { d: step("limit"), fill: "none", stroke: "#1f5fbf", "stroke-width": 2 }));
    box.append(svg("path", { d: step("avail"), fill: "none", stroke: "#1e8e3e", "stroke-width": 2, "stroke-dasharray": "6 3" }));
    for (const p of pts) box.append(svg("circle", { cx: x(p.t), cy: y(p.limit), r: 3, fill: "#1f5fbf" }));
    box.append(svg("rect", { x: L + 10, y: T + 4, width: 12, height: 3, fill: "#1f5fbf" }));
    box.append(svg("text", { x: L + 28, y: T + 9, "font-size": 12 }, "limit"));
    box.append(svg("rect", { x: L + 80, y: T + 4, width: 12, height: 3, fill: "#1e8e3e" }));
    box.append(svg("text", { x: L + 98, y: T + 9, "font-size": 12 }, "available"));
    return box;
  }
  function niceMax(v) {  // a round axis end: 1, 2, 2.5 or 5 times a power of ten
    const p = 10 ** Math.floor(Math.log10(v));
    return [1, 2, 2.5, 5, 10].map((m) => m * p).find((n) => n >= v);
  }

  // --- operators ---------------------------------------------------------------------
  async function showOperators() {
    const d = await api("/v1/operators");
    const e = d.engine, rate = (v) => (v == null ? "–" : `${v.toLocaleString("en-US")}/s`);
    $("#ops-updated").textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC; rates since the previous refresh (every 5 s).`;
    $("#ops-cards").replaceChildren(
      card("Engine", e.up ? "up" : "unreachable"),
      card("Events in", rate(e.per_second.events_in)), card("Limit updates", rate(e.per_second.decisions)),
      card("Alerts", rate(e.per_second.alerts)), card("Dead letters", rate(e.per_second.dead_letters)),
      card("Latency p99 (limits)", e.latency_p99_ms == null ? "–" : `≤ ${e.latency_p99_ms} ms`));
    const rows = (sel, entries, empty) => $(sel).replaceChildren(...(entries.length ? entries :
      [el("tr", {}, el("td", { class: "muted", colspan: "5" }, empty))]));
    rows("#ops-lag tbody", d.consumer_lag.groups.map((g) => el("tr", {}, el("td", {}, g.group),
      el("td", { class: "num" }, g.lag.toLocaleString("en-US")), el("td", { class: "num" }, String(g.partitions)))),
      d.consumer_lag.error || "No consumer group.");
    rows("#ops-dead tbody", Object.entries(e.dead_letters_by_reason).map(([k, v]) =>
      el("tr", {}, el("td", {}, k), el("td", { class: "num" }, v.toLocaleString("en-US")))), "None.");
    rows("#ops-topics tbody", Object.entries(e.events_in_by_topic).map(([k, v]) =>
      el("tr", {}, el("td", {}, k), el("td", { class: "num" }, v.toLocaleString("en-US")))),
      e.up ? "None yet." : "Engine metrics unreachable.");
    const w = d.webhooks, a = w.attempts;
    $("#ops-webhooks").textContent = `delivered ${a.delivered || 0}, failed ${a.failed || 0}, ` +
      `dead ${a.dead || 0} in ${w.hours} h; ${w.dead_letters} dead letters in all.`;
    rows("#ops-failures tbody", w.recent_failures.map((f) => el("tr", {}, el("td", {}, f.borrower_id),
      el("td", {}, `v${f.version}`), el("td", {}, String(f.attempt)), el("td", {}, f.status),
      el("td", {}, f.error || `HTTP ${f.response_code}`))), "No failed delivery.");
    $("#ops-workers").replaceChildren(...e.workers.map((x) =>
      el("li", {}, `${x.url}: ${x.up ? "up" : `unreachable (${x.error})`}`)));
  }

  // --- live: the SSE stream, read with fetch so the key goes in a header ---------------
  function setLive(state, detail) {
    $("#live").dataset.state = state;
    $("#live-text").textContent = detail ? `${state} · ${detail}` : state;
  }

  async function follow() {
    const mine = ++generation;
    let retryMs = 2000;
    while (key && mine === generation) {
      const ctrl = new AbortController();
      streamAbort = ctrl;
      const headers = { Authorization: `Bearer ${key}` };
      let url = "/v1/stream/limits?scope=portfolio";
      if (lastEventId) headers["Last-Event-ID"] = lastEventId;        // resume where we were
      else if (startCursor !== null) url += `&since=${startCursor}`;   // from the first snapshot
      setLive(lastEventId ? "reconnecting" : "connecting");
      try {
        const r = await fetch(url, { headers, signal: ctrl.signal, cache: "no-store" });
        if (r.status === 401) { signOut("Your key is not valid (any more): sign in again."); return; }
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        setLive("live");
        const reader = r.body.getReader();
        const decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += decoder.decode(value, { stream: true });
          let end;
          while ((end = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const retry = handle(block);
            if (retry) retryMs = retry;
          }
        }
      } catch (err) {
        if (!key || ctrl.signal.aborted) return;
      }
      if (!key || mine !== generation) return;
      setLive("reconnecting", `connection lost at ${new Date().toISOString().slice(11, 19)} UTC`);
      await new Promise((res) => setTimeout(res, retryMs));
    }
  }

  function handle(block) {
    const ev = {};
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue;
      const i = line.indexOf(":");
      const name = i < 0 ? line : line.slice(0, i);
      ev[name] = (ev[name] ? ev[name] + "\n" : "") + (i < 0 ? "" : line.slice(i + 1).replace(/^ /, ""));
    }
    if (ev.retry) return Number(ev.retry) || null;
    if (!ev.data) return null;
    if (ev.id) lastEventId = ev.id;
    const update = JSON.parse(ev.data);
    const p = update.payload;
    recent.set(p.borrower_id, p.version);
    // The last 20 arrivals, on the page for whoever inspects it (and the browser test).
    const arrivals = (document.body.dataset.live || "").split(" ").filter(Boolean);
    document.body.dataset.live = [...arrivals.slice(-19), `${p.borrower_id}@${p.version}`].join(" ");
    refreshSoon(p.borrower_id);
    return null;
  }

  // Many updates in a burst cause one refresh of the page shown, not one each.
  let pending = null, pendingBorrowers = new Set();
  function refreshSoon(borrower) {
    pendingBorrowers.add(borrower);
    if (pending) return;
    pending = setTimeout(() => {
      const touched = pendingBorrowers;
      pending = null; pendingBorrowers = new Set();
      const hash = location.hash || "#/";
      if (hash.startsWith("#/borrower/")) {
        const id = decodeURIComponent(hash.slice("#/borrower/".length));
        if (touched.has(id)) showBorrower(id).catch(() => {});
      } else if (!hash.startsWith("#/operators")) {
        showPortfolio().catch(() => {});
      }
    }, 250);
  }

  // --- wiring ------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("#signin").addEventListener("submit", signIn);
    $("#signout").addEventListener("click", () => signOut("Signed out."));
    window.addEventListener("hashchange", route);
    let typing = null;
    const reload = () => showPortfolio().catch(() => {});
    $("#q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(reload, 200); });
    $("#program").addEventListener("change", reload);
    $("#status").addEventListener("change", reload);
    for (const th of document.querySelectorAll("#portfolio th[data-sort]")) {
      th.addEventListener("click", () => {
        sort.desc = sort.key === th.dataset.sort ? !sort.desc : false;
        sort.key = th.dataset.sort;
        reload();
      });
    }
    $("#key").focus();
  });
})();
