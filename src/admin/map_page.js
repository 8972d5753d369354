// The traffic map page (served as /map.js by the admin API). Polls
// /map.json twice a second with the what-if regions ticked, and redraws in
// place. No library, no external asset.
"use strict";

const POLL_MS = 500;
const W = 1000, H = 500;
const PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#7f7f7f"];
const OTHER = { "SERVFAIL": "#000000", "(no address)": "#bbbbbb" };

// Coarse coastlines, [lon, lat] rings: for orientation only.
const LAND = [
  [[-168,65],[-162,70],[-140,70],[-125,70],[-95,72],[-80,73],[-62,66],[-55,52],[-66,45],[-70,42],[-76,35],[-81,31],[-80,25],[-82,28],[-84,30],[-90,29],[-97,27],[-97,22],[-92,18],[-87,21],[-88,16],[-83,10],[-78,8],[-80,7],[-85,10],[-92,14],[-105,20],[-110,24],[-115,30],[-118,34],[-124,40],[-124,48],[-133,56],[-150,60],[-165,55],[-158,58],[-165,62]],
  [[-73,78],[-60,82],[-30,83],[-20,75],[-22,70],[-42,60],[-50,64],[-55,70],[-60,76]],
  [[-80,8],[-75,11],[-62,11],[-52,5],[-50,0],[-35,-5],[-39,-13],[-41,-22],[-48,-26],[-58,-35],[-62,-39],[-65,-45],[-68,-52],[-70,-55],[-74,-50],[-73,-40],[-71,-30],[-70,-18],[-76,-14],[-81,-5],[-80,0],[-78,3]],
  [[-10,36],[-9,43],[-2,44],[-5,48],[2,51],[8,54],[10,58],[5,60],[5,62],[15,69],[25,71],[40,68],[45,68],[60,70],[70,73],[80,73],[100,78],[110,76],[140,73],[160,70],[180,68],[180,65],[178,62],[163,60],[156,51],[155,58],[142,59],[135,55],[141,48],[133,43],[129,35],[127,38],[121,40],[122,31],[120,25],[115,22],[108,21],[106,18],[109,12],[105,9],[101,13],[100,6],[103,1],[98,8],[98,16],[94,16],[92,22],[87,21],[80,15],[77,8],[73,17],[72,22],[67,25],[58,25],[57,23],[59,22],[55,17],[45,13],[43,14],[39,21],[34,28],[32,31],[35,36],[28,36],[26,40],[23,38],[22,37],[20,40],[18,40],[16,38],[12,44],[14,45],[12,42],[8,44],[3,43],[0,39],[-5,36]],
  [[-17,21],[-17,15],[-8,5],[5,6],[10,3],[9,-1],[13,-10],[12,-17],[15,-27],[18,-34],[25,-34],[32,-28],[35,-22],[40,-15],[40,-10],[40,-3],[51,11],[43,12],[37,20],[33,28],[32,31],[20,32],[10,34],[11,37],[0,36],[-6,36],[-10,30],[-15,27]],
  [[-5,50],[1,51],[2,53],[-2,57],[-3,59],[-6,58],[-5,55],[-3,54],[-5,52]],
  [[-10,52],[-6,52],[-6,55],[-8,55]],
  [[-24,64],[-22,66],[-14,66],[-13,65],[-18,63]],
  [[130,31],[135,34],[140,35],[142,40],[140,45],[145,44],[141,41],[136,37],[131,34]],
  [[114,-22],[122,-18],[130,-12],[137,-12],[142,-11],[146,-19],[153,-25],[151,-34],[145,-39],[138,-35],[131,-31],[115,-34],[113,-26]],
  [[172,-34],[178,-38],[175,-42],[168,-46],[172,-41]],
  [[95,5],[106,-6],[104,-6],[95,2]], [[109,1],[117,7],[119,0],[116,-4],[110,-3]],
  [[131,-1],[141,-3],[150,-10],[141,-9],[138,-8]], [[120,18],[122,18],[126,7],[122,7]],
  [[44,-25],[47,-25],[50,-15],[49,-12],[44,-17]],
  [[-180,-90],[-180,-78],[-150,-77],[-100,-73],[-60,-64],[-30,-78],[0,-70],[60,-67],[100,-65],[140,-66],[170,-72],[180,-78],[180,-90]],
];

