// Progressive enhancement of /privacy.html: the same form, posted as JSON, answered on this
// page. Without JavaScript the form posts itself and the API answers with a page.
// Messages (ours and the server's) are always put in the page as text, never as markup.
const form = document.getElementById("optout-form");
const summary = document.getElementById("form-errors");
const result = document.getElementById("result");
const fields = ["email", "phone", "customer_id"];
// The API's base URL: this script tag's `data-api` when the site serves this page apart from
// the API (the API must list the site's origin in AllowedOrigins), else this page's origin.
// Without JavaScript the form posts to its own origin all the same (docs/browser.md,
// "Hosting the banner and the webform"). This tag is the one whose `src` is this module's own
// URL (a module has no `currentScript`): another tag naming privacy.js (markup injected into
// the page, one CSP blocked) never picks where the form's identifiers go; tags of this URL
// that disagree give none (review s31 stranger N1).
const bases = new Set(
  [...document.scripts].filter((tag) => tag.src === import.meta.url).map((tag) => tag.dataset.api || ""),
);
const API = (bases.size === 1 ? [...bases][0] : "").replace(/\/+$/, "");
form.noValidate = true; // our messages, tied to the fields, replace the browser's bubbles

// "Opt out of all" ticks or unticks every opt-out box; it shows ticked only when all four
// are. The sensitive-data limit (its own fieldset) is a different right and is left alone.
const all = document.getElementById("optout-all");
const optOuts = [...form.querySelectorAll("input[name=purposes]:not([value=limit_sensitive])")];
const syncAll = () => {
  const ticked = optOuts.filter((box) => box.checked).length;
  all.checked = ticked === optOuts.length;
  all.indeterminate = ticked > 0 && ticked < optOuts.length;
};
all.addEventListener("change", () => {
  for (const box of optOuts) box.checked = all.checked;
  all.indeterminate = false;
});
for (const box of optOuts) box.addEventListener("change", syncAll);
syncAll();

// The submit button names what the ticked boxes ask: a request only to limit the use of
// sensitive data (§7027) is no opt-out. The same rule as the confirmation's heading
// (`showResult`) and the no-JavaScript page's (functions/capture_api/app.py); the static
// button is neutral for a browser without this script.
const limitBox = form.querySelector("input[name=purposes][value=limit_sensitive]");
const submitButton = form.querySelector("button[type=submit]");
const buttonLabel = () => {
  const optingOut = optOuts.some((box) => box.checked);
  if (optingOut && limitBox.checked) return "Submit opt-out and limit request";
  if (optingOut) return "Submit opt-out request";
  return limitBox.checked ? "Submit request to limit use of sensitive information" : "Submit request";
};
const syncButton = () => {
  submitButton.textContent = buttonLabel();
};
form.addEventListener("change", syncButton); // after "Opt out of all" has set the boxes
syncButton();
document.getElementById("optout-all-choice").hidden = false;

const element = (name, content = [], attributes = {}) => {
  const node = Object.assign(document.createElement(name), attributes);
  node.append(...[].concat(content)); // strings become text nodes
  return node;
};

const showError = (name, message) => {
  document.getElementById(`${name}-error`).textContent = message;
  const input = name === "purposes" ? null : form.elements[name];
  if (input) input.setAttribute("aria-invalid", message ? "true" : "false");
};
// The banner's device (its cookie's name depends on the scheme, and it refuses a cookie a
// sibling subdomain planted beside its own): no banner, no device link.
const deviceId = () => window.optoutBridge?.state().deviceId;

const validate = () => {
  const errors = [];
  const value = (name) => form.elements[name].value.trim();
  for (const name of [...fields, "purposes"]) showError(name, "");
  if (!fields.some(value)) errors.push(["email", "Enter an email address, a phone number or a customer number."]);
  if (value("email") && !/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value("email")))
    errors.push(["email", "Enter an email address like name@example.com."]);
  if (value("phone") && !/^\+?[\d\s().-]{7,20}$/.test(value("phone")))
    errors.push(["phone", "Enter a phone number with its country code, like +1 415 555 0123."]);
  if (!form.querySelector("input[name=purposes]:checked"))
    errors.push(["purposes", "Choose at least one thing to opt out of."]);
  return errors;
};

