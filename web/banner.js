/*! optout-bridge banner.js | Apache-2.0 | one script tag, no dependencies */
/*
 * Embed:
 *   <script src="/banner.js" data-api="https://privacy.example.com" data-webform="/privacy.html"
 *           data-purposes="sale,share,targeted_advertising,profiling"
 *           data-link-text="Your Privacy Choices"></script>
 *
 * What it does, in order:
 *  1. defines window.__gpp (IAB GPP CMP API 1.1, usnat section) and window.__uspapi at once,
 *     so tags that ask early get "not ready" instead of nothing;
 *  2. gives the browser a first-party random device id (cookie optout_device_id);
 *  3. reads the effective state of that device (GET /v1/consent/{id}), which includes opt-outs
 *     made on other browsers or through the webform once identity resolution linked them;
 *  4. only then activates gated tags (<script type="text/plain" data-purpose="...">) whose
 *     purposes are allowed;
 *  5. honours Global Privacy Control without a click: posts it once per session and shows
 *     "Opt-Out Request Honored" when the API confirms it;
 *  6. shows the banner (first visit) or the "Your Privacy Choices" button with per-purpose
 *     toggles beside a single "Opt out of all".
 */
(() => {
  "use strict";
  const w = window;
  const d = document;
  if (w.optoutBridge) return; // loaded twice: the first copy owns the page

  const PURPOSES = ["sale", "share", "targeted_advertising", "profiling"];
  // GPC is an opt-out of sale and sharing (CCPA §7025) and of targeted advertising (state
  // universal opt-out mechanisms), not of profiling: the same rule as the API's.
  const GPC_PURPOSES = PURPOSES.slice(0, 3);
  const LABELS = {
    sale: "Sale of my personal information",
    share: "Sharing for cross-context behavioral advertising",
    targeted_advertising: "Targeted advertising",
    profiling: "Profiling",
  };
  const COOKIE = "optout_device_id";
  const PENDING = "optout_pending"; // localStorage: choices made here, until the API has them
  const GPC_POSTED = "optout_gpc_posted"; // sessionStorage: this session's GPC was honoured
  const YEAR_AND_A_MONTH = 396 * 864e2; // 13 months in seconds (cookie Max-Age)
  const PENDING_MS = 6e5; // stop trusting a pending choice the API never confirmed after 10 min

  const tag = d.currentScript || {};
  const data = tag.dataset || {};
  const API = (data.api || "").replace(/\/+$/, ""); // default: same origin
  const shown = (data.purposes || PURPOSES.join()).split(/[\s,]+/).filter((p) => LABELS[p]);
  // Configuration ends up in markup: keep it text.
  const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const linkText = esc(data.linkText || "Your Privacy Choices");
  const secure = location.protocol === "https:";

  // -- storage helpers (storage may be blocked: the banner must still work) -----------------
  const store = (area, key, value) => {
    try {
      const s = w[area];
      if (value === undefined) return JSON.parse(s.getItem(key));
      if (value === null) s.removeItem(key);
      else s.setItem(key, JSON.stringify(value));
    } catch {
      return null;
    }
  };
  const setCookie = (name, value) => {
    d.cookie = `${name}=${value}; Path=/; Max-Age=${YEAR_AND_A_MONTH}; SameSite=Lax${secure ? "; Secure" : ""}`;
  };
  const readCookie = (name) => (d.cookie.match(`(?:^|; )${name}=([^;]*)`) || [])[1];

  const deviceId = (() => {
    let id = readCookie(COOKIE);
    if (!/^[\w-]{16,64}$/.test(id || "")) {
      const bytes = crypto.getRandomValues(new Uint8Array(16));
      id = btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=/g, "");
    }
    setCookie(COOKIE, id); // re-set on every visit: the 13 months run from the last visit
    return id;
  })();

  // -- state ------------------------------------------------------------------------------
  const state = {
    known: false, // the API answered: until then nothing gated runs
    gpc: navigator.globalPrivacyControl === true,
    gpcHonored: false,
    failed: false, // the API did not answer: show the choices button, run no gated tag
    decided: !!store("localStorage", "optout_decided"), // a choice exists: no first-visit banner
    server: {},
    updatedAt: null,
  };
  let pending = store("localStorage", PENDING);

  const optedOut = (p) => {
    if (state.gpc && GPC_PURPOSES.includes(p)) return true;
    if (pending && p in pending.choices) return pending.choices[p];
    return !!state.server[p];
  };
  const effective = () => Object.fromEntries(PURPOSES.map((p) => [p, optedOut(p)]));

  // -- signals for ad tech: IAB GPP (usnat) and the legacy US Privacy string ----------------
  const uspString = () => `1Y${optedOut("sale") || optedOut("share") ? "Y" : "N"}N`;

  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const int = (value, width) => value.toString(2).padStart(width, "0");
  // GPP base64url: pad the bit string to a whole byte, then to a whole sextet, 6 bits a char.
  const b64 = (bits) => {
    while (bits.length % 8) bits += "0";
    while (bits.length % 6) bits += "0";
    return bits.replace(/.{6}/g, (s) => B64[parseInt(s, 2)]);
  };
  // usnat (section 7, version 2) fields, in the order the IAB spec encodes them.
  const usnatFields = () => {
    const choice = (p) => (optedOut(p) ? 1 : 2); // 1 opted out, 2 did not opt out
    return {
      Version: 2,
      SharingNotice: 1, // 1 = notice given (the banner and the privacy page give it)
      SaleOptOutNotice: 1,
      SharingOptOutNotice: 1,
      TargetedAdvertisingOptOutNotice: 1,
      SensitiveDataProcessingOptOutNotice: 0, // 0 = not applicable: no sensitive data here
      SensitiveDataLimitUseNotice: 0,
      SaleOptOut: choice("sale"),
      SharingOptOut: choice("share"),
      TargetedAdvertisingOptOut: choice("targeted_advertising"),
      SensitiveDataProcessing: Array(16).fill(0),
      KnownChildSensitiveDataConsents: [0, 0, 0],
      PersonalDataConsents: 0,
      MspaCoveredTransaction: 2, // 2 = no: the site has not signed the IAB MSPA
      MspaOptOutOptionMode: 0,
      MspaServiceProviderMode: 0,
      GpcSegmentType: 1,
      Gpc: state.gpc,
    };
  };
  const gppString = () => {
    const f = usnatFields();
    const core =
      int(f.Version, 6) +
      [
        f.SharingNotice, f.SaleOptOutNotice, f.SharingOptOutNotice,
        f.TargetedAdvertisingOptOutNotice, f.SensitiveDataProcessingOptOutNotice,
        f.SensitiveDataLimitUseNotice, f.SaleOptOut, f.SharingOptOut,
        f.TargetedAdvertisingOptOut, ...f.SensitiveDataProcessing,
        ...f.KnownChildSensitiveDataConsents, f.PersonalDataConsents,
        f.MspaCoveredTransaction, f.MspaOptOutOptionMode, f.MspaServiceProviderMode,
      ].map((v) => int(v, 2)).join("");
    // "DBABLA" is the GPP header (type 3, version 1) listing section id 7 only.
    return `DBABLA~${b64(core)}.${b64(int(f.GpcSegmentType, 2) + (f.Gpc ? 1 : 0))}`;
  };

  let displayStatus = "hidden";
  const listeners = new Map();
  let nextListener = 1;
  const ping = () => ({
    gppVersion: "1.1",
    cmpStatus: "loaded",
    cmpDisplayStatus: displayStatus,
    signalStatus: state.known ? "ready" : "not ready",
    supportedAPIs: ["7:usnat"],
    cmpId: 0, // not a registered IAB CMP
    sectionList: [7],
    applicableSections: [7],
    gppString: gppString(),
    parsedSections: { usnat: usnatFields() },
  });
  const fire = (eventName, value) =>
    listeners.forEach((cb, listenerId) => cb({ eventName, listenerId, data: value, pingData: ping() }, true));

  const earlyCalls = (w.__gpp && w.__gpp.queue) || []; // from an IAB stub, if the page has one
  w.__gpp = (command, callback, parameter) => {
    const answer = (value, ok = value !== null) => callback && callback(value, ok);
    if (command === "ping") return answer(ping());
    if (command === "addEventListener") {
      const id = nextListener++;
      listeners.set(id, callback);
      return answer({ eventName: "listenerRegistered", listenerId: id, data: true, pingData: ping() });
    }
    if (command === "removeEventListener") {
      const removed = listeners.delete(parameter);
      return answer({ eventName: "listenerRemoved", listenerId: parameter, data: removed, pingData: ping() });
    }
    if (command === "hasSection") return answer(parameter === "usnat");
    if (command === "getSection") return answer(parameter === "usnat" ? usnatFields() : null);
    answer(null);
  };
  earlyCalls.forEach((args) => w.__gpp(...args));

  const uspWaiting = []; // US Privacy has no "not ready": hold answers until the state is known
  w.__uspapi = (command, version, callback) => {
    if (command !== "getUSPData" || version !== 1) return callback && callback(null, false);
    const reply = () => callback({ version: 1, uspString: uspString() }, true);
    state.known ? reply() : uspWaiting.push(reply);
  };

  // Ad tags inside iframes reach the APIs through postMessage and these locator frames.
  w.addEventListener("message", (event) => {
    let msg = event.data;
    if (typeof msg === "string") {
      try {
        msg = JSON.parse(msg);
      } catch {
        return;
      }
    }
    const gpp = msg && msg.__gppCall;
    const usp = msg && msg.__uspapiCall;
    const back = (key, call) => (returnValue, success) =>
      event.source && event.source.postMessage({ [key]: { returnValue, success, callId: call.callId } }, "*");
    if (gpp) w.__gpp(gpp.command, back("__gppReturn", gpp), gpp.parameter);
    if (usp) w.__uspapi(usp.command, usp.version, back("__uspapiReturn", usp));
  });

  // Every change of state goes through here: signals first, then tags, then the UI.
  const changed = (mutate) => {
    if (state.known) fire("signalStatus", "not ready");
    mutate();
    if (pending) store("localStorage", PENDING, pending);
    setCookie("usprivacy", uspString());
    if (state.known) {
      fire("sectionChange", "usnat");
      fire("signalStatus", "ready");
      uspWaiting.splice(0).forEach((reply) => reply());
      activateTags();
    }
    render();
  };

  // -- tag gating -------------------------------------------------------------------------
  // A gated tag runs only when every purpose it names is known and not opted out.
  const activateTags = () => {
    if (!state.known) return;
    d.querySelectorAll('script[type="text/plain"][data-purpose]').forEach((inert) => {
      const purposes = inert.dataset.purpose.split(/[\s,]+/);
      if (purposes.some((p) => !PURPOSES.includes(p) || optedOut(p))) return;
      const live = d.createElement("script");
      for (const { name, value } of inert.attributes) if (name !== "type") live.setAttribute(name, value);
      if (inert.dataset.type) live.type = inert.dataset.type;
      live.async = false; // keep document order among activated tags with src
      live.text = inert.text;
      inert.replaceWith(live);
    });
  };
  // Tags parsed after this script (or added later) are activated as they arrive.
  new MutationObserver(activateTags).observe(d.documentElement, { childList: true, subtree: true });

  // -- talking to the API -----------------------------------------------------------------
  const post = async (extra) => {
    const body = { device_id: deviceId, opt_out: {}, page_url: location.origin + location.pathname, ...extra };
    if (state.gpc) body.gpc = true;
    const res = await fetch(`${API}/v1/consent`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`consent not recorded: HTTP ${res.status}`);
    const answer = await res.json();
    if (answer.gpc_honored) changed(() => (state.gpcHonored = true));
    return answer;
  };

  // Applies choices on this browser at once; the API learns them from the caller's own post.
  const remember = (choices) =>
    changed(() => {
      pending = { choices, at: Date.now() };
      state.decided = true;
      store("localStorage", "optout_decided", 1);
      panelOpen = false;
    });
  const choose = (choices) => {
    remember(choices);
    return post({ opt_out: choices }).catch((error) => {
      console.warn("optout-bridge:", error.message); // the choice still applies on this browser
    });
  };

  const load = async () => {
    let answer = null;
    try {
      const res = await fetch(`${API}/v1/consent/${deviceId}`, { signal: AbortSignal.timeout(8e3) });
      if (res.ok) answer = await res.json();
    } catch {
      // fall through: with no answer, gated tags stay off (fail closed)
    }
    if (!answer) {
      console.warn("optout-bridge: consent state unavailable; gated tags stay off");
      return changed(() => (state.failed = true));
    }
    changed(() => {
      state.known = true;
      state.server = answer.opt_out || {};
      state.updatedAt = answer.updated_at;
      // The API answered gpc_honored to this session's post, or its state already says so.
      const postedThisSession = store("sessionStorage", GPC_POSTED) === deviceId;
      state.gpcHonored = state.gpc && (postedThisSession || !!answer.gpc_honored);
      state.decided = state.decided || !!answer.updated_at || !!pending || state.gpc;
      // Choices made here win until the API's state is as new as they are (the resolver
      // works asynchronously, so a reload right after a click may still read the old state).
      const caughtUp = pending && Date.parse(answer.updated_at || 0) >= pending.at;
      if (caughtUp || (pending && Date.now() - pending.at > PENDING_MS)) pending = null;
      if (!pending) store("localStorage", PENDING, null);
    });
  };

  // -- UI: first-visit banner, the choices panel, the persistent button -------------------
  let root = null;
  let panelOpen = false;
  let lastView = "";
  const CSS = `:host{all:initial}*{box-sizing:border-box;font:14px/1.45 system-ui,sans-serif;color:#1d2433}
.box{position:fixed;z-index:2147483000;right:16px;bottom:16px;max-width:min(480px,calc(100vw - 32px));background:#fff;border:1px solid #d5dbe5;border-radius:12px;box-shadow:0 8px 28px #0002;padding:16px}
.pill{padding:6px 10px;display:flex;gap:8px;align-items:center;border-radius:999px}
h2{font-size:16px;font-weight:600;margin:0 0 6px}p{margin:0 0 12px}
.row{display:flex;flex-wrap:wrap;gap:8px}
button{cursor:pointer;border:1px solid #1f4fd1;border-radius:8px;padding:8px 14px;background:#fff;color:#1f4fd1;font-weight:600}
button.main{background:#1f4fd1;color:#fff}button.link{border:0;padding:2px 4px;display:inline-flex;gap:6px;align-items:center;white-space:nowrap}
button:focus-visible,input:focus-visible,a:focus-visible{outline:3px solid #f5a623;outline-offset:2px}
label{display:flex;gap:8px;align-items:flex-start;margin:0 0 8px}input{width:18px;height:18px;margin:1px 0 0}
.ok{color:#0a7a3d;font-weight:600}small,small a{font-size:12px;color:#5b6475}`;
  const ICON =
    '<svg width="30" height="14" viewBox="0 0 30 14" aria-hidden="true"><rect x=".5" y=".5" width="29" height="13" rx="6.5" fill="#fff" stroke="#1f4fd1"/><path d="M14 .5h9a6.5 6.5 0 0 1 0 13h-12z" fill="#1f4fd1"/><path d="M5 7.2l2 2 3.5-4M19.5 4.5l5 5m0-5l-5 5" stroke-width="1.6" fill="none" stroke="#1f4fd1"/><path d="M19.5 4.5l5 5m0-5l-5 5" stroke="#fff" stroke-width="1.6"/></svg>';

  const SHORT = { sale: "sale", share: "sharing", targeted_advertising: "targeted ads", profiling: "profiling" };
  const statusText = () => {
    if (state.gpc && state.gpcHonored) return "Opt-Out Request Honored";
    const out = PURPOSES.filter(optedOut);
    if (!out.length) return "";
    return out.length === PURPOSES.length ? "Opted out" : `Opted out of ${out.map((p) => SHORT[p]).join(", ")}`;
  };

  const render = () => {
    if (!root || !(state.known || state.failed)) return; // no flash of UI before the state
    const status = statusText();
    const view = panelOpen ? "panel" : state.known && !state.decided ? "ask" : "pill";
    // Never redraw the panel under the user's hands: toggles they changed would be lost.
    if (view === "panel" && lastView === "panel") return;
    const webform = data.webform
      ? `<small><a href="${esc(data.webform)}">Opt out by email, phone or customer ID</a></small>`
      : "";
    const gpcNote = state.gpc
      ? `<p class="ok" data-optout-gpc>${state.gpcHonored ? "Opt-Out Request Honored" : "Global Privacy Control detected"}</p><p>Your browser's Global Privacy Control signal opts you out of sale, sharing and targeted advertising.</p>`
      : "";
    let html;
    if (view === "ask") {
      html = `<div class="box" role="region" aria-label="Privacy choices"><h2>Your privacy choices</h2>
<p>We and our partners use data about your visit for advertising. You can opt out of the sale or sharing of your personal information and of targeted advertising.</p>
<div class="row"><button data-act="all">Opt out of all</button><button data-act="none">Allow</button><button data-act="open">Choose</button></div></div>`;
    } else if (view === "panel") {
      const toggles = shown
        .map((p) => {
          const locked = state.gpc && GPC_PURPOSES.includes(p);
          return `<label><input type="checkbox" name="${p}"${optedOut(p) ? " checked" : ""}${locked ? " disabled" : ""}> Opt out: ${LABELS[p]}</label>`;
        })
        .join("");
      html = `<div class="box" role="dialog" aria-modal="false" aria-labelledby="t"><h2 id="t">${linkText}</h2>${gpcNote}
<form>${toggles}<div class="row"><button type="button" class="main" data-act="all">Opt out of all</button><button type="submit">Save choices</button><button type="button" data-act="close">Close</button></div></form>${webform}</div>`;
    } else {
      html = `<div class="box pill"><button class="link" data-act="open" aria-haspopup="dialog">${ICON}${linkText}</button><span role="status" data-optout-status class="${status ? "ok" : ""}">${status}</span></div>`;
    }
    root.innerHTML = `<style>${CSS}</style>${html}`;
    const nextStatus = view === "pill" ? "hidden" : "visible";
    if (nextStatus !== displayStatus) fire("cmpDisplayStatus", (displayStatus = nextStatus));
    // Keyboard users land in the panel when it opens and back on the button when it closes.
    if (view !== lastView && lastView) root.querySelector(view === "panel" ? "input:not([disabled]),button" : "button").focus();
    lastView = view;
  };

  const onClick = (event) => {
    const act = event.target.closest && event.target.closest("[data-act]");
    if (!act) return;
    const all = (value) => Object.fromEntries(PURPOSES.map((p) => [p, value]));
    const action = act.dataset.act;
    if (action === "all") choose(all(true));
    else if (action === "none") choose(all(false));
    else changed(() => (panelOpen = action === "open"));
  };
  const onSubmit = (event) => {
    event.preventDefault();
    const choices = {};
    for (const box of event.target.querySelectorAll("input:not([disabled])")) choices[box.name] = box.checked;
    // Opting back in takes a second, explicit step (CCPA regulations §7028).
    const optingIn = PURPOSES.filter((p) => optedOut(p) && choices[p] === false);
    const question = `Opt back in to ${optingIn.map((p) => SHORT[p]).join(", ")}? We may then sell or share your personal information for it.`;
    if (optingIn.length && !w.confirm(question)) return;
    choose(choices);
  };

  const mount = () => {
    const host = d.createElement("div");
    host.id = "optout-bridge";
    root = host.attachShadow({ mode: "open" });
    root.addEventListener("click", onClick);
    root.addEventListener("submit", onSubmit);
    root.addEventListener("keydown", (e) => e.key === "Escape" && panelOpen && changed(() => (panelOpen = false)));
    d.body.append(host);
    for (const name of ["__gppLocator", "__uspapiLocator"]) {
      const frame = d.createElement("iframe");
      frame.name = name;
      frame.hidden = true;
      frame.title = name;
      d.body.append(frame);
    }
    render();
  };

  // -- public API -------------------------------------------------------------------------
  const ready = load().then(() => {
    // GPC is posted once per browser session, so the API holds the signal as evidence.
    if (state.gpc && store("sessionStorage", GPC_POSTED) !== deviceId) {
      return post({}).then(
        (answer) => answer.gpc_honored && store("sessionStorage", GPC_POSTED, deviceId),
        (error) => console.warn("optout-bridge:", error.message),
      );
    }
  });

  w.optoutBridge = {
    ready,
    /** Links this browser to a known person (e.g. at log-in): opt-outs flow both ways. */
    identify: (identity) => post({ identity }),
    /** The effective state as this page applies it (no personal data). */
    state: () => ({
      deviceId,
      known: state.known,
      gpc: state.gpc,
      gpcHonored: state.gpcHonored,
      optOut: effective(),
      updatedAt: state.updatedAt,
      uspString: uspString(),
      gppString: gppString(),
    }),
    /** Records choices, e.g. {sale: true}; true = opted out. */
    choose,
    /** Applies choices already sent to the API another way (the webform), without a post. */
    remember,
    open: () => changed(() => (panelOpen = true)),
  };

  setCookie("usprivacy", uspString());
  d.readyState === "loading" ? d.addEventListener("DOMContentLoaded", mount) : mount();
})();
