// The report's query browser: renders the embedded sample, filters failures and categories.
"use strict";
(function () {
  const data = JSON.parse(document.getElementById("report-data").textContent);
  const list = document.getElementById("samples");
  const onlyMisses = document.getElementById("only-misses");
  const category = document.getElementById("sample-category");
  const shown = document.getElementById("shown-count");

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function thumb(key, caption, extra) {
    const box = el("div", "thumb" + (extra ? " " + extra : ""));
    box.title = key;
    const src = data.thumbnails[key];
    if (src) {
      const img = el("img");
      img.src = src;
      img.alt = key;
      box.append(img);
    } else {
      box.append(el("div", "noimage", "no image"));
    }
    box.append(el("div", "key", key));
    if (caption) box.append(caption);
    return box;
  }

  function card(sample) {
    const node = el("div", "sample" + (sample.missed_top_50 ? " miss" : ""));
    node.dataset.category = sample.category;
    node.dataset.miss = String(sample.missed_top_50);
    const query = el("div", "query");
    const pair = el("div", "pair");
    pair.append(thumb(sample.reference, el("div", null, "reference")));
    const rank = sample.target_rank === null ? "not in the index" : "rank " + sample.target_rank;
    const inTop = sample.target_rank !== null && sample.target_rank <= sample.hits.length;
    pair.append(thumb(sample.target, el("div", "rank " + (inTop ? "hit" : "miss"), "target, " + rank), "target"));
    query.append(pair);
    const captions = el("ol", "captions");
    for (const caption of sample.captions) captions.append(el("li", null, caption));
    query.append(el("div", null, sample.category), captions);
    node.append(query);
    const hits = el("div", "hits");
    sample.hits.forEach((hit, i) => {
      const label = el("div", "score", "#" + (i + 1) + " " + hit.score.toFixed(3));
      hits.append(thumb(hit.key, label, hit.key === sample.target ? "target" : ""));
    });
    node.append(hits);
    return node;
  }

  const cards = data.samples.map(card);
  list.append(...cards);

  function filter() {
    let count = 0;
    for (const node of cards) {
      const visible = (!onlyMisses.checked || node.dataset.miss === "true") &&
        (!category.value || node.dataset.category === category.value);
      node.hidden = !visible;
      if (visible) count += 1;
    }
    shown.textContent = count + " shown";
  }
  onlyMisses.addEventListener("change", filter);
  category.addEventListener("change", filter);
  filter();
})();
