// Gantry web UI: keeps a server-rendered page live. One event stream per page (Server-Sent
// Events, resumed by id after a disconnect); events only mark the page dirty, and the live part
// is re-fetched at most once in flight and swapped in one animation frame: never a repaint per
// event. Also: relative times, action buttons, the force dialog and the log viewer.
"use strict";
(function () {
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));
  const MIN_REFRESH_MS = 300;

  // --- live refresh ------------------------------------------------------------------------
  const body = document.body;
  let lastId = Number(body.dataset.since || "-1");
  let dirty = false, inflight = false, lastRefresh = 0, source = null, lastHtml = null;
  const conn = $("#conn");

  function setConn(text, down) {
    if (!conn) return;
    conn.textContent = text;
    conn.classList.toggle("down", !!down);
  }

  function fragmentUrl() {
    const u = new URL(location.href);
    u.searchParams.set("fragment", "1");
    return u.toString();
  }

  function schedule() {
    if (!dirty || inflight) return;
    const wait = Math.max(0, lastRefresh + MIN_REFRESH_MS - Date.now());
    inflight = true;
    setTimeout(refresh, wait);
  }

  async function refresh() {
    dirty = false;
    lastRefresh = Date.now();
    try {
      const resp = await fetch(fragmentUrl(), { headers: { Accept: "text/html" } });
      if (resp.ok) {
        const html = await resp.text();
        if (html !== lastHtml) { // an event that changed nothing shown costs no repaint
          // Parse here and swap in the next frame: two shorter tasks rather than one long one
          // (a 100-build waterfall's HTML takes tens of ms to parse, and as long to lay out).
          // A keyed page is patched in a task of its own, outside the frame that renders it:
          // parse, patch and render are three tasks.
          const tpl = document.createElement("template");
          tpl.innerHTML = html.trim();
          const later = tpl.content.querySelector("[data-keyed]") ? setTimeout : requestAnimationFrame;
          await new Promise((done) => later(() => { if (swap(tpl)) lastHtml = html; done(); }));
        }
      }
    } catch (e) {
      dirty = true; // the coordinator is away: try again after the next event or reconnect
    } finally {
      inflight = false;
      if (dirty) schedule();
    }
  }

  function swap(tpl) {
    const live = $("#live");
    if (!live) return false;
    const active = document.activeElement;
    if (active && live.contains(active) && /INPUT|SELECT|TEXTAREA/.test(active.tagName)) {
      dirty = true; // do not pull a field away from someone typing in it
      return false;
    }
    const fresh = tpl.content.querySelector("#live");
    if (!fresh) return false;
    if (fresh.querySelector("[data-keyed]")) { // patch what changed: the rest keeps its layout
      morph(live, fresh);
      setFavicon(live.dataset.favicon);
      return true;
    }
    const focusedHref = active && live.contains(active) ? active.getAttribute("href") : null;
    live.replaceWith(fresh);
    setFavicon(fresh.dataset.favicon);
    relativeTimes(fresh);
    if (focusedHref) {
      const again = fresh.querySelector(`[href="${CSS.escape(focusedHref)}"]`);
      if (again) again.focus();
    }
    return true;
  }

  // Make `live` show what `fresh` shows, touching only what differs: a repaint then lays out
  // and paints the blocks that changed, not the whole page (a 100-build waterfall's grid takes
  // tens of ms to lay out from scratch). The children of a [data-keyed] element are matched by
  // their data-k and keep their node: an unchanged one only gets its new position (style), a
  // changed one is updated in place.
  function morph(live, fresh) {
    syncAttributes(live, fresh);
    const olds = Array.from(live.children), news = Array.from(fresh.children);
    if (olds.length !== news.length) { // another shape (e.g. "No builds yet"): start over
      live.replaceChildren(...news);
      relativeTimes(live);
      return;
    }
    news.forEach((el, i) => {
      const old = olds[i];
      if (old.tagName === el.tagName && old.hasAttribute("data-keyed") && el.hasAttribute("data-keyed")) {
        syncAttributes(old, el);
        keyed(old, el);
      } else if (!old.isEqualNode(el)) {
        old.replaceWith(el);
        relativeTimes(el);
      }
    });
  }

  function syncAttributes(old, el) {
    for (const a of Array.from(old.attributes)) if (!el.hasAttribute(a.name)) old.removeAttribute(a.name);
    for (const a of Array.from(el.attributes)) if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
  }

  function keyed(box, fresh) {
    const news = Array.from(fresh.children);
    const wanted = new Set(news.map((el) => el.dataset.k));
    const byKey = new Map();
    for (const el of Array.from(box.children)) { // what has no place in `fresh` goes first, so
      const k = el.dataset.k;                    // that the nodes kept never move
      if (k && wanted.has(k) && !byKey.has(k)) byKey.set(k, el);
      else el.remove();
    }
    let at = box.firstElementChild;
    for (const el of news) {
      const old = el.dataset.k ? byKey.get(el.dataset.k) : undefined;
      let node = el;
      if (old && old.tagName !== el.tagName) {
        if (old === at) at = at.nextElementSibling;
        old.remove();
      } else if (old) {
        byKey.delete(el.dataset.k);
        if (!old.isEqualNode(el)) update(old, el);
        node = old;
      }
      if (node === at) at = at.nextElementSibling;
      else {
        box.insertBefore(node, at);
        if (node === el) relativeTimes(el);
      }
    }
  }

  // Make element `old` equal to `el` (same tag) in place: attributes, text and child elements
  // that differ, so that the style engine recomputes only the elements whose attributes changed.
  function update(old, el) {
    syncAttributes(old, el);
    const a = Array.from(old.childNodes), b = Array.from(el.childNodes);
    if (a.length !== b.length) { old.replaceChildren(...b); return; }
    b.forEach((n, i) => {
      const o = a[i];
      if (o.nodeType !== n.nodeType || o.nodeName !== n.nodeName) o.replaceWith(n);
      else if (o.nodeType === Node.TEXT_NODE) { if (o.data !== n.data) o.data = n.data; }
      else if (o.nodeType === Node.ELEMENT_NODE && !o.isEqualNode(n)) update(o, n);
    });
  }

  function setFavicon(href) {
    const link = $("#favicon");
    if (link && href && link.getAttribute("href") !== href) link.setAttribute("href", href);
  }

  function connect() {
    const stream = body.dataset.stream || "";
    if (stream === "none" || !window.EventSource) return;
    const url = `/api/v1/events?since=${lastId}` + (stream ? `&${stream}` : "");
    source = new EventSource(url);
    source.onopen = () => setConn("● live");
    source.onmessage = (e) => {
      lastId = Number(e.lastEventId || lastId);
      dirty = true;
      schedule();
    };
    source.addEventListener("overflow", () => { // too far behind: reload the state, resubscribe
      source.close(); dirty = true; schedule(); setTimeout(connect, 500);
    });
    source.onerror = () => {
      setConn("○ reconnecting…", true);
      if (source.readyState === EventSource.CLOSED) { // a refused reply: the browser gave up
        setTimeout(connect, 1000);
      }
    };
  }

  // --- relative times ----------------------------------------------------------------------
  function ago(seconds) {
    const s = Math.round(Math.abs(seconds));
    const words = s < 60 ? `${s} s` : s < 3600 ? `${Math.round(s / 60)} min`
      : s < 86400 ? `${Math.round(s / 3600)} h` : `${Math.round(s / 86400)} d`;
    return seconds >= 0 ? `${words} ago` : `in ${words}`;
  }

  function relativeTimes(root) {
    const now = Date.now() / 1000;
    for (const t of $$("time:not([data-abs])", root)) {
      const at = t.dataset.unix ? Number(t.dataset.unix) : Date.parse(t.getAttribute("datetime")) / 1000;
      if (!isNaN(at) && at > 0) t.textContent = ago(now - at);
    }
  }

  // --- buttons and the force dialog ----------------------------------------------------------
  async function post(url, payload) {
    const resp = await fetch(url, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(payload || {}),
    });
    const doc = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
    if (!resp.ok) throw new Error(doc.error || `HTTP ${resp.status}`);
    return doc;
  }

  function toast(text, bad) {
    let el = $("#toast");
    if (!el) {
      el = document.createElement("p");
      el.id = "toast"; el.setAttribute("role", "alert");
      $("main").prepend(el);
    }
    el.className = bad ? "error" : "meta";
    el.textContent = text;
  }

  document.addEventListener("click", async (e) => {
    const btn = e.target.closest("button");
    if (!btn) return;
    if (btn.dataset.open) { const d = document.getElementById(btn.dataset.open); if (d) d.showModal(); return; }
    if (btn.hasAttribute("data-close")) { btn.closest("dialog").close(); return; }
    if (btn.dataset.post) {
      if (btn.dataset.confirm && !confirm(btn.dataset.confirm)) return;
      btn.disabled = true;
      try {
        const doc = await post(btn.dataset.post, btn.dataset.body ? JSON.parse(btn.dataset.body) : {});
        toast(doc.build_request_id ? `Requested: build request #${doc.build_request_id}` : "Done.");
      } catch (err) { toast(err.message, true); } finally { btn.disabled = false; }
    }
  });

  function paramValue(el) {
    const type = el.dataset.type;
    if (type === "bool") return el.checked;
    if (type === "choice" && el.dataset.multiple) return Array.from(el.selectedOptions).map((o) => o.value);
    if (type === "fixed") { try { return JSON.parse(el.value); } catch (e) { return el.value; } }
    if (type === "int" && /^-?\d+$/.test(el.value.trim())) return Number(el.value.trim());
    return el.value; // as typed: the API says what is wrong with it
  }

  const form = $("#force-form");
  if (form) {
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      const error = $(".error", form);
      const payload = { properties: [] };
      for (const name of ["reason", "owner", "branch", "revision"]) {
        if (form.elements[name]) payload[name] = form.elements[name].value;
      }
      for (const el of $$("[data-param]", form)) payload.properties.push({ name: el.dataset.param, value: paramValue(el) });
      // One source stamp per codebase: its fields as typed (empty: the codebase's default).
      const stamps = $$("fieldset[data-codebase]", form).map((set) => {
        const stamp = { codebase: set.dataset.codebase };
        for (const el of $$("[data-field]", set)) stamp[el.dataset.field] = String(paramValue(el));
        return stamp;
      });
      if (stamps.length) payload.sourcestamps = stamps;
      try {
        const doc = await post(form.dataset.url, payload);
        error.hidden = true;
        form.closest("dialog").close();
        toast(`Build requested: request #${doc.build_request_id}`);
      } catch (err) {
        error.textContent = err.message;
        error.hidden = false;
      }
    });
  }

  // --- log viewer ----------------------------------------------------------------------------
  const WINDOW = 256 * 1024;
  const ERROR_RE = /\b(error|fatal|failed|failure|traceback)\b/i;

  function ansiToHtml(text, state) {
    // state: {cls: string[]} carried from line to line
    let out = "", last = 0;
    const esc = (s) => s.replace(/[&<>]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;" })[c]);
    const open = () => (state.cls.length ? `<span class="${state.cls.join(" ")}">` : "");
    const close = () => (state.cls.length ? "</span>" : "");
    out += open();
    const re = /\x1b\[([0-9;]*)([A-Za-z])/g;
    let m;
    while ((m = re.exec(text))) {
      out += esc(text.slice(last, m.index));
      last = re.lastIndex;
      if (m[2] !== "m") continue;
      out += close();
      for (const code of (m[1] || "0").split(";").map(Number)) {
        if (code === 0) state.cls = [];
        else if (code === 1) state.cls.push("a-b");
        else if (code === 3) state.cls.push("a-i");
        else if (code === 4) state.cls.push("a-u");
        else if ((code >= 30 && code <= 37) || (code >= 90 && code <= 97)) {
          state.cls = state.cls.filter((c) => !/^a-\d/.test(c)); state.cls.push(`a-${code}`);
        } else if (code === 39) state.cls = state.cls.filter((c) => !/^a-\d/.test(c));
      }
      out += open();
    }
    return out + esc(text.slice(last)) + close();
  }

  const pad = (n, w = 2) => String(n).padStart(w, "0");
  function clockTime(ms) {
    const d = new Date(ms);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }
  function elapsedTime(ms) { // +M:SS.mmm, +H:MM:SS.mmm past an hour
    const sign = ms < 0 ? "-" : "+";
    ms = Math.abs(ms);
    const h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60, s = Math.floor(ms / 1000) % 60;
    return `${sign}${h ? `${h}:${pad(m)}` : m}:${pad(s)}.${pad(ms % 1000, 3)}`;
  }

  // When each byte of the log was produced: (offset, unix ms) marks in offset order, each the
  // time of the bytes up to the next; a line has the time of the last mark at or before it.
  function timeline() {
    let offs = [], times = [];
    return {
      reset() { offs = []; times = []; },
      add(marks) { // a page's marks may arrive after the live tail's later ones
        let sorted = true;
        for (const [o, ms] of marks || []) {
          if (offs.length && o <= offs[offs.length - 1]) sorted = false;
          offs.push(o); times.push(ms);
        }
        if (sorted) return;
        const byOffset = new Map(offs.map((o, i) => [o, times[i]]));
        offs = [...byOffset.keys()].sort((x, y) => x - y);
        times = offs.map((o) => byOffset.get(o));
      },
      at(offset) {
        let lo = 0, hi = offs.length - 1, found = -1;
        while (lo <= hi) { const mid = (lo + hi) >> 1; if (offs[mid] <= offset) { found = mid; lo = mid + 1; } else hi = mid - 1; }
        return found < 0 ? null : times[found];
      },
    };
  }

  function logViewer(pre) {
    const size = Number(pre.dataset.size);
    const complete = pre.dataset.complete === "true";
    const stepStart = Date.parse(pre.dataset.started || "");
    const state = { cls: [] };
    let start = 0, end = 0, partial = "", partialAt = 0, matches = [], current = -1;
    const follow = $("#log-follow"), older = $("#log-older"), newer = $("#log-newer");
    const times = timeline(), encoder = new TextEncoder();
    let queue = [], painting = false, offsets = [], page = 0; // offsets: of pre's lines, in order
    let last = { ms: null }; // lines of one read share a time: format it once

    function stamp(el, offset) { // an empty span: the times are CSS content, out of copy and search
      const ms = times.at(offset);
      if (ms === null || (el.firstChild && el.firstChild.className === "ts")) return;
      if (ms !== last.ms) {
        last = { ms, c: clockTime(ms), e: Number.isNaN(stepStart) ? "" : elapsedTime(ms - stepStart),
                 title: new Date(ms).toISOString() };
      }
      const ts = document.createElement("span");
      ts.className = "ts";
      ts.dataset.c = last.c;
      ts.dataset.e = last.e;
      ts.title = last.title;
      el.prepend(ts);
    }

    function lineEl([text, offset]) {
      const cut = text.lastIndexOf("\r", text.length - 2); // a progress bar: keep what was shown last
      const el = document.createElement("span");
      el.className = "l";
      el.innerHTML = ansiToHtml(cut >= 0 ? text.slice(cut + 1) : text, state) + "\n";
      stamp(el, offset);
      return el;
    }

    function append(lines) { // [text, byte offset] pairs; batched: one DOM update per animation frame
      queue.push(...lines);
      if (painting) return;
      painting = true;
      requestAnimationFrame(() => {
        const frag = document.createDocumentFragment();
        for (const l of queue) { frag.appendChild(lineEl(l)); offsets.push(l[1]); }
        queue = []; painting = false;
        pre.appendChild(frag);
        if (follow && follow.checked) pre.lastElementChild && pre.lastElementChild.scrollIntoView({ block: "end" });
        search();
      });
    }

    async function load(from, to) {
      // The times are fetched beside the bytes but never waited for: the text shows first, the
      // time column fills in when they arrive.
      const marks = fetch(`${pre.dataset.times}?offset=${from}&limit=${to - from}`)
        .then((r) => (r.ok ? r.json() : { times: [] })).catch(() => ({ times: [] }));
      const resp = await fetch(pre.dataset.raw, { headers: { Range: `bytes=${from}-${to - 1}` } });
      const bytes = new Uint8Array(await resp.arrayBuffer());
      let a = 0, b = bytes.length;
      if (from > 0) { a = bytes.indexOf(10) + 1; } // start at a whole line
      if (to < size) { const nl = bytes.lastIndexOf(10); if (nl >= a) b = nl + 1; }
      start = from + a; end = from + b;
      times.reset();
      const mine = ++page;
      marks.then((m) => {
        if (mine !== page || !m.times.length) return; // another part is shown by now
        times.add(m.times);
        const kids = pre.children;
        for (let i = 0; i < kids.length; i++) stamp(kids[i], offsets[i]);
      });
      const starts = [start]; // byte offset of each line (UTF-8 decoding keeps every newline)
      for (let i = bytes.indexOf(10, a); i >= 0 && i < b; i = bytes.indexOf(10, i + 1)) starts.push(from + i + 1);
      return [new TextDecoder().decode(bytes.subarray(a, b)), starts];
    }

    function show([text, starts]) {
      pre.textContent = "";
      offsets = [];
      pre.classList.toggle("nonum", start > 0);
      const lines = text.split("\n").map((l, i) => [l, starts[i]]);
      [partial, partialAt] = lines.pop();
      append(lines);
      older.hidden = start === 0;
      newer.hidden = end >= size;
      $("#log-size").textContent = size < 1048576 ? `${(size / 1024).toFixed(1)} KiB` : `${(size / 1048576).toFixed(1)} MiB`;
    }

    function followFrom(offset) {
      const es = new EventSource(`${pre.dataset.follow}?offset=${offset}`);
      es.onmessage = (e) => {
        const doc = JSON.parse(e.data);
        times.add(doc.times);
        const pieces = doc.text.split("\n");
        const lines = [[partial + pieces[0], partial ? partialAt : doc.offset]];
        let at = doc.offset;
        for (let i = 1; i < pieces.length; i++) {
          at += encoder.encode(pieces[i - 1]).length + 1;
          lines.push([pieces[i], at]);
        }
        [partial, partialAt] = lines.pop();
        if (doc.eof && partial) { lines.push([partial, partialAt]); partial = ""; }
        if (lines.length) append(lines);
      };
      es.addEventListener("eof", () => es.close());
    }

    function search() {
      const q = $("#log-search").value;
      for (const el of matches) el.classList.remove("hit", "cur");
      matches = [];
      if (!q) { $("#log-matches").textContent = ""; return; }
      let re;
      try { re = q.length > 2 && q.startsWith("/") && q.endsWith("/") ? new RegExp(q.slice(1, -1), "i") : null; } catch (e) { re = null; }
      const needle = q.toLowerCase();
      for (const el of pre.children) {
        const t = el.textContent;
        if (re ? re.test(t) : t.toLowerCase().includes(needle)) { el.classList.add("hit"); matches.push(el); }
      }
      $("#log-matches").textContent = `${matches.length} match${matches.length === 1 ? "" : "es"}`;
    }

    function next() {
      if (!matches.length) return;
      if (current >= 0 && matches[current]) matches[current].classList.remove("cur");
      current = (current + 1) % matches.length;
      matches[current].classList.add("cur");
      if (follow) follow.checked = false;
      matches[current].scrollIntoView({ block: "center" });
    }

    function firstError() {
      const el = Array.from(pre.children).find((l) => ERROR_RE.test(l.textContent));
      if (!el) { $("#log-matches").textContent = "no error in the loaded part"; return; }
      el.classList.add("err");
      if (follow) follow.checked = false;
      el.scrollIntoView({ block: "center" });
    }

    let timer = 0;
    $("#log-search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => { current = -1; search(); }, 150); });
    $("#log-search").addEventListener("keydown", (e) => { if (e.key === "Enter") next(); });
    $("#log-next").addEventListener("click", next);
    $("#log-error").addEventListener("click", firstError);
    $("#log-wrap").addEventListener("change", (e) => pre.classList.toggle("wrap", e.target.checked));
    const timesMode = $("#log-times");
    const showTimes = () => {
      pre.classList.toggle("t-clock", timesMode.value === "clock");
      pre.classList.toggle("t-elapsed", timesMode.value === "elapsed");
    };
    timesMode.value = localStorage.getItem("gantry.logTimes") || "clock";
    showTimes();
    timesMode.addEventListener("change", () => { localStorage.setItem("gantry.logTimes", timesMode.value); showTimes(); });
    older.addEventListener("click", async () => show(await load(Math.max(0, start - WINDOW), start)));
    newer.addEventListener("click", async () => show(await load(end, Math.min(size, end + WINDOW))));
    document.addEventListener("keydown", (e) => {
      if (/INPUT|TEXTAREA|SELECT/.test(document.activeElement.tagName)) return;
      if (e.key === "/") { e.preventDefault(); $("#log-search").focus(); }
      else if (e.key === "n") next();
      else if (e.key === "e") firstError();
    });

    (async () => {
      if (complete || size <= WINDOW) {
        show(size ? await load(0, Math.min(size, WINDOW)) : ["", [0]]);
        if (!complete) followFrom(end);
        else if (partial) { append([[partial, partialAt]]); partial = ""; }
      } else { // running and long: its tail, then follow
        show(await load(Math.max(0, size - WINDOW), size));
        followFrom(end);
      }
      pre.dataset.ready = "1";
    })();
  }

  // --- start ---------------------------------------------------------------------------------
  // A page streamed in two parts sent its head before its result was known.
  if ($("#live")) setFavicon($("#live").dataset.favicon);
  relativeTimes(document);
  setInterval(() => relativeTimes(document), 30000);
  // After the first paint (which rendered only what is near the screen), everything: see .shown in
  // style.css.
  requestAnimationFrame(() => setTimeout(() => document.documentElement.classList.add("shown")));
  connect();
  const pre = $("#log");
  if (pre) logViewer(pre);
})();