// A failure that is not about a field (throttled, server error, no answer) is said above the
// form, not under the email field: nothing the person typed is wrong.
const reportForm = (message) => {
  summary.replaceChildren(element("p", element("strong", "Your request was not sent")), element("p", message));
  summary.hidden = false;
  summary.focus();
};
// One Idempotency-Key per submission: a retry of the same form after a timeout or a lost
// answer is the same request to the API, not a second one.
let sent = { body: "", key: "" };
const report = (errors) => {
  for (const [name, message] of errors) showError(name, message);
  const title = errors.length === 1 ? "There is a problem with your request" : "There are problems with your request";
  const items = errors.map(([name, message]) =>
    element("li", element("a", message, { href: `#${name === "purposes" ? "optout-form" : name}` })),
  );
  summary.replaceChildren(element("p", element("strong", title)), element("ul", items));
  summary.hidden = false;
  const first = errors[0][0];
  (first === "purposes" ? form.querySelector("input[name=purposes]") : form.elements[first]).focus();
};

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  summary.hidden = true;
  const errors = validate();
  if (errors.length) return report(errors);
  const body = { purposes: [...form.querySelectorAll("input[name=purposes]:checked")].map((b) => b.value) };
  for (const name of fields) if (form.elements[name].value.trim()) body[name] = form.elements[name].value.trim();
  if (deviceId()) body.device_id = deviceId(); // links this browser to the identifiers given
  body.page_url = location.origin + location.pathname;
  submitButton.disabled = true;
  const json = JSON.stringify(body);
  if (json !== sent.body) sent = { body: json, key: crypto.getRandomValues(new Uint32Array(4)).join("-") };
  // A hanging request must not leave the button dead: given up after 20 s.
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException("no answer", "TimeoutError")), 20e3);
  try {
    const res = await fetch(`${API}/v1/opt-out`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json", "Idempotency-Key": sent.key },
      body: json,
      signal: controller.signal,
    });
    const answer = await res.json().catch(() => ({}));
    if (!res.ok) {
      const error = answer.error || {};
      const message = typeof error.message === "string" ? error.message : "";
      if (fields.includes(error.field)) return report([[error.field, message || `Check this field (HTTP ${res.status}).`]]);
      return reportForm(
        res.status < 500 && res.status !== 429 && message
          ? message
          : `We could not record your request right now (HTTP ${res.status}). Please try again in a minute.`,
      );
    }
    showResult(answer, body.purposes);
    // Stop this browser's gated tags now, not after the pipeline has run.
    window.optoutBridge?.remember(Object.fromEntries(body.purposes.map((p) => [p, true])));
  } catch (error) {
    reportForm(
      error.name === "TimeoutError"
        ? "The server did not answer in time. Please try again: sending the same form again is safe."
        : "We could not reach the server. Check your connection and try again.",
    );
  } finally {
    clearTimeout(timer);
    submitButton.disabled = false;
  }
});

// A request only to limit the use of sensitive data (§7027) is not an opt-out: the heading
// names what was asked, as the no-JavaScript page does (review s22 proof R4).
const LIMIT_ONLY = "We received your request to limit the use of your sensitive personal information";
const OPT_OUT = "We received your opt-out request";

const showResult = (answer, purposes) => {
  // A set: a repeated box is still limit-only (review s22 diff B12).
  const limitOnly = new Set(purposes).size === 1 && purposes[0] === "limit_sensitive";
  result.querySelector("#result-title").textContent = limitOnly ? LIMIT_ONLY : OPT_OUT;
  // A request that carried Sec-GPC: 1 is also an opt-out of sale, sharing and targeted
  // advertising: say so, as the no-JavaScript page does, or a limit-only heading hides it
  // (review s22 diff B4).
  result.querySelector("[data-gpc-honored]").hidden = answer.gpc_honored !== true;
  const link = `${API}/v1/requests/${encodeURIComponent(answer.request_id)}`;
  result.querySelector("[data-request-id]").textContent = answer.request_id;
  const day = /^\d{4}-\d{2}-\d{2}$/.test(answer.deadline) ? new Date(`${answer.deadline}T12:00:00`) : null;
  result.querySelector("[data-deadline]").textContent = day
    ? day.toLocaleDateString(undefined, { year: "numeric", month: "long", day: "numeric" })
    : answer.deadline;
  result.querySelector("[data-status-link]").href = link;
  result.querySelector("[data-check-status]").onclick = () => checkStatus(link);
  form.hidden = true;
  result.hidden = false;
  result.focus();
};

// The public answer counts no progress until every system has answered (it would tell a
// stranger which vendors hold the person): while processing, or denied with jobs in flight,
// its 0 done is no count, so say how many systems are to confirm it, as the status page does
// (optout/webform_pages.py). Its total may hold systems this request never asked, so not
// "asked" (review s22 diff B5). No systems yet, none needed, or all retired: no count, and no
// words, since the JSON does not tell the last two apart (the status page is told, review s22
// diff B7): "Status: completed." is true of both.
const statusText = (status) => {
  const { systems_total: total, systems_done: done, systems_failed: failed } = status;
  const denied = status.status === "denied";
  const reason = denied ? ` Reason: ${denialReason(status.denial_reason)}.` : "";
  if (!total) return `Status: ${status.status}.${reason}`;
  if (done + failed < total) return `Status: ${status.status} (${total} systems to confirm).${reason}`;
  // A denied request's failed systems will not be retried: "not done", as the page says (B6).
  const left = failed ? `, ${failed} ${denied ? "not done" : "failed"}` : "";
  return `Status: ${status.status} (${done} of ${total} systems done${left}).${reason}`;
};

// A copy of optout/webform_pages.py DENIAL_REASONS (tests/unit/test_status_page.py holds them
// alike): the page shows the reason, so "Check now" does too (review s22 diff B6).
const DENIAL_REASONS = {
  suspected_fraud: "we believe in good faith that the request is fraudulent",
  not_a_consumer: "the request was not made by or for a consumer",
  outside_jurisdiction: "the request is not covered by the privacy laws we follow",
  other: "another reason",
};
const denialReason = (code) => {
  const key = typeof code === "string" && code ? code : "other";
  return Object.hasOwn(DENIAL_REASONS, key) ? DENIAL_REASONS[key] : key;
};

const checkStatus = async (link) => {
  const out = result.querySelector("[data-status-text]");
  try {
    const res = await fetch(link, { headers: { Accept: "application/json" }, signal: AbortSignal.timeout(20e3) });
    const status = await res.json();
    // A refusal (404, API Gateway's 429 {"message"}) is not a status: say what happened.
    if (!res.ok) {
      const message = status.error && status.error.message;
      out.textContent = typeof message === "string" ? message : "The status is not available right now.";
      return;
    }
    out.textContent = statusText(status);
  } catch {
    out.textContent = "The status is not available right now.";
  }
};
