/*! optout-bridge banner.js | Apache-2.0 */
/*
 * One script tag, no dependencies. (The line above is the one the build keeps.)
 * Embed (early in <head>, before any ad or analytics tag; not async/defer):
 *   <script src="/dist/banner.min.js" integrity="sha384-..." crossorigin="anonymous"
 *           data-api="https://privacy.example.com" data-webform="/privacy.html"></script>
 * Every data-* attribute is documented in docs/browser.md.
 *
 * What it does, in order:
 *  1. defines window.__gpp (IAB GPP CMP API 1.1, usnat section) and window.__uspapi at once,
 *     taking over calls and listeners an IAB stub queued, so tags that ask early get
 *     "not ready" instead of nothing;
 *  2. tells Google tags (Consent Mode v2: denied until the state is known) and the Meta pixel
 *     (Limited Data Use) before they run;
 *  3. gives the browser a first-party random device id (cookie __Host-optout_device_id;
 *     optout_device_id on http);
 *  4. reads the effective state of that device (GET /v1/consent/{id}), which includes opt-outs
 *     made on other browsers or through the webform once identity resolution linked them;
 *  5. only then activates gated tags (<script type="text/plain" data-purpose="...">) whose
 *     purposes are allowed, and updates every signal;
 *  6. honours Global Privacy Control without a click: posts it once per session (again on
 *     the page after a failure, with its key, 3 posts at most) and shows "Opt-Out Request
 *     Honored" when the API confirms it;
 *  7. shows the banner (first visit) or the "Your Privacy Choices" button with per-purpose
 *     toggles beside a single "Opt out of all", and a separate "limit the use of my
 *     sensitive personal information" choice (CCPA §7027).
 */
