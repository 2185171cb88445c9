// Briefing QA page script: citation badges scroll to their source card; "Open" links
// on source cards ask the server for the page itself; the upload box resets the status
// line as soon as files are chosen (also for files the page itself refuses).
(() => {
  const sendToServer = (value) => {
    const box = document.querySelector("#qa-open-request textarea, #qa-open-request input");
    const button = document.querySelector("#qa-open");
    if (!box || !button) return;
    box.value = value;
    box.dispatchEvent(new Event("input", { bubbles: true }));
    setTimeout(() => button.click(), 0);
  };

  const goToSource = (badge) => {
    const reply = badge.closest(".qa-done") || badge.closest(".message");
    const card = reply && reply.querySelector(`.qa-source[data-number="${badge.dataset.cite}"]`);
    if (!card) return;
    card.scrollIntoView({ block: "center", behavior: "smooth" });
    card.classList.remove("qa-flash");
    void card.offsetWidth;
    card.classList.add("qa-flash");
  };

  document.addEventListener("click", (event) => {
    const badge = event.target.closest(".qa-cite");
    if (badge) { event.preventDefault(); goToSource(badge); return; }
    const open = event.target.closest(".qa-open-page");
    if (open) {
      event.preventDefault();
      const d = open.dataset;
      sendToServer(`${d.chunk} ${d.start} ${d.end} ${d.hs} ${d.he} ${Date.now()}`);
    }
  });

  document.addEventListener("keydown", (event) => {
    const badge = event.target.closest && event.target.closest(".qa-cite");
    if (badge && (event.key === "Enter" || event.key === " ")) { event.preventDefault(); goToSource(badge); }
    if (event.key === "Escape") document.querySelector("#qa-viewer-close")?.click();
  });

  document.addEventListener("change", (event) => {
    if (event.target.matches && event.target.matches("#qa-upload input[type=file]")) {
      document.querySelector("#qa-upload-started")?.click();
    }
  }, true);

  // After the viewer opened: bring the cited sentence into view inside it.
  window.qaShowMark = () => {
    const tries = [50, 200, 600];
    tries.forEach((delay) => setTimeout(() => {
      const mark = document.querySelector("#qa-viewer #qa-view-mark");
      if (mark) mark.scrollIntoView({ block: "center" });
    }, delay));
  };
})();
