// Demo log-in. A real shop authenticates the person, then its login backend signs a short-lived
// identity token (README: "Identity tokens"); here the local stack's /_local/demo/login plays
// that backend (it binds the token to this browser's optout_device_id cookie). Handing the
// token to the banner links this browser to the person as *verified*, so opt-outs made
// anywhere for them reach this browser. The banner sends it once and never stores it.
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = event.target.email.value.trim();
  const status = document.getElementById("login-status");
  try {
    const answer = await fetch("/_local/demo/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ email }),
    });
    if (answer.status === 403) {
      // The demo login signs in only demo accounts: it checks no password (README).
      status.textContent = "Demo accounts only: use an address at demo.example.com.";
      return;
    }
    if (!answer.ok) throw new Error("login refused");
    const { identity_token } = await answer.json();
    await window.optoutBridge.identify(identity_token);
    status.textContent = `Signed in as ${email}`;
    status.dataset.loggedIn = "true";
    document.getElementById("logout").hidden = false;
  } catch {
    status.textContent = "Could not sign in, please try again.";
  }
});

// Log-out. A real shop ends its session, then tells the banner before the next page: the
// browser becomes a new device, so whoever uses it next neither reads this account's choices
// nor is linked to it (README: "Identity tokens", logging out). The account keeps its choices.
document.getElementById("logout").addEventListener("click", async (event) => {
  event.target.hidden = true;
  const status = document.getElementById("login-status");
  status.textContent = "Signed out";
  delete status.dataset.loggedIn;
  await window.optoutBridge.reset();
});
