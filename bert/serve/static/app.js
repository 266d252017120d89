// BERT explorer: plain DOM and SVG, no libraries. Text from the user or the model is only ever set as textContent.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
// The model's own special tokens (RoBERTa's <s> </s> <mask> ...); /api/info replaces BERT's defaults.
let SPECIAL = new Set(["[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]"]);
let MASK = "[MASK]";

// ---- small DOM helpers ----------------------------------------------------------------------------------------
function setAttributes(node, attributes) {
  for (const [key, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return node;
}

function append(node, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "object" ? child : String(child));
  }
  return node;
}

/** An HTML element: el("div", {class: "x"}, child, "text", ...). */
function el(tag, attributes = {}, ...children) {
  return append(setAttributes(document.createElement(tag), attributes), children);
}

/** An SVG element, same calling convention as el(). */
function svg(tag, attributes = {}, ...children) {
  return append(setAttributes(document.createElementNS(SVG_NS, tag), attributes), children);
}

const percent = (p) => `${(100 * p).toFixed(1)}%`;
const fixed = (x, digits = 2) => x.toFixed(digits);
const short = (token, length = 14) => (token.length > length ? `${token.slice(0, length - 1)}…` : token);

function tokenClass(token, segment) {
  return ["tok", SPECIAL.has(token) ? "special" : "", token === MASK ? "mask" : "", segment ? "seg-b" : ""]
    .filter(Boolean).join(" ");
}

function tokenChips(tokens, segments = null) {
  return el("div", { class: "tokens" }, tokens.map((token, i) =>
    el("span", { class: tokenClass(token, segments ? segments[i] : 0), text: token })));
}

/** Segment ids of [CLS] A [SEP] B [SEP]: 0 up to and including the first [SEP], then 1. */
function segmentsOf(tokens) {
  const first = tokens.indexOf("[SEP]");
  return tokens.map((_, i) => (first >= 0 && i > first ? 1 : 0));
}

// ---- talking to the server ------------------------------------------------------------------------------------
async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  };
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw new Error("the server cannot be reached: is `bert serve` still running?");
  }
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (!response.ok) {
    const detail = data && data.detail;
    throw new Error(typeof detail === "string" ? detail : `the server answered ${response.status}`);
  }
  return data;
}

// ---- views: one form, one result area each --------------------------------------------------------------------
const views = {};

/** Wire a view: its form posts request() to endpoint, and render(data) fills the result area. */
function defineView(name, endpoint, request, render) {
  const section = $(`#view-${name}`);
  const form = $("form", section);
  const result = $(".result", section);
  const error = $(".error", section);
  let latest = 0; // only the answer to the newest request is shown

  async function submit() {
    const id = ++latest;
    section.classList.add("busy");
    section.dataset.state = "busy";
    try {
      const data = await api(endpoint, request(form));
      if (id !== latest) return;
      error.hidden = true;
      result.replaceChildren(render(data));
      section.dataset.state = "done";
    } catch (failure) {
      if (id !== latest) return;
      error.textContent = failure.message;
      error.hidden = false;
      result.replaceChildren();
      section.dataset.state = "error";
    } finally {
      if (id === latest) section.classList.remove("busy");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    submit();
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      submit();
    }
  });
  views[name] = { submit, shown: false };
}

function value(form, name) {
  return form.elements[name].value;
}

function optional(form, name) {
  const text = value(form, name).trim();
  return text ? text : null;
}

function showView(name) {
  if (!views[name]) name = "fill-mask";
  for (const tab of $$(".tabs button")) tab.setAttribute("aria-selected", String(tab.dataset.view === name));
  for (const section of $$(".view")) section.hidden = section.id !== `view-${name}`;
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (!views[name].shown) { // the first visit shows the example that is already in the form
    views[name].shown = true;
    views[name].submit();
  }
}

