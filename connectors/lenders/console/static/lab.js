// The policy lab's operator page: a shadow engine (the challenger, a candidate policy)
// beside the champion. Plain JavaScript, no library, no build step.
//
// Reads /ops/v1/ with the operator key as "Authorization: Bearer"; a lender's key is
// refused there, so the challenger's limits never reach a lender. The key is kept in
// this closure only: never in the URL, a cookie or storage. Text from the data is always
// set with textContent, never parsed as HTML.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  let key = null;              // the operator key, in memory only
  let rows = [];               // the divergences last read
  let loaded = null;           // the selection they were read for

  // --- small helpers ---------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  }
  // Amounts are decimal strings: grouped and subtracted without going through a float.
  function grouped(amount) {
    const s = String(amount);
    const neg = s.startsWith("-");
    const [int, frac] = (neg ? s.slice(1) : s).split(".");
    return `${neg ? "-" : ""}${int.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}${frac ? "." + frac : ""}`;
  }
  function money(m) { return m ? `${grouped(m.amount)} ${m.currency}` : "–"; }
  function signed(amount, currency) {
    if (amount == null) return "–";
    const s = String(amount);
    return `${s.startsWith("-") || /^0(\.0*)?$/.test(s) ? "" : "+"}${grouped(s)}${currency ? " " + currency : ""}`;
  }
  function scaled(s, places) {
    const neg = s.startsWith("-");
    const [int, frac = ""] = (neg ? s.slice(1) : s).split(".");
    const v = BigInt(int + frac.padEnd(places, "0"));
    return neg ? -v : v;
  }
  function decSub(a, b) {          // a - b, exact
    const places = Math.max((String(a).split(".")[1] || "").length, (String(b).split(".")[1] || "").length);
    const d = scaled(String(a), places) - scaled(String(b), places);
    const neg = d < 0n, digits = (neg ? -d : d).toString().padStart(places + 1, "0");
    const out = places ? `${digits.slice(0, -places)}.${digits.slice(-places)}` : digits;
    return (neg ? "-" : "") + out;
  }
  function when(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toISOString().replace("T", " ").slice(0, 16) + " UTC";
  }
  const words = { partially_frozen: "partially frozen" };
  function badge(status) { return el("span", { class: `badge ${status}` }, words[status] || status); }
  function card(label, value) {
    return el("div", { class: "card" }, el("div", { class: "k" }, label), el("div", { class: "v" }, value));
  }
  function direction(r) {
    if (!r.champion || !r.shadow) return "one";
    const c = r.change || "0";
    return /^-/.test(c) ? "down" : /^0(\.0*)?$/.test(c) ? "same" : "up";
  }

  async function api(path) {
    let r;
    try {
      r = await fetch(path, { headers: { Authorization: `Bearer ${key}` }, cache: "no-store" });
    } catch (e) {
      throw notice(Object.assign(new Error("the server is not reachable"), { status: 0 }));
    }
    if (r.status === 401) { signOut("The operator key is not valid (any more): sign in again."); throw new Error("unauthorized"); }
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON: a proxy's page, a crash */ }
    if (!r.ok || body === null) {
      const err = Object.assign(new Error((body && body.reason) || `HTTP ${r.status}`), { status: r.status });
      throw r.status === 404 ? err : notice(err);
    }
    $("#notice").hidden = true;
    return body;
  }

  // A failed read is said on the page, never thrown away.
  function notice(err) {
    $("#notice").textContent = `Could not load: ${err.message}. Refresh to try again.`;
    $("#notice").hidden = false;
    return err;
  }

  // --- the selection lives in the hash (shadow, champion, day), never the key ---------
  function parseHash() {
    const raw = (location.hash || "#/").slice(1);
    const [path, query] = raw.split("?");
    const p = new URLSearchParams(query || "");
    return { path, shadow: p.get("shadow") || "", champion: p.get("champion") || "", day: p.get("day") || "" };
  }
  function selection() {
    return { shadow: $("#shadow").value, champion: $("#champion").value.trim(),
             day: $("#all-days").checked ? "all" : $("#day").value };
  }
  function query(sel, withDay) {
    const p = new URLSearchParams({ shadow: sel.shadow });
    if (sel.champion) p.set("champion", sel.champion);
    if (withDay && sel.day) p.set("day", sel.day);
    return p.toString();
  }

  // --- sign in / out ---------------------------------------------------------------
  async function signIn(ev) {
    ev.preventDefault();
    const input = $("#key");
    const candidate = input.value.trim();
    input.value = "";            // not left in the form either
    const r = await fetch("/ops/v1/shadows", { headers: { Authorization: `Bearer ${candidate}` }, cache: "no-store" });
    let body = null;
    try { body = await r.json(); } catch (e) { /* not JSON */ }
    if (!r.ok) {
      $("#signin-error").textContent = r.status === 401 && body && /not configured/.test(body.reason)
        ? "Operator access is not configured on this server." : "This is not the operator key.";
      return;
    }
    key = candidate;
    $("#signin-error").textContent = "";
    $("#signin").hidden = true;
    $("#top").hidden = false;
    $("#who").textContent = "operator";
    fillShadows(body.shadows);
    await route();
  }

  function signOut(message) {
    key = null; rows = []; loaded = null;
    for (const v of ["#view-divergences", "#view-borrower", "#top"]) $(v).hidden = true;
    $("#divergences tbody").replaceChildren();
    $("#signin").hidden = false;
    $("#signin-error").textContent = message || "";
  }

  function fillShadows(list) {
    const h = parseHash(), chosen = h.shadow || $("#shadow").value;
    const names = chosen && !list.includes(chosen) ? [chosen, ...list] : list;
    $("#shadow").replaceChildren(...(names.length ? names.map((s) => el("option", { value: s }, `shadow ${s}`))
      : [el("option", { value: "" }, "no shadow engine on the broker")]));
    if (chosen) $("#shadow").value = chosen;
    if (h.champion) $("#champion").value = h.champion;
    if (h.day === "all") $("#all-days").checked = true;
    else $("#day").value = h.day || new Date().toISOString().slice(0, 10);   // today, UTC
    $("#day").disabled = $("#all-days").checked;
  }

  // --- routing ---------------------------------------------------------------------------
  function route() {
    return show().catch(() => {});
  }

  function show() {
    if (!key) return Promise.resolve();
    const h = parseHash();
    for (const v of ["#view-divergences", "#view-borrower"]) $(v).hidden = true;
    if (h.path.startsWith("/borrower/")) {
      $("#view-borrower").hidden = false;
      return showBorrower(decodeURIComponent(h.path.slice("/borrower/".length)), h);
    }
    $("#view-divergences").hidden = false;
    if (h.shadow) $("#shadow").value = h.shadow;
    return showDivergences();
  }

  // --- divergences -----------------------------------------------------------------------
  async function showDivergences() {
    const sel = selection();
    if (!sel.shadow) { render(); return; }
    const same = loaded && loaded.shadow === sel.shadow && loaded.champion === sel.champion && loaded.day === sel.day;
    if (!same) {
      const d = await api(`/ops/v1/shadows/${encodeURIComponent(sel.shadow)}/divergences?` +
                          new URLSearchParams({ ...(sel.champion ? { champion: sel.champion } : {}), day: sel.day }));
      rows = d.divergences;
      loaded = sel;
      $("#d-summary").textContent = `${d.divergences.length} of ${d.borrowers_compared} borrowers differ ` +
        `(${d.day ? `decided on ${d.day}, UTC event time` : "every day"}); champion ${d.champion}, ` +
        `challenger ${d.shadow}. Read ${new Date().toISOString().slice(11, 19)} UTC.`;
      const programs = [...new Set(rows.map((r) => r.program_id).filter(Boolean))].sort();
      const select = $("#program"), chosen = select.value;
      select.replaceChildren(el("option", { value: "" }, "All programs"), ...programs.map((p) => el("option", { value: p }, p)));
      select.value = programs.includes(chosen) ? chosen : "";
      history.replaceState(null, "", `#/?${query(sel, true)}`);
    }
    render();
  }

  function codes(side, other) {
    if (!side) return el("span", { class: "muted" }, "not decided");
    if (!side.codes.length && side.status === "active") return el("span", { class: "muted" }, "none beyond the change");
    const theirs = new Set(other ? other.codes : []);
    const span = el("span", { class: "code" });
    side.codes.forEach((c, i) => {
      span.append(i ? ", " : "", theirs.has(c) ? c : el("mark", { title: "only on this side" }, c));
    });
    if (side.status !== "active") span.append(" ", badge(side.status));
    return span;
  }

  function render() {
    const q = $("#q").value.trim().toLowerCase(), program = $("#program").value, dir = $("#direction").value;
    const shown = rows.filter((r) => (!q || r.borrower_id.toLowerCase().includes(q)) &&
      (!program || r.program_id === program) && (!dir || direction(r) === dir));
    const sel = loaded || selection();
    $("#count").textContent = `${shown.length} of ${rows.length} divergence${rows.length === 1 ? "" : "s"}`;
    $("#divergences tbody").replaceChildren(...shown.map((r) => {
      const link = el("a", { href: `#/borrower/${encodeURIComponent(r.borrower_id)}?${query(sel, false)}` }, r.borrower_id);
      const cur = (r.champion || r.shadow).limit.currency;
      return el("tr", { "data-borrower": r.borrower_id, "data-direction": direction(r) },
        el("td", {}, link), el("td", {}, r.program_id || ""),
        el("td", { class: "num" }, r.champion ? money(r.champion.limit) : "–"), el("td", {}, codes(r.champion, r.shadow)),
        el("td", { class: "num" }, r.shadow ? money(r.shadow.limit) : "–"), el("td", {}, codes(r.shadow, r.champion)),
        el("td", { class: `num ${direction(r)}` }, signed(r.change, r.change == null ? "" : cur)));
    }));
    $("#empty").hidden = shown.length > 0;
  }

  // --- one borrower, champion beside challenger ------------------------------------------
  async function showBorrower(id, h) {
    const sel = { shadow: h.shadow || $("#shadow").value, champion: h.champion || $("#champion").value.trim(), day: "" };
    $("#back").setAttribute("href", `#/?${query({ ...sel, day: loaded ? loaded.day : "" }, true)}`);
    let d;
    try {
      d = await api(`/ops/v1/shadows/${encodeURIComponent(sel.shadow)}/borrowers/${encodeURIComponent(id)}?` +
                    new URLSearchParams(sel.champion ? { champion: sel.champion } : {}));
    } catch (e) {
      $("#b-title").textContent = e.status === 404 ? `No decision for ${id}: ${e.message}` : `Error: ${e.message}`;
      for (const s of ["#b-diff", "#b-champion", "#b-shadow", "#b-components tbody"]) $(s).replaceChildren();
      return;
    }
    const a = d.champion, b = d.shadow, any = a || b;
    $("#b-title").textContent = `${id} · ${any.program_id}`;
    const div = d.divergence;
    $("#b-title").dataset.diverges = String(!!div);
    $("#b-diff").replaceChildren(
      card("Difference (challenger − champion)", a && b ? signed(decSub(b.limit.amount, a.limit.amount), a.limit.currency) : "–"),
      card("Verdict", div ? "the engines disagree" : "the engines agree"),
      card("Reasons appearing", div && div.codes_appeared.length ? div.codes_appeared.join(", ") : "none"),
      card("Reasons disappearing", div && div.codes_disappeared.length ? div.codes_disappeared.join(", ") : "none"));
    $("#b-champion").replaceChildren(...side("Champion", d.champion_engine, a, b));
    $("#b-shadow").replaceChildren(...side("Challenger (shadow, never sent to lenders)", d.shadow_engine, b, a));
    const comps = new Map();
    for (const [i, u] of [[0, a], [1, b]]) {
      for (const c of (u ? u.components : [])) {
        const k = `${c.kind}\u0000${c.asset_id}`;
        if (!comps.has(k)) comps.set(k, { kind: c.kind, asset_id: c.asset_id, v: [null, null] });
        comps.get(k).v[i] = c;
      }
    }
    $("#b-components tbody").replaceChildren(...[...comps.values()].map((c) => {
      const [x, y] = c.v;
      const diff = x && y ? decSub(y.contribution.amount, x.contribution.amount) : null;
      const frozen = (c.v.find((v) => v && v.frozen)) ? " (frozen)" : "";
      return el("tr", {}, el("td", {}, c.kind + frozen), el("td", { class: "ids" }, c.asset_id),
        el("td", { class: "num" }, x ? money(x.contribution) : "–"), el("td", { class: "num" }, y ? money(y.contribution) : "–"),
        el("td", { class: "num" }, diff == null ? "–" : signed(diff)));
    }));
  }

  function side(title, engine, u, other) {
    const out = [el("h2", {}, title), el("p", { class: "muted ids" }, engine)];
    if (!u) return [...out, el("p", { class: "muted" }, "This engine has not decided this borrower.")];
    const theirs = new Set(other ? other.reasons.map((r) => r.code) : []);
    return [...out,
      el("div", { class: "cards" }, card("Limit", money(u.limit)), card("Available", money(u.available)),
        card("Status", badge(u.status)), card("Policy", u.policy_version)),
      el("p", { class: "muted" }, `v${u.version} · decided at ${when(u.watermark)} (event time)`),
      el("ul", { class: "reasons" }, ...u.reasons.map((r) => el("li", theirs.has(r.code) ? {} : { class: "only" },
        r.text, " ", el("span", { class: "code" }, r.code))))];
  }

  // --- wiring ------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", () => {
    $("#signin").addEventListener("submit", signIn);
    $("#signout").addEventListener("click", () => signOut("Signed out."));
    window.addEventListener("hashchange", route);
    const reread = () => {
      loaded = null;
      $("#day").disabled = $("#all-days").checked;
      if (location.hash.startsWith("#/borrower/")) location.hash = "#/"; else route();
    };
    for (const id of ["#shadow", "#day", "#all-days"]) $(id).addEventListener("change", reread);
    $("#champion").addEventListener("change", reread);
    $("#refresh").addEventListener("click", reread);
    let typing = null;
    $("#q").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(render, 150); });
    $("#program").addEventListener("change", render);
    $("#direction").addEventListener("change", render);
    $("#key").focus();
  });
})();
