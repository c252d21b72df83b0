"use strict";
// Filters by state and model and a search by job id; no network, no library.
(function () {
  const cards = Array.from(document.querySelectorAll(".card"));
  const state = document.getElementById("f-state");
  const model = document.getElementById("f-model");
  const search = document.getElementById("f-search");
  const count = document.getElementById("f-count");
  function apply() {
    const s = state.value, m = model.value, q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const card of cards) {
      const show = (!s || card.dataset.state === s) && (!m || card.dataset.model === m) &&
        (!q || card.dataset.id.toLowerCase().includes(q));
      card.hidden = !show;
      if (show) shown++;
    }
    count.textContent = shown === cards.length ? cards.length + " jobs" :
      shown + " of " + cards.length + " jobs";
  }
  state.addEventListener("change", apply);
  model.addEventListener("change", apply);
  search.addEventListener("input", apply);
  for (const chip of document.querySelectorAll("[data-filter-state]")) {
    chip.addEventListener("click", function () {
      state.value = state.value === chip.dataset.filterState ? "" : chip.dataset.filterState;
      apply();
      document.querySelector(".filters").scrollIntoView({ behavior: "smooth" });
    });
  }
  // A bar of the timeline leads to its job's card.
  for (const bar of document.querySelectorAll("g[data-job]")) {
    bar.addEventListener("click", function () {
      state.value = ""; model.value = ""; search.value = bar.dataset.job;
      apply();
      document.querySelector(".filters").scrollIntoView({ behavior: "smooth" });
    });
  }
  apply();
})();