// ---- fill-mask ------------------------------------------------------------------------------------------------
function renderFillMask(data) {
  const blocks = data.predictions.map((candidates, n) => el("div", { class: "mask-block" },
    el("h3", { text: data.predictions.length > 1 ? `${MASK} ${n + 1}` : MASK }),
    candidates.map((candidate, rank) => {
      const fill = el("div", { class: "fill" });
      fill.style.width = percent(candidate.score / candidates[0].score); // bars relative to the best candidate
      return el("div", { class: "candidate", title: `token id ${candidate.token}` },
        el("span", { class: "rank", text: rank + 1 }),
        // the word; a piece that decodes to white space only is shown quoted
        el("span", { class: "word", text: candidate.token_str.trim() || JSON.stringify(candidate.token_str) }),
        el("div", { class: "bar" }, fill),
        el("span", { class: "pct", text: percent(candidate.score) }));
    })));
  return el("div", {},
    el("p", { class: "caption", text: `what ${data.model} reads (${data.tokens.length} tokens):` }),
    tokenChips(data.tokens), blocks);
}

// ---- next sentence --------------------------------------------------------------------------------------------
function renderNsp(data) {
  const yes = el("div", { class: "yes" });
  const no = el("div", { class: "no" });
  yes.style.width = percent(data.is_next);
  no.style.width = percent(data.not_next);
  const isNext = data.verdict === "IsNext";
  return el("div", {},
    el("p", { class: `verdict ${isNext ? "is-next" : "not-next"}`,
      text: isNext ? "IsNext: B follows A" : "NotNext: B looks like a random sentence" }),
    el("p", { class: "probability", text: `P(B follows A) = ${percent(data.is_next)}` }),
    el("div", { class: "split" }, yes, no),
    el("div", { class: "split-legend" },
      el("span", { text: `IsNext ${percent(data.is_next)} (logit ${fixed(data.logits[0])})` }),
      el("span", { text: `NotNext ${percent(data.not_next)} (logit ${fixed(data.logits[1])})` })),
    el("p", { class: "caption", text: `what ${data.model} reads (segment B in violet):` }),
    tokenChips(data.tokens, segmentsOf(data.tokens)));
}

// ---- attention ------------------------------------------------------------------------------------------------
function meanOfHeads(layer) {
  const heads = layer.length;
  return layer[0].map((row, i) => row.map((_, j) => layer.reduce((sum, head) => sum + head[i][j], 0) / heads));
}

/** The largest weight of a matrix: colours and line strengths are relative to it, so that weak heads stay visible. */
const maximum = (weights) => Math.max(1e-6, ...weights.map((row) => Math.max(...row)));

/** Two columns of tokens joined by lines whose strength is the attention weight (query on the left). */
function drawLines(tokens, segments, weights, focus) {
  const top = maximum(weights);
  const rowHeight = 22;
  const width = 420;
  const left = 140;
  const right = width - 140;
  const height = tokens.length * rowHeight + 12;
  const y = (i) => 16 + i * rowHeight;
  const lines = [];
  weights.forEach((row, i) => row.forEach((w, j) => {
    if (w < 0.01) return; // invisible anyway, and fewer elements
    lines.push(svg("line", {
      class: "att", x1: left + 6, y1: y(i) - 4, x2: right - 6, y2: y(j) - 4,
      "stroke-width": (0.5 + 3 * w / top).toFixed(2), "stroke-opacity": (0.1 + 0.9 * w / top).toFixed(3),
      "data-q": i, "data-k": j,
    }));
  }));
  const labels = (side) => tokens.map((token, i) => svg("g", {
    class: `token ${side}${segments[i] ? " seg-b" : ""}`, "data-i": i,
    onmouseenter: () => focus(side === "query" ? i : null, side === "key" ? i : null),
    onmouseleave: () => focus(null, null),
  }, svg("title", { text: token }),
  svg("text", { x: side === "query" ? left : right, y: y(i), "text-anchor": side === "query" ? "end" : "start",
    text: short(token) }),
  svg("text", { class: "weight", x: side === "query" ? 4 : width - 4, y: y(i),
    "text-anchor": side === "query" ? "start" : "end" })));
  return svg("svg", { class: "lines", width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "attention lines from each token (left) to the tokens it attends to (right)" },
  lines, labels("query"), labels("key"));
}