const SVGNS = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);
const x = (lon) => (lon + 180) * W / 360;
const y = (lat) => (90 - lat) * H / 180;

let last = null;          // the last document drawn
let lastAnswers = null;   // {at, counts} for answers per second
let seq = 0, drawnSeq = 0;

function el(tag, attrs, text, ns) {
  const e = ns ? document.createElementNS(SVGNS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

function drawStatic() {
  const g = $("graticule");
  for (let lon = -150; lon <= 150; lon += 30) g.appendChild(el("path", { d: `M${x(lon)},0V${H}` }, undefined, true));
  for (let lat = -60; lat <= 60; lat += 30) g.appendChild(el("path", { d: `M0,${y(lat)}H${W}` }, undefined, true));
  const land = $("land");
  for (const ring of LAND) {
    const d = ring.map(([lo, la], i) => `${i ? "L" : "M"}${x(lo).toFixed(1)},${y(la).toFixed(1)}`).join("") + "Z";
    land.appendChild(el("path", { d }, undefined, true));
  }
}

function whatif() {
  return [...document.querySelectorAll("input.whatif:checked")].map((c) => c.dataset.region);
}

function colour(name) {
  if (OTHER[name]) return OTHER[name];
  const i = (last ? last.regions.findIndex((r) => r.name === name) : -1);
  return i < 0 ? "#999999" : PALETTE[i % PALETTE.length];
}

const pct = (v) => (v === null || v === undefined) ? "" : (v > 0 && v < 0.0005 ? "<0.1 %" : (v * 100).toFixed(1) + " %");

function topRegion(shares) {
  let best = null;
  for (const [name, v] of Object.entries(shares || {})) if (!best || v > best[1]) best = [name, v];
  return best ? best[0] : null;
}

let inflight = 0;

// The timer's poll waits for the previous one (the first map of a large
// GeoIP database takes seconds); a switch asks at once.
function tick() {
  if (!inflight) poll();
}

async function poll() {
  const my = ++seq;
  const ask = whatif();
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 30000);
  inflight++;
  try {
    const q = ask.length ? "?fail=" + ask.map(encodeURIComponent).join(",") : "";
    const resp = await fetch("/map.json" + q, { cache: "no-store", signal: ctl.signal });
    const doc = await resp.json();
    if (!resp.ok) throw new Error(doc.error || resp.statusText);
    // A reply to an older question (the boxes changed since) is not drawn.
    if (my < drawnSeq || ask.join(",") !== whatif().join(",")) return;
    drawnSeq = my;
    draw(doc);
    $("error").textContent = "";
  } catch (e) {
    $("error").textContent = "cannot read /map.json: " + e.message;
  } finally {
    clearTimeout(timer);
    inflight--;
  }
}

let preselected = false;
let lastMapped = null;    // the last document with a map

function draw(doc) {
  last = doc;
  if (!preselected) {
    chosenService(doc);
    preselect();
    preselected = true;
  }
  const up = $("updated");
  up.dataset.polls = String(Number(up.dataset.polls) + 1);
  up.textContent = "updated " + doc.generated_at + (doc.map_stale ? " (computing the map of the latest state…)" : "");
  up.dataset.stale = doc.map_stale ? "1" : "0";
  drawRegions(doc);
  // No map yet for this what-if set (a large database): keep the last drawing.
  if (!(doc.map_stale && !doc.services.length)) {
    lastMapped = doc;
    drawServices(doc);
    drawMap(doc);
  }
  drawSites(doc);
}

function rates(doc) {
  const now = performance.now();
  const counts = Object.fromEntries(doc.regions.map((r) => [r.name, r.answers]));
  const out = {};
  if (lastAnswers) {
    const dt = (now - lastAnswers.at) / 1000;
    for (const [name, n] of Object.entries(counts)) {
      const before = lastAnswers.counts[name];
      if (before !== undefined && dt > 0) out[name] = Math.max(0, n - before) / dt;
    }
  }
  lastAnswers = { at: now, counts };
  return out;
}

function drawRegions(doc) {
  const body = document.querySelector("#regions tbody");
  const perSec = rates(doc);
  const seen = new Set();
  for (const r of doc.regions) {
    seen.add(r.name);
    let row = $("region-" + r.name);
    if (!row) {
      row = el("tr", { id: "region-" + r.name, class: "region" });
      row.dataset.region = r.name;
      for (let i = 0; i < 8; i++) row.appendChild(el("td"));
      const box = el("input", { type: "checkbox", class: "whatif", id: "whatif-" + r.name });
      box.dataset.region = r.name;
      box.addEventListener("change", poll);
      row.cells[6].appendChild(box);
      for (const action of ["drain", "undrain"]) {
        const b = el("button", { type: "button", class: action }, action);
        b.addEventListener("click", () => override(r.name, action));
        row.cells[7].appendChild(b);
      }
      body.appendChild(row);
    }
    row.dataset.state = r.state;
    row.classList.toggle("whatif-failed", !!r.whatif_failed);
    const c = row.cells;
    c[0].replaceChildren(el("span", { class: "swatch" }), r.name);
    c[0].firstChild.style.background = colour(r.name);
    const ramp = r.ramp !== null && r.ramp !== undefined ? ` slow start ${(r.ramp * 100).toFixed(0)} %` : "";
    c[1].replaceChildren(el("span", { class: "state state-" + r.state }, r.state), ramp);
    if (r.whatif_failed) c[1].appendChild(el("div", { class: "whatif-note" }, "what-if: failed"));
    c[2].replaceChildren(el("div", { class: "endpoints" }, r.endpoints.map((e) =>
      `${e.address} ${e.state}${e.rtt_ms != null ? " " + e.rtt_ms.toFixed(1) + " ms" : ""}`).join(", ")));
    c[3].textContent = r.rtt_ms != null ? r.rtt_ms.toFixed(1) + " ms" : "–";
    c[3].className = c[4].className = c[5].className = "num";
    c[4].textContent = perSec[r.name] !== undefined ? perSec[r.name].toFixed(1) : "…";
    c[5].textContent = r.capacity != null ? String(r.capacity) : "–";
  }
  for (const row of [...body.rows]) if (!seen.has(row.dataset.region)) row.remove();
}

function chosenService(doc) {
  const sel = $("service");
  const names = doc.services.map((s) => s.service);
  if ([...sel.options].map((o) => o.value).join() !== names.join()) {
    const keep = sel.value;
    sel.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (names.includes(keep)) sel.value = keep;
  }
  return doc.services.find((s) => s.service === sel.value) || doc.services[0];
}

// `/?service=www` (or the full owner name) picks the map's first service.
function preselect() {
  const want = new URLSearchParams(location.search).get("service");
  if (!want || !last) return;
  const w = want.replace(/\.$/, "").toLowerCase();
  const hit = last.services.find((s) => {
    const n = s.service.replace(/\.$/, "").toLowerCase();
    return n === w || n.startsWith(w + ".");
  });
  if (hit) $("service").value = hit.service;
}

// One row per service and client family, one column per region: the share
// now, and with the what-if failures when some are ticked.
function drawServices(doc) {
  const names = doc.regions.map((r) => r.name);
  const extra = new Set();
  for (const s of doc.services) for (const f of s.families) for (const r of f.regions) if (!names.includes(r.region)) extra.add(r.region);
  const cols = names.concat([...extra]);
  const head = document.querySelector("#shares thead tr");
  const want = ["service", "clients", ...cols].join("|");
  if (head.dataset.cols !== want) {
    head.dataset.cols = want;
    head.replaceChildren(el("th", {}, "service"), el("th", {}, "clients"), ...cols.map((c) => {
      const th = el("th");
      th.append(el("span", { class: "swatch" }), c);
      th.firstChild.style.background = colour(c);
      return th;
    }));
  }
  const changed = doc.whatif.length > 0;
  const rows = [];
  for (const s of doc.services) {
    for (const f of s.families) {
      const tr = el("tr", { class: "share" });
      tr.dataset.service = s.service; tr.dataset.family = f.family;
      tr.append(el("td", {}, s.service.split(".")[0]), el("td", {}, `${f.family} (${f.networks})`));
      for (const c of cols) {
        const r = f.regions.find((x) => x.region === c);
        const td = el("td", { class: "num" }, r ? pct(r.now) + (changed ? " → " + pct(r.after) : "") : "");
        td.dataset.region = c;
        if (r && changed && Math.abs((r.after || 0) - r.now) > 1e-9) td.style.fontWeight = "bold";
        tr.appendChild(td);
      }
      rows.push(tr);
    }
  }
  document.querySelector("#shares tbody").replaceChildren(...rows);
}

function drawMap(doc) {
  const svc = chosenService(doc);
  const fam = svc && (svc.families.find((f) => f.family === "ipv4" && f.networks > 0) || svc.families[0]);
  const changed = doc.whatif.length > 0;
  $("change").textContent = changed ? `(what-if: ${doc.change})` : "";
  const dots = $("clients");
  const seen = new Set();
  const countries = fam ? fam.countries : {};
  for (const [cc, where] of Object.entries(doc.countries || {})) {
    const t = countries[cc];
    if (!t) continue;
    const region = topRegion(changed && t.after ? t.after : t.now);
    if (!region) continue;
    seen.add(cc);
    let dot = dots.querySelector(`circle[data-country="${cc}"]`);
    if (!dot) {
      dot = el("circle", { class: "client" }, undefined, true);
      dot.dataset.country = cc;
      dot.appendChild(el("title", {}, "", true));
      dots.appendChild(dot);
    }
    dot.setAttribute("cx", x(where.lon).toFixed(1));
    dot.setAttribute("cy", y(where.lat).toFixed(1));
    dot.setAttribute("r", (4 + 2 * Math.log2(1 + where.networks)).toFixed(1));
    dot.setAttribute("fill", colour(region));
    dot.dataset.region = region;
    dot.dataset.now = topRegion(t.now) || "";
    dot.firstChild.textContent = `${cc}: ${region}` + (changed ? ` (now ${topRegion(t.now)})` : "");
  }
  for (const d of [...dots.children]) if (!seen.has(d.dataset.country)) d.remove();

  $("legend").replaceChildren(...doc.regions.map((r) => {
    const s = el("span");
    s.append(el("span", { class: "swatch" }), r.name);
    s.firstChild.style.background = colour(r.name);
    return s;
  }));
  const moves = fam ? fam.moves : [];
  $("moves").textContent = moves.length
    ? `moves of ${svc.service.split(".")[0]} (${fam.family}): ` + moves.map((m) => `${m.from} → ${m.to} ${pct(m.share)}`).join("; ")
    : "";
}

// Region markers: drawn from the live regions even while the map is computed.
function drawSites(doc) {
  const sites = $("sites");
  sites.replaceChildren();
  for (const r of doc.regions) {
    if (!r.location) continue;
    const out = r.state !== "up" && r.state !== "forced-up" || r.whatif_failed;
    const c = el("circle", { class: "site" + (out ? " out" : ""), cx: x(r.location.lon), cy: y(r.location.lat), r: 9 }, undefined, true);
    c.dataset.region = r.name;
    c.dataset.state = r.state;
    c.setAttribute("fill", colour(r.name));
    c.setAttribute("stroke", out ? colour(r.name) : "#222");
    c.appendChild(el("title", {}, `${r.name}: ${r.state}${r.whatif_failed ? " (what-if: failed)" : ""}`, true));
    sites.appendChild(c);
    // Labels near the right edge go to the left of their marker.
    const right = x(r.location.lon) > W * 0.8;
    sites.appendChild(el("text", { class: "label", x: x(r.location.lon) + (right ? -12 : 12), y: y(r.location.lat) + 4,
      "text-anchor": right ? "end" : "start" }, `${r.name} (${r.state}${r.whatif_failed ? ", what-if: failed" : ""})`, true));
  }
}

async function override(region, action) {
  const token = $("token").value.trim();
  if (!token) { $("message").textContent = "type the admin token first"; return; }
  sessionStorage.setItem("meridian-admin-token", token);
  try {
    const resp = await fetch(`/regions/${encodeURIComponent(region)}/${action}`, {
      method: "POST", headers: { "Authorization": "Bearer " + token },
    });
    const doc = await resp.json();
    $("message").textContent = resp.ok ? `${action} ${region}: done` : `${action} ${region}: ${doc.error}`;
  } catch (e) {
    $("message").textContent = `${action} ${region}: ${e.message}`;
  }
  poll();
}

drawStatic();
$("token").value = sessionStorage.getItem("meridian-admin-token") || "";
$("service").addEventListener("change", () => lastMapped && drawMap(lastMapped));
poll();
setInterval(tick, POLL_MS);
