// The search page: pick or upload a reference, type a modification, see the result grid.
"use strict";
const $ = (selector) => document.querySelector(selector);
const PAGE_SIZE = 24;
let reference = null; // {kind: "key", key, url} or {kind: "file", file, url}
let offset = 0;
let total = 0;

function element(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
}

function thumbnail(url, alt) {
  return url ? element("img", { src: url, alt, loading: "lazy" }) : element("div", { class: "noimage" }, "no image");
}

async function init() {
  const info = await (await fetch("/info")).json();
  $("#index-info").textContent = `${info.items} items, ${info.model}, ${info.search} search`;
  for (const name of info.fusions) {
    const label = name === "default" ? `default (${info.default_fusion})` : name;
    $("#fusion").append(element("option", { value: name }, label));
  }
  for (const category of info.categories) {
    $("#category").append(element("option", { value: category.name }, `${category.name} (${category.items})`));
  }
  $("#k").max = info.max_k;
  await loadItems();
}

async function loadItems() {
  const category = $("#category").value;
  const response = await fetch(`/items?limit=${PAGE_SIZE}&offset=${offset}&category=${encodeURIComponent(category)}`);
  const page = await response.json();
  if (!response.ok) return showError(page.error);
  total = page.total;
  $("#catalog-count").textContent = `${offset + 1}-${Math.min(offset + PAGE_SIZE, total)} of ${total}`;
  const grid = $("#items");
  grid.replaceChildren();
  for (const item of page.items) {
    const card = element("button", { type: "button", class: "item", "data-key": item.key, title: item.key },
      thumbnail(item.image_url, item.key), element("span", { class: "key" }, item.key));
    card.addEventListener("click", () => pick({ kind: "key", key: item.key, url: item.image_url }));
    grid.append(card);
  }
}

function pick(chosen) {
  reference = chosen;
  const box = $("#reference");
  box.classList.toggle("empty", !chosen);
  if (!chosen) {
    box.textContent = "No reference: pick one below or upload an image (or search by text alone).";
    return;
  }
  const label = chosen.kind === "key" ? chosen.key : `upload: ${chosen.file.name}`;
  box.replaceChildren(thumbnail(chosen.url, label), element("span", { id: "reference-label" }, label));
  for (const card of document.querySelectorAll("#items .item")) {
    card.classList.toggle("selected", chosen.kind === "key" && card.dataset.key === chosen.key);
  }
}

async function search() {
  showError("");
  const text = $("#text").value;
  const fields = {
    k: Number($("#k").value) || 10,
    fusion: $("#fusion").value,
    exclude_reference: $("#exclude-reference").checked,
  };
  if (text.trim()) fields.text = text;
  if ($("#category").value) fields.category = $("#category").value;
  let body;
  let headers = {};
  if (reference && reference.kind === "file") {
    body = new FormData();
    for (const [name, value] of Object.entries(fields)) body.append(name, String(value));
    body.append("image", reference.file, reference.file.name);
  } else {
    if (reference) fields.key = reference.key;
    body = JSON.stringify(fields);
    headers = { "Content-Type": "application/json" };
  }
  $("#status").textContent = "searching…";
  const response = await fetch("/query", { method: "POST", body, headers });
  const answer = await response.json();
  if (!response.ok) {
    $("#status").textContent = "";
    $("#results").replaceChildren();
    return showError(`${response.status}: ${answer.error}`);
  }
  const grid = $("#results");
  grid.replaceChildren();
  for (const hit of answer.hits) {
    const card = element("div", { class: "result", "data-key": hit.key },
      thumbnail(hit.image_url, hit.key),
      element("div", { class: "caption" },
        element("span", { class: "rank" }, `#${hit.rank}`),
        element("span", { class: "key" }, hit.key),
        element("span", { class: "score" }, hit.score.toFixed(3))));
    card.addEventListener("click", () => pick({ kind: "key", key: hit.key, url: hit.image_url }));
    grid.append(card);
  }
  const mode = answer.mode === "ivf" ? `IVF (nprobe ${answer.nprobe ?? "default"})` : "exact";
  $("#status").textContent = `${answer.hits.length} results in ${answer.took_ms.toFixed(1)} ms, ${mode} search`;
}

$("#upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  if (file) pick({ kind: "file", file, url: URL.createObjectURL(file) });
});
$("#clear-reference").addEventListener("click", () => { $("#upload").value = ""; pick(null); });
$("#search").addEventListener("click", () => search().catch((e) => showError(String(e))));
$("#text").addEventListener("keydown", (event) => { if (event.key === "Enter") $("#search").click(); });
$("#category").addEventListener("change", () => { offset = 0; loadItems(); });
$("#prev-page").addEventListener("click", () => { offset = Math.max(0, offset - PAGE_SIZE); loadItems(); });
$("#next-page").addEventListener("click", () => { if (offset + PAGE_SIZE < total) { offset += PAGE_SIZE; loadItems(); } });
init().catch((e) => showError(String(e)));