/** A T×T grid: row = the token that attends (query), column = the token attended to (key). */
function drawHeatmap(tokens, segments, weights, focus) {
  const n = tokens.length;
  const top = maximum(weights);
  const cell = Math.max(9, Math.min(26, Math.floor(440 / n)));
  const margin = 110;
  const size = margin + n * cell + 4;
  const cells = [];
  weights.forEach((row, i) => row.forEach((w, j) => {
    cells.push(svg("rect", {
      class: "cell", x: margin + j * cell, y: margin + i * cell, width: cell - 1, height: cell - 1,
      "fill-opacity": Math.max(0.02, w / top).toFixed(3), "data-q": i, "data-k": j,
      onmouseenter: () => focus(i, null), onmouseleave: () => focus(null, null),
    }, svg("title", { text: `${tokens[i]} → ${tokens[j]}: ${fixed(w, 3)}` })));
  }));
  const rowLabels = tokens.map((token, i) => svg("text", {
    class: `row-label${segments[i] ? " seg-b" : ""}`, x: margin - 6, y: margin + i * cell + cell * 0.7,
    "text-anchor": "end", text: short(token),
  }));
  const colLabels = tokens.map((token, j) => {
    const x = margin + j * cell + cell * 0.65;
    return svg("text", { class: "col-label", x, y: margin - 6, "text-anchor": "start",
      transform: `rotate(-60 ${x} ${margin - 6})`, text: short(token) });
  });
  const marker = svg("rect", { class: "marker", x: margin - 1, y: margin, width: n * cell + 1, height: cell });
  return svg("svg", { class: "heatmap", width: size, height: size, viewBox: `0 0 ${size} ${size}`, role: "img",
    "aria-label": "attention heatmap: rows attend to columns" },
  svg("rect", { class: "cell-bg", x: margin, y: margin, width: n * cell, height: n * cell }),
  cells, rowLabels, colLabels, marker);
}

function renderAttention(data) {
  const segments = data.token_type_ids;
  const layerSelect = el("select", { id: "attention-layer", "aria-label": "layer" },
    [...Array(data.layers).keys()].map((l) => el("option", { value: l, text: `layer ${l} (of ${data.layers})` })));
  const headSelect = el("select", { id: "attention-head", "aria-label": "head" },
    el("option", { value: "mean", text: "mean of all heads" }),
    [...Array(data.heads).keys()].map((h) => el("option", { value: h, text: `head ${h} (of ${data.heads})` })));
  headSelect.value = "0";
  const linesPanel = el("div", { class: "panel" });
  const heatPanel = el("div", { class: "panel" });
  const readout = el("p", { class: "caption", text: "hover a token to see where it attends" });

  let weights = [];
  function focus(query, key) {
    const linesSvg = $("svg", linesPanel);
    const marker = $("rect.marker", heatPanel);
    linesSvg.classList.toggle("focused", query !== null || key !== null);
    for (const line of $$("line.att", linesSvg)) {
      const on = (query !== null && +line.dataset.q === query) || (key !== null && +line.dataset.k === key);
      line.classList.toggle("on", on);
    }
    for (const group of $$("g.token", linesSvg)) {
      const i = +group.dataset.i;
      const isQuery = group.classList.contains("query");
      group.classList.toggle("on", isQuery ? i === query : i === key);
      let label = "";
      if (query !== null && !isQuery) label = fixed(weights[query][i]);
      if (key !== null && isQuery) label = fixed(weights[i][key]);
      $("text.weight", group).textContent = label;
    }
    marker.classList.toggle("on", query !== null);
    if (query !== null) {
      marker.setAttribute("y", $(`rect.cell[data-q="${query}"]`, heatPanel).getAttribute("y"));
      const best = weights[query].indexOf(Math.max(...weights[query]));
      readout.textContent = `"${data.tokens[query]}" attends most to "${data.tokens[best]}" `
        + `(${percent(weights[query][best])}).`;
    } else if (key !== null) {
      readout.textContent = `weights with which each token attends to "${data.tokens[key]}"`;
    } else {
      readout.textContent = "hover a token to see where it attends";
    }
  }

  function draw() {
    const layer = data.attentions[+layerSelect.value];
    weights = headSelect.value === "mean" ? meanOfHeads(layer) : layer[+headSelect.value];
    linesPanel.replaceChildren(el("h3", { text: "who attends to whom" }),
      drawLines(data.tokens, segments, weights, focus));
    const title = `attention matrix: rows attend to columns (darkest = ${fixed(maximum(weights))})`;
    heatPanel.replaceChildren(el("h3", { text: title }),
      drawHeatmap(data.tokens, segments, weights, focus));
  }
  layerSelect.addEventListener("change", draw);
  headSelect.addEventListener("change", draw);
  draw();
  return el("div", {},
    el("div", { class: "controls" },
      el("label", {}, "Layer", layerSelect), el("label", {}, "Head", headSelect),
      el("span", { class: "muted", text: `${data.model}: ${data.tokens.length} tokens` })),
    readout,
    el("div", { class: "panels" }, linesPanel, heatPanel));
}

