// Demo log-in: a real shop would do this after authenticating, with the signed identity
// token its login backend mints (optoutBridge.identify(token)). identify({email}) is the
// asserted form: this browser's opt-outs then reach that email too.
document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = event.target.email.value.trim();
  const status = document.getElementById("login-status");
  try {
    await window.optoutBridge.identify({ email });
    status.textContent = `Signed in as ${email}`;
    status.dataset.loggedIn = "true";
  } catch {
    status.textContent = "Could not sign in, please try again.";
  }
});