(() => {
  "use strict";
  const w = window;
  const d = document;
  // Loaded twice: the first copy owns the page. Its mark is a registry symbol, not the name
  // `optoutBridge`: a page's own object of that name must not switch the banner off (browser36).
  // An earlier release (before 2026-12-04) marks nothing but its API: one with `remember` and
  // a real Promise as `ready`, beside the `__uspapi` it defined. It ran first and acts (its
  // __gpp, posts and UI cannot be undone), so this copy does nothing and says so (browser37:
  // both ran). A page's stub of the same methods is not one (review37 R2: it switched this
  // banner off); a stub that also makes `ready` a Promise and defines `__uspapi` would.
  const ME = Symbol.for("optout-bridge");
  if (w[ME]) return;
  const old = w.optoutBridge;
  if (old?.remember && old.ready instanceof Promise && w.__uspapi) return console.warn("optout-bridge: an earlier copy runs this page");
  w[ME] = 1;

  // "Do Not Sell or Share" and the states' opt-outs; "Opt out of all" means these four.
  const SALE_SHARE = ["sale", "share", "targeted_advertising", "profiling"];
  const LIMIT = "limit_sensitive"; // a different right (CCPA §7027): its own choice
  const PURPOSES = [...SALE_SHARE, LIMIT];
  // GPC is an opt-out of sale and sharing (CCPA §7025) and of targeted advertising (state
  // universal opt-out mechanisms), not of profiling nor a limit on sensitive data: the same
  // rule as the API's. Ad platform signals follow the same three purposes.
  const ADS = SALE_SHARE.slice(0, 3);
  const LABELS = {
    sale: "Opt out: Sale of my personal information",
    share: "Opt out: Sharing for cross-context behavioral advertising",
    targeted_advertising: "Opt out: Targeted advertising",
    profiling: "Opt out: Profiling",
    limit_sensitive: "Limit the use of my sensitive personal information",
  };
  const SHORT = {
    sale: "sale",
    share: "sharing",
    targeted_advertising: "targeted ads",
    profiling: "profiling",
    limit_sensitive: "use of sensitive data",
  };
  const COOKIE = "optout_device_id"; // also the localStorage key of the same id
  // localStorage: the opt-outs made here (applied at once) and the opt-ins the API
  // acknowledged, over the API's state until it has them; and the outbox of choices the API
  // has not acknowledged yet, oldest first, each with its own Idempotency-Key.
  const PENDING = "optout_local";
  const OUTBOX = "optout_outbox";
  const UNSAVED = "optout_unsaved"; // cookie: the opt-outs of an outbox storage could not keep
  const GPC_POSTED = "optout_gpc_posted"; // sessionStorage: this session's GPC was honoured
  const LINKED = "optout_linked"; // localStorage: the device id an identity token was linked to
  // localStorage: the opt-outs this browser made itself before that first link (a logout keeps them)
  const OWN = "optout_own";
  const MIGRATED = "optout_migrated"; // localStorage: 1 once the earlier banner's ids were read (load)
  const YEAR_AND_A_MONTH = 396 * 864e2; // 13 months in seconds (cookie Max-Age)
  const PENDING_MS = 6e5; // an acknowledged choice overrides the API's state for 10 min at most

  const tag = d.currentScript || {};
  const data = tag.dataset || {};
  const API = (data.api || "").replace(/\/+$/, ""); // default: same origin
  const shown = (data.purposes || PURPOSES.join()).split(/[\s,]+/).filter((p) => LABELS[p]);
  const offersLimit = shown.includes(LIMIT);
  // The signed identity token of a logged-in page: sent with this page's posts, kept in
  // memory only (never a cookie, storage or URL), and taken out of the DOM.
  let token = data.identityToken || null;
  tag.removeAttribute?.("data-identity-token");
  // The first link of this device to a person (the API answered a post with a token). Until
  // the state read after it has the person's opt-outs made elsewhere, `linking` keeps every
  // signal as if the state were unknown: no gated tag, Google and Meta denied, __uspapi and
  // __gpp not ready, no first-visit banner (it would ask a person who opted out to opt in).
  let linked = false;
  let linking = 0;
  // Configuration ends up in markup: keep it text.
  const esc = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const linkText = esc(data.linkText || "Your Privacy Choices");
  const secure = location.protocol === "https:";
  const NAME = (secure ? "__Host-" : "") + COOKIE; // the device cookie's name here (see deviceId)
  const warn = (message) => console.warn("optout-bridge:", message);

  // -- usnat configuration: the business's own statements, checked before any is made ----
  // Field names and values are the IAB MSPA US National section's. Defaults: notices given
  // (this banner gives them), sensitive-data notices given when the limit choice is offered,
  // every sensitive category "no consent" (the most restrictive statement), not an MSPA
  // covered transaction.
  const sensitiveNotice = +offersLimit;
  // In the spec's encoding order; the three choices are the person's, never configured.
  const usnat = {
    Version: 2,
    SharingNotice: 1,
    SaleOptOutNotice: 1,
    SharingOptOutNotice: 1,
    TargetedAdvertisingOptOutNotice: 1,
    SensitiveDataProcessingOptOutNotice: sensitiveNotice,
    SensitiveDataLimitUseNotice: sensitiveNotice,
    SaleOptOut: 0,
    SharingOptOut: 0,
    TargetedAdvertisingOptOut: 0,
    SensitiveDataProcessing: Array(16).fill(sensitiveNotice),
    KnownChildSensitiveDataConsents: [0, 0, 0],
    PersonalDataConsents: 0,
    MspaCoveredTransaction: 2,
    MspaOptOutOptionMode: 0,
    MspaServiceProviderMode: 0,
  };
  const cmpId = +(data.cmpId || 1); // CMP API spec "What is CMP ID?": 1 when not registered
  // CMP API spec, PingReturn.applicableSections: [-1] when no section applies.
  const applicable = data.gppApplicable === "-1" ? [-1] : [7];
  // Names what is impossible in the configuration, or "" (then nothing is).
  const misconfigured = () => {
    let given;
    try {
      given = JSON.parse(data.usnat || "{}");
    } catch {
      return "data-usnat";
    }
    // Each field takes its type's values: Int(2) and N-Bitfield(2,n) entries are 0, 1 or 2.
    const valid = (v, like) =>
      Array.isArray(like) ? Array.isArray(v) && v.length === like.length && v.every((x) => valid(x)) : [0, 1, 2].includes(v);
    for (const key in given) {
      if (!Object.hasOwn(usnat, key) || /OptOut$|^V/.test(key) || !valid(given[key], usnat[key])) return key;
      usnat[key] = given[key];
    }
    const u = usnat;
    if (!(Number.isInteger(cmpId) && cmpId > 0 && cmpId < 4096)) return "data-cmp-id";
    const modes = [u.MspaOptOutOptionMode, u.MspaServiceProviderMode];
    // MspaCoveredTransaction is 1 (yes) or 2 (no). The two MSPA modes exist only "for the
    // Covered Transaction", and one transaction runs in exactly one of them.
    if (!u.MspaCoveredTransaction || (u.MspaCoveredTransaction > 1 ? modes.some(Boolean) : modes.sort() + "" !== "1,2"))
      return "MspaCoveredTransaction";
    // "0 Not Applicable: the Business does not process / use or disclose Sensitive Data"
    // cannot stand beside a processed category or a limit link on this very page.
    const anySensitive = u.SensitiveDataProcessing.some(Boolean);
    if ((anySensitive || offersLimit) && !u.SensitiveDataLimitUseNotice) return "SensitiveDataLimitUseNotice";
    if (anySensitive && !u.SensitiveDataProcessingOptOutNotice) return "SensitiveDataProcessingOptOutNotice";
    return "";
  };
  const configError = misconfigured();
  if (configError) console.error("optout-bridge: impossible", configError); // __gpp: error

  // -- storage helpers (storage may be blocked: the banner must still work) -----------------
  // localStorage unless another area is named; no value: read, null: remove.
  const store = (key, value, area = "localStorage") => {
    try {
      const s = w[area];
      if (value === undefined) return JSON.parse(s.getItem(key));
      if (value === null) s.removeItem(key);
      else s.setItem(key, JSON.stringify(value));
    } catch {
      return null;
    }
  };
  // The device this browser session's GPC was honoured for (sessionStorage); with one, stores it.
  const posted = (id) => store(GPC_POSTED, id, "sessionStorage");
  // document.cookie throws in a document with an opaque origin (a sandboxed frame): the
  // banner then goes on without cookies (a new device on every page), signals defined.
  const cookie = (value) => {
    try {
      return value ? (d.cookie = value) : d.cookie;
    } catch {
      return "";
    }
  };
  const setCookie = (name, value) =>
    cookie(`${name}=${value}; Path=/; Max-Age=${YEAR_AND_A_MONTH}; SameSite=Lax${secure ? "; Secure" : ""}`);
  // A page on a sibling subdomain can add a cookie of the same name (Domain=the parent, a
  // longer Path: listed first), "cookie tossing": a name present twice is read as absent.
  const cookies = (name) => `; ${cookie()}`.split(`; ${name}=`).slice(1).map((v) => v.split(";")[0]);
  const readCookie = (name, [one, two] = cookies(name)) => two == null && one;

  // 128 random bits, as 32 hex characters
  const random = () => [...crypto.getRandomValues(new Uint8Array(16))].map((b) => (b + 256).toString(16).slice(1)).join("");
  const valid = (id) => /^[\w-]{16,64}$/.test(id) && id;
  // On https the id lives in __Host-optout_device_id (Secure, Path=/, no Domain): no other
  // host can set or shadow it. On http (local development) in optout_device_id. A copy in
  // localStorage (this origin's only) outlives a cookie evicted by a sibling's flood of them.
  // Else the id an earlier banner linked to a person (this origin's storage too), else a new one.
  const mine = () => valid(readCookie(NAME)) || valid(store(COOKIE));
  // A device made on this page: another tab restored with it may make its own, which this page
  // takes after its reads (load). Choices an earlier page left unsent wait for that (review s29 banner F2).
  const fresh = !mine();
  let deviceId = mine() || valid(store(LINKED)) || random();
  // The browser's device now: another tab's reset (logout) names a new one, which this tab's
  // posts then use too, so a later user's choice never reaches the account's device.
  const current = () => mine() || deviceId;
  setCookie(NAME, deviceId); // re-set on every visit: the 13 months run from the last visit
  store(COOKIE, deviceId);
  // Migrating from an earlier banner (https): a plain optout_device_id is never taken as the
  // device (a sibling can flood the browser's own out of the jar and plant one), but every
  // value present is read once (each distinct value: a sibling can set one per path) with the
  // first state and what it opted out of is queued here (load): a planted one can only add
  // opt-outs. Ours (host-only, Path=/) then names this device, for an earlier banner's page.
  let olds = secure && store(MIGRATED) != 1 ? [...new Set(cookies(COOKIE))].filter((id) => valid(id) && id != deviceId) : [];

  // -- state ------------------------------------------------------------------------------
  const state = {
    known: false, // the API answered: until then nothing gated runs
    gpc: navigator.globalPrivacyControl === true,
    gpcHonored: false,
    // failed (unset: false): the API did not answer: show the choices button, run no gated tag
    // unsaved (unset: false): the outbox's first choice failed and will be sent again
    decided: !!store("optout_decided"), // a choice exists: no first-visit banner
    server: {},
    updatedAt: null,
  };
  // `pending.r`: the API refused the last choice for good (its own JSON error): said, not
  // hidden, on every page until a choice is acknowledged; its opt-outs keep applying.
  let pending = store(PENDING);
  let outbox = store(OUTBOX) || [];
  // Opt-outs that reach the outbox from elsewhere (this cookie, the earlier banner's ids: see
  // load) are one new entry of their own, unconfirmed: they only add opt-outs.
  const queue = (out) => out[0] && outbox.push({ k: random(), o: Object.fromEntries(out.map((p) => [p, true])) });
  // Opt-outs an earlier page kept in a cookie (storage blocked or full) are queued again, as
  // a new entry (its page is not known). Every copy counts (a sibling's too): opt-outs only add.
  const carried = cookies(UNSAVED).join(".").split(".").filter((p) => PURPOSES.includes(p));
  queue(carried);

  // The most restrictive of GPC, the API's state and the choices made here: an opt-out made
  // here applies at once, an opt-in only once the API's state has it (a linked person's
  // opt-out may keep it from applying: README, "Effective state").
  const gpcOut = (p) => state.gpc && ADS.includes(p);
  const optedOut = (p) => gpcOut(p) || !!state.server[p] || !!pending?.choices[p];
  // An opt-in the API acknowledged that its state does not have (yet).
  const held = (p) => state.known && pending?.choices[p] === false && state.server[p];
  const unapplied = () => PURPOSES.some(held);
  // The person's own choice (what the panel shows, with GPC, and a save posts), not what the
  // page enforces: their latest choice, queued or acknowledged (an opt-in counts once
  // confirmed), else the API's state. A save of another purpose must not re-post an opt-out
  // they withdrew. Without GPC (the browser's setting applies by itself), it is also what a
  // logout keeps. An entry a logout left to the account's device (`d`) is not this browser's.
  const own = (p) => {
    let c = pending?.choices[p];
    for (const q of outbox) if (!q.d && (q.o[p] || (q.c && q.o[p] === false))) c = q.o[p];
    return c ?? state.server[p];
  };
  const apply = (choices, all) => {
    pending ||= { choices: {} };
    for (const p in choices) if (all || choices[p]) pending.choices[p] = choices[p];
  };
  // The local copy is written only when this page changed it: a stale tab must not remove
  // another tab's opt-out (storage events keep tabs in step; see below).
  const savePending = () => store(PENDING, pending);
  // Every queued choice's opt-outs apply, page after page, until the API acknowledged it;
  // not the account's that a logout left to its device (`d`).
  const applyOutbox = () => outbox.forEach((queued) => queued.d || apply(queued.o));
  applyOutbox();
  // Ad platforms are told "opted out" until the state is known (fail closed, like the tags).
  const adsOut = () => !state.known || ADS.some(optedOut);

  // -- signals for ad tech: IAB GPP (usnat) and the legacy US Privacy string ----------------
  // US Privacy String spec: "1---" where US privacy does not apply; the notice character is
  // the sale opt-out notice's (usnat 0 not applicable, 1 given, 2 not: "-", "Y", "N"); the
  // opt-out is "Y" until the state is known (fail closed, as adsOut(): the spec has no
  // "unknown" for it, and __uspapi must answer at once).
  const saleOut = () => optedOut("sale") || optedOut("share");
  const uspString = () =>
    applicable[0] < 0 ? "1---" : `1${"-YN"[usnat.SaleOptOutNotice]}${saleOut() || !state.known ? "Y" : "N"}N`;
  // The cookie is not written before the state is known unless opted out: a value from an
  // earlier page stays until then (it outlives this page; the same rule as Google's and Meta's).
  // Unless it holds no opt-out (none, or an out-of-scope page's "1---", "does not apply"), or
  // the state is not known to be this person's (`failed`: a read that failed, reset(), a first
  // link not arrived): on a page in scope it then says the fail-closed string, as
  // __uspapi does (review s31 R7; review s34 L3: an earlier "1YNN" no longer outlasts a failed read).
  const writeUsp = () =>
    (state.known || state.failed || saleOut() || !/^1.[YN]/.test(readCookie("usprivacy"))) &&
    setCookie("usprivacy", uspString());

  const int = (value, width) => value.toString(2).padStart(width, "0");
  // GPP base64url pads the bits to a whole byte, then to a whole sextet: exactly what
  // unpadded base64 of the bytes gives.
  const b64 = (bits) =>
    btoa(String.fromCharCode(...bits.match(/.{1,8}/g).map((byte) => parseInt(byte.padEnd(8, "0"), 2))))
      .replace(/\+/g, "-")
      .replace(/\//g, "_")
      .replace(/=/g, "");
  // The usnat core segment (section 7, version 2), fields in the order the spec encodes them.
  const core = () => {
    // An opt-out is "0 Not Applicable" unless its notice was given (usnat SaleOptOut etc.).
    // Until the state is known each opt-out is 1 and the limit on (fail closed, as adsOut()).
    const choice = (p, notice) => (usnat[notice] === 1 ? (optedOut(p) || !state.known ? 1 : 2) : 0);
    // A limit withdraws consent for every sensitive category the business processes.
    const limited = optedOut(LIMIT) || !state.known;
    return Object.assign(JSON.parse(JSON.stringify(usnat)), {
      SaleOptOut: choice("sale", "SaleOptOutNotice"),
      SharingOptOut: choice("share", "SharingOptOutNotice"),
      TargetedAdvertisingOptOut: choice("targeted_advertising", "TargetedAdvertisingOptOutNotice"),
      SensitiveDataProcessing: usnat.SensitiveDataProcessing.map((v) => (v && limited ? 1 : v)),
    });
  };
  // CMP API spec, getSection: "an array of objects, where each object represents one
  // sub-section of this section in the order given by the section specification".
  const section = () => [core(), { SubsectionType: 1, Gpc: state.gpc }];
  const gppString = () => {
    const bits = Object.values(core()).map((v, i) => (i ? [].concat(v).map((x) => int(x, 2)).join("") : int(v, 6)));
    // "DBABLA" is the GPP header (type 3, version 1) listing section id 7 only; the GPC
    // sub-section is SubsectionType Int(2) = 1, then Gpc Boolean.
    return `DBABLA~${b64(bits.join(""))}.${b64(`01${+state.gpc}`)}`;
  };
  // getField answers the field names of IAB's reference implementation (@iabgpp/cmpapi),
  // which flattens the GPC sub-section into GpcSegmentType / GpcSegmentIncluded / Gpc.
  const field = (name) => {
    const fields = { ...core(), GpcSegmentType: 1, GpcSegmentIncluded: true, Gpc: state.gpc };
    return Object.hasOwn(fields, name) ? fields[name] : null;
  };

  const st = { cmpStatus: configError ? "error" : "loaded", cmpDisplayStatus: "hidden", signalStatus: "not ready" };
  const listeners = new Map();
  let nextListener = 1000; // ids of listeners a stub registered are kept; ours start here
  const ping = () => {
    const up = !configError;
    return {
      gppVersion: "1.1",
      ...st,
      supportedAPIs: ["7:usnat"],
      cmpId,
      sectionList: up ? [7] : [],
      applicableSections: up ? applicable : [-1],
      gppString: up ? gppString() : "",
      parsedSections: up ? { usnat: section() } : {},
    };
  };
  const fire = (eventName, value, pingData) => {
    // A CMP in error tells its status and the error, nothing else (PingReturn, 'error').
    if (!configError || eventName === "error" || eventName === "cmpStatus")
      listeners.forEach((cb, listenerId) => {
        // One listener's error (or none given) must not cost the others, nor this page's flow.
        try {
          cb({ eventName, listenerId, data: value, pingData: pingData || ping() }, true);
        } catch {}
      });
  };
  // Every status change is announced to listeners (CMP API spec, EventListener events).
  const set = (name, value) => st[name] !== value && fire(name, (st[name] = value));

  // CMP API spec, "How does the CMP provide the API?": __gpp is always a function, answers
  // every generic command at once, and never returns a value.
  const gpp = (command, callback, parameter) => {
    const answer = (value, ok = value !== null) => callback && callback(value, ok);
    if (typeof command !== "string") return answer(null);
    if (command === "ping") return answer(ping());
    if (configError) return answer(null); // spec: an 'error' CMP answers nothing else
    // Without a callback nothing is registered: fire() would throw at it, and every change
    // after (the usprivacy cookie, Google's and Meta's signals, the tags) would stop there.
    if (command === "addEventListener" && callback) {
      // A window gone (a removed frame, a closed popup) hears nothing again: its listeners go.
      listeners.forEach((cb, id) => cb.s?.closed && listeners.delete(id));
      // Calls by postMessage through one frame of this page (its nested frames included: the
      // callback carries it as `t`) keep 50 listeners at most, or an ad could add millions. At
      // 50 the caller's window replaces its own oldest (a frame outlives its documents: an ad
      // slot's next creative, which can never remove the old one's); another window's live
      // listener (the slot's vendor) is never dropped unheard: the caller is refused instead.
      const mine = [...listeners].filter(([, cb]) => callback.t !== undefined && cb.t === callback.t);
      const old = mine[49] && mine.find(([, cb]) => cb.s === callback.s);
      const full = mine[49] && !old;
      if (!full) {
        if (old) listeners.delete(old[0]);
        while (listeners.has(nextListener)) nextListener++;
        listeners.set(nextListener, callback);
      }
      return answer({ eventName: "listenerRegistered", listenerId: full ? 0 : nextListener++, data: !full, pingData: ping() }, !full);
    }
    if (command === "removeEventListener") {
      // The spec's stub and the reference implementation answer an EventListener object.
      // A frame (postMessage: the callback carries its source) removes only the listeners it
      // registered, the page only its own: no frame can silence another party's listener.
      const removed = listeners.get(parameter)?.s === callback?.s && listeners.delete(parameter);
      return answer({ eventName: "listenerRemoved", listenerId: parameter, data: removed, pingData: ping() });
    }
    if (command === "hasSection") return answer(parameter ? parameter === "usnat" : null);
    if (command === "getSection") return answer(parameter === "usnat" ? section() : null);
    if (command === "getField") {
      const [prefix, name, extra] = String(parameter).split(".");
      return answer(prefix === "usnat" && name && extra === undefined ? field(name) : null);
    }
    answer(null);
  };
  // Another script may have made the name read-only (a frozen property, a getter): said once,
  // and the banner goes on (GPC, tags, Google, Meta, the opt-out link; review s31 banner R6).
  const install = (name, api) => {
    try {
      w[name] = api;
    } catch {}
    w[name] == api || warn(`${name} is read-only`);
  };
  // Take over from an IAB stub: its listeners (__gpp.events) keep their ids and hear that
  // the CMP loaded; its queued calls (__gpp.queue) run in the order they were made, also
  // when its __gpp stays (read-only: no one else answers them). An entry that is no call or
  // has no callback (the stub stores one before calling it; gpp() refuses one) is skipped, and
  // so is a queue or events that is no list ([].concat makes it one such entry). CMP API spec,
  // "Example stub code": lists of arrays and of {id, callback, parameter}.
  const stub = w.__gpp || {};
  install("__gpp", gpp);
  for (const item of [].concat(stub.events)) item?.callback && listeners.set(item.id, item.callback);
  fire("cmpStatus", st.cmpStatus);
  if (configError) fire("error", configError);
  // USP API spec: the callback is called "immediately and without any asynchronous logic with
  // whatever information is available": before the state is known that is the fail-closed
  // string. Nothing is held, so no caller's callback runs inside this banner's flow. Defined
  // before the stub's queue is replayed: a queued callback may ask it (review s31 R6).
  const usp = (command, version, callback) => {
    const ok = command === "getUSPData" && version === 1;
    callback?.(ok ? { version: 1, uspString: uspString() } : null, ok);
  };
  install("__uspapi", usp);

  // One caller's callback that throws must not cost the others, nor this banner (review s31 F3).
  for (const args of [].concat(stub.queue))
    try {
      gpp(...args);
    } catch {}
  // The stub's postMessage handler now reaches this __gpp: remove it, or frames get two answers
  // (one that is no function makes removeEventListener throw).
  try {
    w.removeEventListener("message", w.__gpp_msghandler);
  } catch {}

  // Ad tags inside iframes reach the APIs through postMessage and the locator frames; a
  // string message is answered with a string (CMP API spec, "Using postmessage").
  w.addEventListener("message", (event) => {
    let msg = event.data;
    const text = typeof msg === "string";
    try {
      if (text) msg = JSON.parse(msg);
    } catch {
      return;
    }
    const gppCall = msg?.__gppCall;
    const uspCall = msg?.__uspapiCall;
    const back = (key, call) => (returnValue, success) => {
      const reply = { [key]: { returnValue, success, callId: call.callId } };
      event.source?.postMessage(text ? JSON.stringify(reply) : reply, "*");
    };
    const reply = back("__gppReturn", gppCall);
    reply.s = event.source; // whose listener it registers or may remove (null: never the page's)
    // The frame of this page it came through (`parent` is readable across origins); a window
    // that is no frame of this page (an opener) counts as its own top, null as null.
    for (reply.t = event.source; reply.t?.parent != w && reply.t != reply.t?.top; ) reply.t = reply.t.parent;
    if (gppCall) gpp(gppCall.command, reply, gppCall.parameter);
    if (uspCall) usp(uspCall.command, uspCall.version, back("__uspapiReturn", uspCall));
  });

  // The locator frames, as soon as <body> exists (as the CMP API spec's stub does: every 10 ms
  // until then), so a frame that looks for them once at its load finds them.
  const locate = () =>
    d.body
      ? ["__gppLocator", "__uspapiLocator"].forEach((name) => {
          if (w.frames[name]) return; // an IAB stub already made it
          d.body.append(Object.assign(d.createElement("iframe"), { name, hidden: true, title: name }));
        })
      : setTimeout(locate, 10);
  locate();

  // -- Google Consent Mode v2 and Meta Limited Data Use -----------------------------------
  // Google's documented gtag shim: commands are pushed as `arguments` objects.
  function gtag() {
    (w.dataLayer ||= []).push(arguments);
  }
  const googleConsent = () => {
    const ads = adsOut() ? "denied" : "granted";
    const analytics = state.known ? "granted" : "denied";
    return { ad_storage: ads, ad_user_data: ads, ad_personalization: ads, analytics_storage: analytics };
  };
  let sentGoogle = JSON.stringify(googleConsent());
  // Defaults before any Google tag runs (this script comes first); tags wait up to 500 ms
  // for the update that follows the state.
  gtag("consent", "default", { ...googleConsent(), wait_for_update: 500 });
  gtag("set", "restricted_data_processing", adsOut());
  let sentMeta = "";
  const signalAdPlatforms = () => {
    const google = JSON.stringify(googleConsent());
    if (google !== sentGoogle) {
      gtag("consent", "update", googleConsent());
      gtag("set", "restricted_data_processing", adsOut());
      sentGoogle = google;
    }
    const fbq = w.fbq;
    if (typeof fbq !== "function") return;
    const ldu = adsOut() ? [["LDU"], 0, 0] : [[]]; // 0, 0: Meta geolocates the visitor
    const meta = JSON.stringify(ldu);
    if (meta === sentMeta) return;
    // Meta's base code queued fbq('init') and its library has not run yet: put the option
    // first, so the pixel initialises with it (Meta: call it before init).
    // An `arguments` object, as Meta's base code queues a call.
    if (!sentMeta && !fbq.callMethod && fbq.queue) fbq.queue.unshift((function () { return arguments; })("dataProcessingOptions", ...ldu)); // prettier-ignore
    else fbq("dataProcessingOptions", ...ldu);
    sentMeta = meta;
  };

  // Every change of state goes through here, in the order the CMP API spec's event
  // examples give: signalStatus "not ready" first, the display, sectionChange, "ready" last.
  // A change that moves no signal (a choice acknowledged, the state read as it was) is not
  // announced: listeners hear only real changes.
  const changed = (mutate) => {
    const before = ping();
    mutate();
    const moved = gppString() !== before.gppString;
    // "not ready" is announced with the data as it was before the change.
    if ((moved || panelOpen) && st.signalStatus === "ready") {
      st.signalStatus = before.signalStatus = "not ready";
      fire("signalStatus", "not ready", before);
    }
    writeUsp();
    render();
    if (moved) fire("sectionChange", "usnat");
    if (state.known && !panelOpen) set("signalStatus", "ready");
    activateTags();
    signalAdPlatforms();
  };

  // -- tag gating -------------------------------------------------------------------------
  // A gated tag runs only when every purpose it names is known and not opted out.
  const activateTags = () => {
    if (!state.known) return;
    d.querySelectorAll('script[type="text/plain"][data-purpose]').forEach((inert) => {
      const purposes = inert.dataset.purpose.split(/[\s,]+/);
      if (purposes.some((p) => !PURPOSES.includes(p) || optedOut(p))) return;
      // A new script runs. Not a clone: a tag inserted as HTML (innerHTML) is "already started",
      // and a clone keeps that flag, so it never runs. The nonce is copied from the property:
      // a browser under a CSP header hides it from the attribute (it reads "").
      const live = d.createElement("script");
      for (const a of inert.attributes) live.setAttribute(a.name, a.value);
      live.type = inert.dataset.type || ""; // "": JavaScript
      live.nonce = inert.nonce; // after the attributes: the nonce attribute copied is ""
      live.text = inert.text;
      live.async = false; // keep document order among activated tags with src
      inert.replaceWith(live);
    });
  };
  // Tags parsed after this script (or added later) are activated as they arrive; a Meta base
  // code that just ran is given its data processing option before its library loads.
  new MutationObserver(() => {
    activateTags();
    signalAdPlatforms();
  }).observe(d.documentElement, { childList: true, subtree: true });

  // -- talking to the API -----------------------------------------------------------------
  // The API refuses a page_url over 2048 characters, and the whole choice with it.
  // A path segment holding an @ is often an email (/account/jane@example.com): never stored
  // in the outbox, as the API's evidence never keeps it either.
  const page = () =>
    (location.origin + location.pathname.split("/").map((s) => (/@|%40/i.test(s) ? "(redacted)" : s)).join("/")).slice(0, 2048);
  const post = async (extra, key = random(), id = current()) => {
    const body = { device_id: id, opt_out: {}, page_url: page(), ...extra };
    if (state.gpc) body.gpc = true;
    // The token is bound to this browser's device: never on a post for the device a logout
    // left (the API would refuse it, and the banner drop it, unlinked: review s31 R2).
    if (token && id == current()) body.identity_token = token;
    const res = await fetch(`${API}/v1/consent`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Idempotency-Key": key },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(2e4),
      referrerPolicy: "no-referrer", // the page's path and query are not the API's (browser37)
    });
    const answer = Object(await res.json().catch(Object)); // any body: an object to read
    // `api`: the API's own refusal ({"error": ...}), not a firewall's, CDN's or proxy's page.
    // Its refusal of the token (expired, used) is final: the token is dropped, never sent again.
    const api = !res.ok && answer.error;
    if (api?.field === "identity_token") token = null;
    // A 2xx is the API's only with its answer's fields (ConsentOut): an HTML page or other JSON
    // (a CDN's or service worker's fallback, a stub) saved nothing, and is retried like a 5xx.
    if (!(res.ok && typeof answer.request_id == "string" && answer.opt_out?.constructor == Object))
      throw Object.assign(Error(`HTTP ${res.status}`), { status: res.status, api, after: res.headers.get("Retry-After") });
    // A token makes one request (the API refuses it again): the link is made, unless a reset
    // (logout) named a new device while it was sent. The first link keeps the opt-outs the
    // browser made itself until then: they stay its own at a logout (review s31 R3). The stored
    // link says if it is the first: another tab's may have landed (review s31 reset2 S3).
    if (body.identity_token && id == current())
      store(LINKED) == id || store(OWN, PURPOSES.filter(own)), store(LINKED, id), (token = null), (linked = true);
    if (answer.gpc_honored) changed(() => (state.gpcHonored = true));
    return answer;
  };

  // The outbox is sent one choice at a time, in order (the API applies the one that arrives
  // last), again on every page load and with back-off while the page is open, until a 2xx.
  // The stored copy is the one every tab shares: it is read again before each send and each
  // new choice (an entry another tab completed or superseded is not sent again), and written
  // only when this page changes it. `shared` is false once a write failed (storage blocked or
  // full): the copy in memory is then the only one.
  let shared = true;
  const retryable = (status, api) => !api || status === 403 || status === 408 || status === 429 || status > 499;
  const saveOutbox = () => {
    shared = store(OUTBOX, outbox) !== null && shared; // null: the write failed
    // Storage blocked or full: the queued opt-outs go on in a cookie, so the next page still
    // applies and sends them (as one new entry).
    if (!shared) setCookie(UNSAVED, PURPOSES.filter((p) => outbox.some((queued) => queued.o[p])).join("."));
  };
  const reread = () => shared && (outbox = store(OUTBOX) || []);
  let sending = false;
  let backoff = 1e3;
  let timer;
  const flush = async () => {
    if (sending) return;
    reread();
    const entry = outbox[0];
    if (!entry) return;
    sending = true;
    // Sent once: never merged into nor given a new key (its first try may still land).
    entry.s = 1;
    // `d`: the device a reset (logout) left it to, the account's: sent there, never here.
    const id = entry.d || current();
    saveOutbox();
    let retry, code;
    let answer = {};
    try {
      answer = await post({ opt_out: entry.o, page_url: entry.u, ...(entry.c && { confirm_opt_in: true }) }, entry.k, id);
    } catch ({ message, status, api }) {
      warn(message);
      code = status;
      // An expired identity token must not cost the device its choice: sent again at once
      // without it (the link to the person waits for the next identify). Only the API's own
      // refusal (a 4xx with its JSON error) is final; anything else is retried with back-off:
      // 408, 429, 5xx, a 4xx page from a firewall, CDN or proxy, network, CORS, timeouts, and
      // a 403 (the edge's origin secret while it rotates is the API's own, for minutes).
      retry = api?.field === "identity_token" ? 0 : retryable(status, api);
    }
    sending = false;
    if (retry === 0) return flush();
    changed(() => {
      if (retry) return (state.unsaved = true);
      reread();
      const ours = !shared || outbox.some((queued) => queued.k === entry.k);
      outbox = outbox.filter((queued) => queued.k !== entry.k);
      saveOutbox();
      // Another tab completed this entry already and wrote the local copy since (perhaps a
      // newer choice's refusal): a late answer here must not overwrite it. Nor is an answer
      // for another device (the account's, after a reset) applied here.
      if (!ours || id != current()) return (state.unsaved &&= !!outbox.length);
      // What the API recorded (an unconfirmed opt-in is left out of its answer); opt-outs
      // still queued keep applying over it. A refusal (a 409 on our own random key is an
      // earlier try that was stored) keeps the choice's opt-outs, with no time limit.
      apply(answer.opt_out, true);
      applyOutbox();
      // `i`: when an opt-in was last acknowledged, what the held note is judged on (an
      // acknowledged opt-out of another purpose leaves it: the note keeps its reason).
      pending.at = Date.now();
      if (entry.c) pending.i = pending.at;
      pending.r = retry === false && code !== 409;
      savePending();
      state.unsaved = false;
      backoff = 1e3;
    });
    clearTimeout(timer);
    if (retry) timer = setTimeout(flush, (backoff = Math.min(backoff * 2, 3e5)));
    else flush();
  };
  w.addEventListener("online", flush);
  // Another tab changed the shared copies: this tab follows them (and so never sends an entry
  // the other tab completed or superseded, nor writes back a copy older than theirs).
  // A page back from the back-forward cache heard none of them while it was frozen. A local
  // copy another tab removed (its newer read of the API's state has it) is kept here: this
  // page's read may be older.
  // Read inside changed(): listeners hear sectionChange when the other tab's change moves the
  // string (a webform opt-out there).
  const follow = () =>
    changed(() => {
      pending = store(PENDING) || pending;
      reread();
      applyOutbox();
      state.decided ||= !!store("optout_decided"); // no first-visit banner left
      state.unsaved &&= !!outbox.length;
    });
  w.addEventListener("storage", ({ key }) => (key === OUTBOX || key === PENDING) && follow());
  w.addEventListener("pageshow", (event) => event.persisted && follow());

  // Applies choices on this browser (opt-outs at once); the API learns them from the
  // caller's own post (the webform).
  const remember = (choices) =>
    changed(() => {
      apply(choices);
      pending.at = Date.now();
      savePending();
      state.decided = true;
      store("optout_decided", 1);
      panelOpen = false;
    });
  // `confirmed`: the person confirmed an opt-in a second time (CCPA regulations §7028).
  const choose = (choices, confirmed) => {
    reread();
    const last = outbox[outbox.length - 1];
    // A newer choice replaces an older one never sent (with a new key: the body changed).
    if (last && !last.s && !last.c === !confirmed) {
      // An unconfirmed choice only adds opt-outs to it, as the API would read it (an
      // unconfirmed "allow", such as a stale tab's first-visit banner, lifts nothing).
      for (const p in choices) last.o[p] = confirmed ? choices[p] : last.o[p] || choices[p];
      last.k = random();
    } else outbox.push({ k: random(), o: { ...choices }, c: !!confirmed, u: page() });
    saveOutbox();
    remember(choices);
    return flush();
  };

  const read = async (id) => {
    try {
      const res = await fetch(`${API}/v1/consent/${id}`, { signal: AbortSignal.timeout(8e3), referrerPolicy: "no-referrer" });
      const answer = res.ok && (await res.json());
      // The API's answer gives every purpose a boolean (ConsentStateOut): any other 200 (a
      // stub, a gateway's or an older API's JSON) is no state, and fails closed.
      return PURPOSES.every((p) => typeof answer?.opt_out?.[p] == "boolean") && answer;
    } catch {
      // no answer: gated tags stay off (fail closed)
    }
  };
  const load = async (was = deviceId) => {
    // The earlier banner's ids are read with this device's state: until both answered the
    // browser's old opt-outs are unknown, and the page fails closed as without an answer.
    const answers = await Promise.all([was, ...olds].map(read));
    // Another tab that started with this one (a session restore) made its own device and wrote
    // it last: this page takes the one the next page will, and reads again (review s29 D3).
    // A reset (logout) named a new device while this read was out: its own read applies.
    const id = mine() || deviceId;
    if (id != was) return id != deviceId && (store(COOKIE, (deviceId = id)), load());
    const [answer, ...old] = answers;
    // An earlier banner's id whose read fails while the device's answers (any refusal: a
    // firewall's rule on that id, one without CORS headers, a proxy node's 404; a sibling can
    // plant an id the edge refuses) starts a clock: optout_migrated holds minus that time. Until
    // a day later every page fails closed and tries again, so a passing refusal never drops
    // the browser's own old opt-outs; from then on an id still failing is given up, nothing to
    // carry, and the migration settles (review s29 banner F1, F3). The device's own read never.
    const since = store(MIGRATED) || -Date.now();
    // The opt-outs of the old ids that answered, for purposes this device's state lacks and the
    // person made no choice of here that can change them (an opt-out queued or acknowledged, an
    // opt-in confirmed: a newer opt-in stands; an unconfirmed "allow" lifts nothing):
    // one new entry, unconfirmed (never an opt-in), sent as any choice is; at once, also on a
    // page that fails closed for another id's read, so the give-up a day later drops only ids
    // that never answered (review s29 final F1), and once (review s29 lead L1).
    if (answer && olds[0]) {
      reread();
      queue(PURPOSES.filter((p) => !answer.opt_out[p] && pending?.choices[p] == null && !outbox.some((q) => (q.c ? q.o[p] != null : q.o[p])) && old.some((o) => o?.opt_out?.[p])));
      saveOutbox();
      applyOutbox();
    }
    if (!answers.every(Boolean) && !(answer && Date.now() + since > 864e5)) {
      answer && store(MIGRATED, since);
      warn("no consent state; gated tags stay off");
      return changed(() => (state.failed = true));
    }
    changed(() => {
      // From the first state read on no plain cookie is read again in this browser (a
      // sibling's later plant): ours names the device from then on, so a page on an earlier
      // banner (a rollout, a rollback) keeps it (review s29 D2).
      olds = [];
      store(MIGRATED, 1);
      if (secure) setCookie(COOKIE, deviceId);
      // The read carried Sec-GPC: 1 (a proxy or extension without the property): GPC as well.
      state.gpc ||= answer.gpc_signal === true;
      state.known = !linking;
      state.failed = false;
      state.server = answer.opt_out;
      state.updatedAt = answer.updated_at;
      state.at = Date.now(); // when this state was read
      // The API answered gpc_honored to this session's post, or its state already says so.
      const postedThisSession = posted() === deviceId;
      state.gpcHonored = state.gpc && (postedThisSession || !!answer.gpc_honored);
      state.decided ||= !!answer.updated_at || !!pending || state.gpc;
      // Choices made here win until the API's state has them (the resolver works
      // asynchronously, so a reload right after a click may still read the old state), or for
      // 10 minutes after the API acknowledged the last of them (this browser's clock alone).
      // A choice still in the outbox never expires: an unsaved opt-out stays applied.
      // A choice the API refused for good has no time limit: its opt-outs apply until the
      // API's state has them or the person chooses again.
      // An acknowledged opt-in the state still refuses after them is kept (`r: 2`), with no time
      // limit, to say so on every page until the state has it or the person chooses again.
      if (pending && !outbox.length) {
        const c = pending.choices;
        const caughtUp = Object.keys(c).every((p) => !c[p] === !state.server[p]);
        if (caughtUp || !(pending.r || Math.abs(Date.now() - pending.at) < PENDING_MS)) {
          for (const p in c) if (c[p] || !state.server[p]) delete c[p];
          savePending((pending = unapplied() ? { choices: c, r: 2, i: 0 } : null)); // i: long ago
        }
      }
    });
    flush();
  };

  // -- UI: first-visit banner, the choices panel, the persistent button -------------------
  let root = null;
  let panelOpen = false;
  let lastView = "";
  let opener; // the page's element focused when the panel opened (its own link), or none
  const CONTROLS = "input:not([disabled]),button,a"; // what Tab reaches in the panel
  const CSS =
    ":host{all:initial}*{box-sizing:border-box;font:14px/1.45 system-ui,sans-serif;color:#1d2433}" +
    ".box{position:fixed;z-index:2147483000;right:16px;bottom:16px;max-width:min(480px,calc(100vw - 32px));background:#fff;border:1px solid #d5dbe5;border-radius:12px;box-shadow:0 8px 28px #0002;padding:16px}" +
    ".row,.pill{display:flex;flex-wrap:wrap;gap:8px;align-items:center}.pill{padding:6px 10px;border-radius:999px}" +
    "h2,legend{font-weight:600;margin:0 0 6px;padding:0}h2{font-size:16px}p{margin:0 0 12px}fieldset{border:0;margin:0 0 8px;padding:0}" +
    "button{cursor:pointer;border:1px solid #1f4fd1;border-radius:8px;padding:8px 14px;background:#fff;color:#1f4fd1;font-weight:600}" +
    ".main{background:#1f4fd1;color:#fff}.link{border:0;padding:2px 4px;display:inline-flex;gap:6px;align-items:center}" +
    ":focus-visible{outline:3px solid #b45309;outline-offset:2px}" +
    "label{display:flex;gap:8px;margin:0 0 8px}input{width:18px;height:18px;margin:1px 0 0}" +
    ".ok{color:#0a6b36;font-weight:600}small,a{font-size:12px;color:#4b5563}";
  // The "Your Privacy Choices" toggle icon the California regulator offers (CCPA §7015).
  const ICON =
    '<svg width="30" height="14" viewBox="0 0 30 14" aria-hidden="true" stroke="#1f4fd1" stroke-width="1.5"><rect x=".5" y=".5" width="29" height="13" rx="6.5" fill="#fff"/><path d="M14 .5h9a6.5 6.5 0 010 13H11z" fill="#1f4fd1"/><path d="M5 7.2l2 2 3.5-4" fill="none"/><path d="M19.5 4.5l5 5m0-5l-5 5" stroke="#fff"/></svg>';

  const statusText = () => {
    const out = SALE_SHARE.filter(optedOut);
    const parts = [];
    // Until the API acknowledged a choice, the person is told it is not saved yet.
    if (outbox.length) return state.unsaved ? "Not saved yet, retrying" : "Saving…";
    if (pending?.r == 1) return "Your choice could not be saved";
    if (state.gpc && state.gpcHonored) parts.push("Opt-Out Request Honored");
    else if (out.length) parts.push(out.length === 4 ? "Opted out" : `Opted out of ${out.map((p) => SHORT[p]).join(", ")}`);
    if (optedOut(LIMIT)) parts.push("Sensitive data use limited");
    // An opt-in not in a state read a minute after it was saved: a person linked to this
    // browser (an account, an email they gave) holds the opt-out, and it wins. (Not the time
    // now: the page the opt-in was made on has not read the state since.)
    if (unapplied()) parts.push(heldNote());
    return parts.join(" · ");
  };
  const heldNote = () =>
    pending.r > 1 || pending.i < state.at - 6e4 ? "Opt-in not applied: a linked account opted out" : "Opt-in saved, not applied yet";

  const render = () => {
    if (!root || !(state.known || state.failed || linking)) return; // no flash of UI before the state
    const status = statusText();
    const view = panelOpen ? "panel" : state.known && !state.decided ? "ask" : "pill";
    // Never redraw a view under the user's hands: the panel's toggles they changed would be
    // lost, and the focus on a button (the page's body got it) and the live status (a new status
    // element is not announced) with them. The first-visit banner never changes; the button's
    // status is written in place (review browser36).
    if (view === lastView) return view === "pill" && (root.querySelector("span").textContent = status);
    const webform = data.webform
      ? `<small><a href="${esc(data.webform)}">Opt out by email, phone or customer ID</a></small>`
      : "";
    const gpcNote = state.gpc
      ? `<p class="ok" data-optout-gpc>${state.gpcHonored ? "Opt-Out Request Honored" : "Global Privacy Control detected, not yet processed"}</p><p>Your browser's Global Privacy Control signal opts you out of sale, sharing and targeted advertising.</p>`
      : "";
    // The boxes then show only what this browser knows; an unticked box lifts nothing.
    const failedNote = state.failed ? "<p>We could not load your saved choices. Unticked boxes change none of them.</p>" : "";
    const toggle = (p) =>
      `<label><input type="checkbox" name="${p}"${gpcOut(p) || own(p) ? " checked" : ""}${gpcOut(p) ? " disabled" : ""}> ${LABELS[p]}${held(p) ? ` <small>(${heldNote()})</small>` : ""}</label>`;
    let html;
    if (view === "ask") {
      html = `<div class="box" role="region" aria-label="Privacy choices"><h2>Your privacy choices</h2><p>We and our partners use data about your visit for advertising. You can opt out of the sale or sharing of your personal information and of targeted advertising.</p><div class="row"><button data-act="all">Opt out of all</button><button data-act="none">Allow</button><button data-act="open">Choose</button></div></div>`;
    } else if (panelOpen) {
      const limit = offersLimit
        ? `<fieldset><legend>Sensitive personal information</legend>${toggle(LIMIT)}</fieldset>`
        : "";
      html = `<div class="box" role="dialog" aria-labelledby="t"><h2 id="t">${linkText}</h2>${gpcNote}${failedNote}<form><fieldset><legend>Do not sell or share my personal information</legend>${shown.filter((p) => p !== LIMIT).map(toggle).join("")}</fieldset>${limit}<div class="row"><button type="button" class="main" data-act="all">Opt out of all</button><button type="submit">Save choices</button><button type="button" data-act="close">Close</button></div></form>${webform}</div>`;
    } else {
      html = `<div class="box pill"><button class="link" data-act="open" aria-haspopup="dialog">${ICON}${linkText}</button><span role="status" data-optout-status class="ok">${status}</span></div>`;
    }
    // Keyboard users land in the panel when it opens, and back on what opened it when it closes:
    // the button, the first-visit banner's "Choose", or the page's own element that called
    // open() (its link: browser37). The focus is moved only from inside the banner: another
    // tab's choice never takes it from a field on this page (review browser36).
    const inside = root.querySelector(":focus");
    if (panelOpen) opener = !inside && d.activeElement != d.body && d.activeElement;
    root.innerHTML = html;
    set("cmpDisplayStatus", view === "pill" ? "hidden" : "visible");
    if ((panelOpen || inside) && lastView) (panelOpen ? root.querySelector(CONTROLS) : opener || root.querySelector('[data-act="open"]')).focus();
    lastView = view;
  };

  const onClick = (event) => {
    const act = event.target.closest?.("[data-act]");
    if (!act) return;
    const all = (value) => Object.fromEntries(SALE_SHARE.map((p) => [p, value]));
    const action = act.dataset.act;
    if (action === "all") choose(all(true));
    else if (action === "none") choose(all(false));
    else changed(() => (panelOpen = action === "open"));
  };
  const onSubmit = (event) => {
    event.preventDefault();
    // Opting back in (to sale/sharing, or to the use of sensitive data) takes a second,
    // explicit step (CCPA regulations §7028); the API is told it was confirmed. A confirmed
    // post carries `false` only for what the question named: a box the person unticked. A box
    // the panel showed unticked (`defaultChecked`: an opt-in held, or an opt-out that arrived
    // after the panel opened, another tab's) is left out (`kept`), or it would lift a newer
    // opt-out of that purpose unasked. An unconfirmed post carries every box.
    const choices = {};
    const kept = {};
    for (const box of event.target.querySelectorAll("input:not([disabled])"))
      (box.checked || box.defaultChecked ? choices : kept)[box.name] = box.checked;
    const optingIn = PURPOSES.filter((p) => choices[p] === false);
    const question = `Opt back in to ${optingIn.map((p) => SHORT[p]).join(", ")}? We may then sell, share or use your personal information for it.`;
    if (optingIn[0] && !w.confirm(question)) return;
    choose(optingIn[0] ? choices : { ...choices, ...kept }, !!optingIn[0]);
  };

  const mount = () => {
    const host = d.createElement("div");
    host.id = "optout-bridge";
    root = host.attachShadow({ mode: "open" });
    // A constructed stylesheet: no inline <style>, so a strict CSP (style-src 'self') holds.
    try {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch {
      root.append(Object.assign(d.createElement("style"), { textContent: CSS }));
    }
    root.addEventListener("click", onClick);
    root.addEventListener("submit", onSubmit);
    // The panel is a non-modal dialog that keeps Tab inside it (WAI-ARIA APG, "Dialog (Modal)
    // Pattern": "Like non-modal dialogs, ... contain their tab sequence"): past its last control
    // to its first, before its first to its last. Escape closes it (browser37).
    root.addEventListener("keydown", (e) => {
      const all = [...root.querySelectorAll(CONTROLS)];
      const edge = e.shiftKey ? 0 : -1;
      if (!panelOpen) return;
      if (e.key === "Escape") changed(() => (panelOpen = false));
      else if (e.key === "Tab" && e.target === all.at(edge)) e.preventDefault(), all.at(~edge).focus();
    });
    // render() replaces root's children: keep the markup in its own element.
    root = root.appendChild(d.createElement("div"));
    d.body.append(host);
    render();
  };

  // Sends a post carrying an identity token, then reads the state until it moved from what
  // it was before the link (the resolver links asynchronously, in seconds), for 5 s at most.
  // A state that did not move may be a person with no opt-out, or a resolver behind: the
  // page then stays fail-closed as when the API does not answer (the safe reading), and the
  // next page reads the state as it is (the link is older by then). A post neither accepted
  // nor refused by the API itself (a 429, 5xx, a firewall's page, the network, a timeout: the
  // token is still held) leaves the person's opt-outs made elsewhere unknown: closed too. Only
  // the API's refusal of the token (expired, used) means no link: the state read applies.
  const link = async (send) => {
    linking = 1;
    set("signalStatus", "not ready");
    changed(() => (state.known = false));
    const before = state.updatedAt;
    try {
      return await send();
    } finally {
      for (let i = 0; linked && state.updatedAt === before && i < 10; i++) {
        await new Promise((wake) => setTimeout(wake, 500));
        await load();
      }
      linking = 0;
      changed(() => (state.known = !(state.failed ||= !!token || (linked && state.updatedAt === before))));
    }
  };

  // -- public API -------------------------------------------------------------------------
  // Another tab's logout (reset) made the browser a new device: this page's memory is the old
  // device's (the account's). It takes the new one with its stored choices, so none of that
  // memory is carried at a logout nor kept as the browser's own at a login (review s31 reset2 S1).
  // Its link is the stored one (the page's was the old device's: review s31 last F2).
  const take = (was = current()) =>
    was != deviceId &&
    ((pending = store(PENDING)), (state.server = {}), (linked = store(LINKED) === was), (deviceId = was));
  linked = store(LINKED) === deviceId;
  linking = token && !linked ? 1 : 0;
  // `ready` settles when the load post has its answer, or failed and waits to be sent again:
  // the state is then known or fail-closed (as in link mode), and the retries go on after it.
  let waiting;
  const retrying = new Promise((go) => (waiting = go));
  const loaded = load().then(() => {
    // GPC is posted once per browser session, so the API holds the signal as evidence; a
    // logged-in page's identity token is posted with it, or on its own.
    const gpcDue = state.gpc && posted() !== deviceId;
    // A refused token (expired, used) must not cost the load's GPC signal: sent again without it
    // (a new body: a new Idempotency-Key). A post the API did not refuse (5xx, 429, a network
    // error, a timeout, a 2xx not from the API) is sent again with its key (its first try may
    // have landed: the API answers it as the same request) after its Retry-After (at most 5 s;
    // else 2 s). 3 load posts a page at most, the resend without the token included, so an
    // outage does not turn every visitor into a stream of requests. The next page tries again.
    let tries = 0;
    let key = random();
    const hello = () =>
      (tries++, post({}, key)).then(
        (answer) => gpcDue && answer.gpc_honored && posted(deviceId),
        ({ api, message, status, after }) =>
          api?.field === "identity_token"
            ? tries < 3 && gpcDue && ((key = random()), hello())
            : (warn(message),
              tries < 3 &&
                retryable(status, api) &&
                (waiting(), new Promise((wake) => setTimeout(wake, Math.min(+after || 2, 5) * 1e3)).then(hello))),
      );
    if (linking) return link(hello);
    if (gpcDue || token) return hello();
  });
  const ready = Promise.race([loaded, retrying]);

  // A page's object of that name is replaced; a read-only one stays, said once (browser36).
  install("optoutBridge", {
    ready,
    /**
     * Links this browser to the logged-in person. Pass the signed identity token from your
     * login backend (verified: opt-outs flow both ways), or {email | customer_id | phone}
     * (asserted: this browser's opt-outs reach that identity, never the other way).
     */
    identify: (identity) => {
      if (typeof identity === "string") {
        // Another tab's device taken (the stored link is read: review s31 last F2): its state is
        // read again through link(), also when another tab linked it already.
        const again = take();
        token = identity;
        return linked && !again ? post({}) : link(() => post({}));
      }
      return post({ identity });
    },
    /** The effective state as this page applies it (no personal data). */
    state: () => ({
      deviceId: current(), // the webform posts it
      known: state.known,
      gpc: state.gpc,
      gpcHonored: state.gpcHonored,
      optOut: Object.fromEntries(PURPOSES.map((p) => [p, optedOut(p)])),
      updatedAt: state.updatedAt,
      uspString: uspString(), // as __uspapi answers
      gppString: gppString(),
    }),
    /** Records choices, e.g. {sale: true}; true = opted out (limit_sensitive: limited). */
    choose,
    /** Applies choices already sent to the API another way (the webform), without a post. */
    remember,
    open: () => changed(() => (panelOpen = true)),
    /**
     * At logout: this browser becomes a new device, so its next user neither reads the
     * account's choices nor is linked to it (the old device stays the account's). Choices not
     * yet sent go to the old device when it is linked. The browser's own opt-outs go on with
     * it: all it applies when its device was never linked (a login whose link never landed),
     * else those it made before the first link. Resolves when the new device's state was read.
     */
    reset: () => {
      reread();
      const was = current();
      const account = store(LINKED) == was;
      const before = [].concat(store(OWN)); // any other value: none (review s31 reset2 S5)
      const again = take(); // the old device's memory is dropped, and carried never
      if (account || !again) {
        // Unknown (no state read): an opt-out made before the link is kept, no other.
        const kept = PURPOSES.filter((p) => (!account || before.includes(p)) && (own(p) ?? account));
        // Unsent entries: the account's device's when linked; else the browser's, in `kept`
        // (an earlier logout's stay with their device).
        outbox = outbox.filter((queued) => (queued.d ||= account && was));
        for (const key of [LINKED, OWN, PENDING, "optout_decided"]) store(key, null);
        deviceId = random();
        setCookie(NAME, deviceId);
        // The plain cookie too (with storage blocked the migration would read it as an old id),
        // unless an earlier banner's id in it is still to be read: then it is, for the new
        // device. Never when it holds the device itself (review s31 reset2 S4).
        (olds[0] && !cookies(COOKIE).includes(was)) || setCookie(COOKIE, deviceId);
        store(COOKIE, deviceId);
        pending = null;
        queue(kept);
        saveOutbox();
      } // else another tab's logout made it, never linked since: this page takes it as it is
      linked = token = null;
      // Nothing of the old device's state stays: fail closed until the new one's is read, the
      // browser's own opt-outs applied (review s31 reset2 S2). The open panel closes.
      set("signalStatus", "not ready");
      changed(() => {
        state.known = panelOpen = false;
        state.failed = true;
        state.server = {};
        state.updatedAt = null;
        applyOutbox();
      });
      return load();
    },
  });

  // The carried opt-outs are stored again: in the outbox if storage works now, else the cookie.
  if (carried[0]) setCookie(UNSAVED, ""), saveOutbox();
  writeUsp();
  fresh || flush(); // choices an earlier page could not save (a new device: after its reads)
  d.readyState === "loading" ? d.addEventListener("DOMContentLoaded", mount) : mount();
})();