// ---- similarity -----------------------------------------------------------------------------------------------
/** Diverging colour: warm for similar (up to 1), cool for opposite (down to -1), white at 0. */
function similarityColour(value) {
  const strength = Math.min(1, Math.abs(value));
  return value >= 0 ? `rgba(234, 88, 12, ${strength.toFixed(3)})` : `rgba(37, 99, 235, ${strength.toFixed(3)})`;
}

function renderSimilarity(data) {
  const byWord = data.mode === "word";
  const rowLabel = (label, i) => (byWord ? `${i + 1}. ${label}` : label);
  const head = el("tr", {}, el("th", {}),
    data.columns.map((label, j) => el("th", { class: byWord ? "col number" : "col", title: label },
      byWord ? `${j + 1}` : el("span", { text: label }))));
  const rows = data.matrix.map((row, i) => {
    const best = byWord ? -1 : row.indexOf(Math.max(...row));
    return el("tr", {},
      el("th", { class: "row", title: data.rows[i], text: rowLabel(data.rows[i], i) }),
      row.map((v, j) => {
        const td = el("td", { class: j === best ? "best" : null,
          title: `${data.rows[i]} · ${data.columns[j]}: ${fixed(v, 4)}`, text: fixed(v) });
        td.style.backgroundColor = similarityColour(v);
        td.style.color = Math.abs(v) > 0.6 ? "#fff" : "";
        return td;
      }));
  });
  const summary = el("p", { class: "summary", text: byWord
    ? `"${data.word}" in each sentence: cosine similarity of its contextual vectors`
    : `mean-pooled sentence vectors: cosine similarity ${fixed(data.sentence_similarity, 3)}` });
  const caption = byWord ? "1 = the same vector; lower = the context changed the word's vector more."
    : "rows: tokens of sentence 1; columns: tokens of sentence 2; the outlined cell is each row's closest token.";
  return el("div", {}, summary, el("p", { class: "caption", text: `${data.model} · ${caption}` }),
    el("div", { class: "table-wrap" },
      el("table", { class: "heatmap" }, el("thead", {}, head), el("tbody", {}, rows))));
}

// ---- shapes ---------------------------------------------------------------------------------------------------
const DIMENSIONS = {
  B: "batch", T: "tokens", H: "hidden size", N: "heads", D: "head size H/N", I: "intermediate size", V: "vocabulary",
  L: "layers", E: "embedding size (ALBERT)",
};
const PARTS = { embeddings: "input and embeddings", heads: "heads" };

