// A stand-in for a data partner's pixel (sale and sharing): activated only when both are allowed.
window.__partnerPixelRan = true;
