// mrod admin panel: progressive enhancement only — every page works without this file.
// No inline handlers anywhere (the Content-Security-Policy forbids inline script).
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Forms marked data-confirm ask first. Delete links lead to a confirmation page, which
  // works without JavaScript; with it, that page's form submits as it is.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }

  // The domain form: show only the fields of the chosen route (relay, own host, or MX).
  const choice = document.querySelector("[data-route-choice]");
  if (choice) {
    const sync = () => {
      const picked = choice.querySelector("input[name=route]:checked");
      const route = picked ? picked.value : "relay";
      for (const block of document.querySelectorAll("[data-route]")) {
        const shown = block.dataset.route.split(" ").includes(route);
        block.classList.toggle("hidden", !shown);
        for (const input of block.querySelectorAll("input, select")) input.disabled = !shown;
      }
    };
    choice.addEventListener("change", sync);
    sync();
  }

  // Filter selects on list pages apply at once.
  for (const select of document.querySelectorAll("form.filters select")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
});