function renderShapes(data) {
  const dims = el("div", { class: "dims" }, Object.entries(data.dims).map(([symbol, size]) =>
    el("span", { class: "dim", title: DIMENSIONS[symbol] || symbol }, el("b", { text: symbol }), ` = ${size} `,
      el("span", { class: "muted", text: DIMENSIONS[symbol] || "" }))));
  const body = [];
  let group;
  data.tensors.forEach((tensor) => {
    const name = tensor.part === "layer" ? `layer ${tensor.layer}` : PARTS[tensor.part];
    if (name !== group) {
      group = name;
      body.push(el("tr", { class: "group" }, el("th", { colspan: 4, text: name })));
    }
    body.push(el("tr", {},
      el("td", { class: "name", text: tensor.name }),
      el("td", { class: "module", text: tensor.module }),
      el("td", { class: "symbols", text: tensor.symbols }),
      el("td", { class: "shape", text: `[${tensor.shape.join(", ")}]` })));
  });
  return el("div", {}, dims, tokenChips(data.tokens, segmentsOf(data.tokens)),
    el("div", { class: "table-wrap" }, el("table", { class: "shapes" },
      el("thead", {}, el("tr", {}, el("th", { text: "tensor" }), el("th", { text: "module" }),
        el("th", { text: "shape" }), el("th", { text: "this input" }))),
      el("tbody", {}, body))));
}

// ---- start ----------------------------------------------------------------------------------------------------
async function showModel() {
  try {
    const info = await api("/api/info");
    $("#model-name").textContent = info.model;
    $("#model-summary").textContent = `${info.model_type} · ${info.layers} layers · hidden ${info.hidden_size} · `
      + `${info.heads} heads · ${(info.parameters / 1e6).toFixed(1)}M parameters · `
      + `${info.max_tokens} positions`;
    SPECIAL = new Set(info.special_tokens);
    if (info.mask_token !== MASK) { // the examples and labels name the model's own mask token
      for (const node of $$("#view-fill-mask code")) node.textContent = info.mask_token;
      const input = $("#fill-mask-text");
      input.value = input.value.replaceAll(MASK, info.mask_token);
      MASK = info.mask_token;
    }
    if (!info.next_sentence) { // RoBERTa, DistilBERT and ALBERT have no next-sentence head
      $("#tab-nsp").hidden = true;
      delete views.nsp;
    }
    document.title = `BERT explorer · ${info.model}`;
    if (info.note) {
      $("#model-note").textContent = `Note: ${info.note}.`;
      $("#model-note").hidden = false;
    }
  } catch (error) {
    $("#model-name").textContent = "unavailable";
    $("#model-summary").textContent = error.message;
  }
}

function start() {
  defineView("fill-mask", "/api/fill-mask", (form) => ({
    text: value(form, "text"), top_k: Math.max(1, Math.min(50, parseInt(value(form, "top_k"), 10) || 5)),
  }), renderFillMask);
  defineView("nsp", "/api/nsp", (form) => ({
    sentence_a: value(form, "sentence_a"), sentence_b: value(form, "sentence_b"),
  }), renderNsp);
  const textAndPair = (form) => ({ text: value(form, "text"), text_pair: optional(form, "text_pair") });
  defineView("attention", "/api/attention", textAndPair, renderAttention);
  defineView("similarity", "/api/similarity", (form) => ({
    sentences: value(form, "sentences").split("\n").map((line) => line.trim()).filter(Boolean),
    word: optional(form, "word"),
  }), renderSimilarity);
  defineView("shapes", "/api/shapes", textAndPair, renderShapes);

  for (const tab of $$(".tabs button")) tab.addEventListener("click", () => showView(tab.dataset.view));
  window.addEventListener("hashchange", () => showView(location.hash.slice(1)));
  // The model's mask token and views are known before the first view asks anything.
  showModel().then(() => showView(location.hash.slice(1)));
}

document.addEventListener("DOMContentLoaded", start);
