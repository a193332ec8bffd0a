// The local stack's live view of recent requests (/_local/requests), refreshed every 3 s.
const rows = document.getElementById("rows");
const updated = document.getElementById("updated");
const esc = (value) => String(value ?? "").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const badge = (status, text = status) => `<span class="badge ${esc(status)}">${esc(text)}</span>`;
const system = (s) => {
  const detail = [s.attempts > 1 ? `${s.attempts} attempts` : "", s.http_status ? `HTTP ${s.http_status}` : ""]
    .filter(Boolean).join(", ");
  return `<span class="system">${badge(s.status, `${s.system}: ${s.status}`)}${detail ? `<small class="muted">${esc(detail)}</small>` : ""}</span>`;
};

const refresh = async () => {
  try {
    const res = await fetch("/_local/requests?limit=25", { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const list = await res.json();
    rows.innerHTML = list.length
      ? list.map((r) => `<tr data-request-id="${esc(r.request_id)}">
          <td>${esc(new Date(r.received_at).toLocaleString())}</td>
          <td><a href="/v1/requests/${encodeURIComponent(r.request_id)}"><code>${esc(r.request_id.slice(0, 8))}</code></a><br><small class="muted">${esc(r.event_type)}</small></td>
          <td>${esc(r.source)}</td><td>${badge(r.status)}</td>
          <td>${(r.systems || []).map(system).join("") || '<span class="muted">none yet</span>'}</td></tr>`).join("")
      : '<tr><td colspan="5" class="muted">No requests yet: opt out from the <a href="/">shop</a> or the <a href="/privacy.html">webform</a>.</td></tr>';
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}.`;
  } catch (error) {
    updated.textContent = `Could not load the requests (${error.message}).`;
  }
};
refresh();
// Poll only while someone is looking.
setInterval(() => document.visibilityState === "visible" && refresh(), 3000);
