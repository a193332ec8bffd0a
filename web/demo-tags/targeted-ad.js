// A stand-in for a third-party targeted-advertising tag: banner.js activates it only when
// targeted advertising is allowed for this browser.
window.__adTagRan = true;
{
  const ad = document.createElement("div");
  ad.className = "ad";
  ad.id = "ad";
  ad.dataset.adTag = "";
  ad.textContent = "Picked for you: 20% off rain shells (targeted ad)";
  document.getElementById("ad-slot").replaceChildren(ad);
}
