// In Locust's web UI: while the "Live view (doorbuster)" tab is selected (?tab=doorbuster-live),
// the live page fills the space under the tab bar, in an iframe; it is hidden on other tabs.
"use strict";
(() => {
  const KEY = "doorbuster-live";
  let frame = null;
  function place() {
    const selected = new URLSearchParams(location.search).get("tab") === KEY;
    const tabs = document.querySelector("[role=tablist]");
    if (!selected || !tabs) { if (frame) frame.style.display = "none"; return; }
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = "doorbuster-live-frame";
      frame.title = "doorbuster live view";
      frame.src = "./doorbuster-live/";
      frame.style.cssText = "position:absolute;left:0;width:100%;border:0;background:#fbfbfd;z-index:10";
      document.body.appendChild(frame);
    }
    const top = tabs.getBoundingClientRect().bottom + window.scrollY + 8;
    frame.style.top = `${top}px`;
    frame.style.height = `${Math.max(400, window.innerHeight - top)}px`;
    frame.style.display = "block";
  }
  setInterval(place, 300);
})();
