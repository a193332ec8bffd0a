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
  } catch {
    status.textContent = "Could not sign in, please try again.";
  }
});
