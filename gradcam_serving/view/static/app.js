// gradcam-serving view: the page's logic. Plain ES2020, no framework, no build step, nothing from the network
// but this page's own server. The server runs the models; the page draws what they answer.
"use strict";

const MAX_CANVAS_SIDE = 1024; // canvases hold at most this many pixels per side; downloads keep the served PNG
const BLEND = 0.4; // the exporter's default overlay weight, for exports and servers that do not report theirs

const state = {
  config: null,
  luts: {},            // colormap name -> Uint8Array(768)
  image: null,         // {name, data: ArrayBuffer, bitmap: ImageBitmap|null, url}
  classIndex: -1,      // -1: each model's predicted class
  generation: 0,
  pending: 0,
  started: 0,
  controller: null,
  columns: [],         // per model: {model, root, classesList, panels: {method: panel}, errorBox}
  errors: new Set(),
};

const $ = (selector, root = document) => root.querySelector(selector);

// ---------------------------------------------------------------------------------------------------------------
// Decoding the server's answers

function floats(array) {
  if (!array) return null;
  const raw = atob(array.data);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return {shape: array.shape, values: new Float32Array(bytes.buffer), max: array.max};
}

function base64Bytes(text) {
  const raw = atob(text);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

// Bilinear resize with half-pixel centres (tf.image.resize's "bilinear"), so raw maps look like the heatmaps.
function resize(map, height, width) {
  const [h, w] = map.shape;
  const out = new Float32Array(height * width);
  const sy = h / height, sx = w / width;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), h - 1);
    const y0 = Math.floor(fy), y1 = Math.min(y0 + 1, h - 1), dy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), w - 1);
      const x0 = Math.floor(fx), x1 = Math.min(x0 + 1, w - 1), dx = fx - x0;
      const top = map.values[y0 * w + x0] * (1 - dx) + map.values[y0 * w + x1] * dx;
      const bottom = map.values[y1 * w + x0] * (1 - dx) + map.values[y1 * w + x1] * dx;
      out[y * width + x] = top * (1 - dy) + bottom * dy;
    }
  }
  return {shape: [height, width], values: out};
}

// ---------------------------------------------------------------------------------------------------------------
// Drawing

function lutName() {
  const chosen = $("#colormap").value;
  return chosen === "served" ? "jet" : chosen;
}

function rawScale() {
  let max = 0;
  for (const column of state.columns) {
    for (const panel of Object.values(column.panels)) {
      if (panel.answer && panel.answer.cam) max = Math.max(max, panel.answer.cam.max);
    }
  }
  return max;
}

function canvasSize(width, height) {
  const scale = Math.min(1, MAX_CANVAS_SIDE / Math.max(width, height));
  return [Math.max(1, Math.round(width * scale)), Math.max(1, Math.round(height * scale))];
}

function colouredMap(map, divisor, lut) {
  const [h, w] = map.shape;
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(w, h);
  for (let i = 0; i < h * w; i++) {
    const v = divisor > 0 ? Math.min(Math.max(map.values[i] / divisor, 0), 1) : 0;
    const k = Math.round(v * 255) * 3;
    pixels.data[4 * i] = lut[k]; pixels.data[4 * i + 1] = lut[k + 1]; pixels.data[4 * i + 2] = lut[k + 2];
    pixels.data[4 * i + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
  return canvas;
}

function blendAlpha() {
  return Number($("#opacity").value) / 100;
}

function scaleMode() {
  return $("input[name=scale]:checked").value;
}

function drawPanel(panel) {
  const answer = panel.answer;
  const canvas = panel.canvas;
  if (!answer) return;
  const served = $("#colormap").value === "served" && scaleMode() === "normalised";
  const base = served ? answer.overlay : (state.image && state.image.bitmap) || answer.overlay;
  if (!base) return;
  const [width, height] = canvasSize(base.width, base.height);
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const context = canvas.getContext("2d");
  context.globalAlpha = 1;
  context.imageSmoothingEnabled = true;
  const opacity = blendAlpha();
  if (served) {
    // The export's own overlay, pixel for pixel at 100%; lower opacity fades it into the image.
    if (opacity < 1 && state.image && state.image.bitmap) context.drawImage(state.image.bitmap, 0, 0, width, height);
    context.globalAlpha = state.image && state.image.bitmap ? opacity : 1;
    context.drawImage(answer.overlay, 0, 0, width, height);
  } else {
    const raw = scaleMode() === "raw" && answer.cam;
    const map = raw ? resize(answer.cam, answer.heatmap.shape[0], answer.heatmap.shape[1]) : answer.heatmap;
    const divisor = raw ? rawScale() : 1;
    context.drawImage(base, 0, 0, width, height);
    context.globalAlpha = Math.min(1, opacity * panel.blend); // at 100% a redrawn map looks like the served overlay
    context.drawImage(colouredMap(map, divisor, state.luts[lutName()]), 0, 0, width, height);
  }
  context.globalAlpha = 1;
  canvas.setAttribute("aria-label", describePanel(panel));
}

function describePanel(panel) {
  const a = panel.answer.json;
  const how = $("#colormap").value === "served" && scaleMode() === "normalised" ? "as served by the export"
    : `${scaleMode() === "raw" ? "raw cam on the shared scale" : "normalised"}, ${lutName()} colormap`;
  return `${panel.method} map of class ${a.label} (${(100 * a.score).toFixed(1)}%) over ${state.image ? state.image.name : "the image"}, ${how}`;
}

function redrawAll() {
  for (const column of state.columns) for (const panel of Object.values(column.panels)) drawPanel(panel);
  drawColorbar();
}

function drawColorbar() {
  const bar = $("#colorbar");
  const served = $("#colormap").value === "served" && scaleMode() === "normalised";
  bar.hidden = served;
  if (served) return;
  const lut = state.luts[lutName()];
  const canvas = $("#colorbar-canvas");
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(256, 1);
  for (let i = 0; i < 256; i++) {
    pixels.data.set([lut[3 * i], lut[3 * i + 1], lut[3 * i + 2], 255], 4 * i);
  }
  context.putImageData(pixels, 0, 0);
  const raw = scaleMode() === "raw";
  $("#colorbar-min").textContent = "0";
  $("#colorbar-max").textContent = raw ? formatValue(rawScale()) : "1";
  $("#colorbar-what").textContent = raw ? "raw cam, all panels" : "each map's own maximum = 1";
}

function formatValue(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1000 || a < 0.01 ? v.toExponential(2) : v.toPrecision(3);
}

// ---------------------------------------------------------------------------------------------------------------
// Hover and keyboard readout

function readAt(panel, fx, fy) {
  const answer = panel.answer;
  if (!answer) return;
  const [H, W] = answer.heatmap.shape;
  const value = answer.heatmap.values[Math.min(H - 1, Math.floor(fy * H)) * W + Math.min(W - 1, Math.floor(fx * W))];
  let text = `map ${value.toFixed(3)}`;
  if (answer.cam) {
    const [h, w] = answer.cam.shape;
    const raw = answer.cam.values[Math.min(h - 1, Math.floor(fy * h)) * w + Math.min(w - 1, Math.floor(fx * w))];
    text += ` · cam ${formatValue(raw)}`;
    if (scaleMode() === "raw") text += ` (${(100 * raw / (rawScale() || 1)).toFixed(0)}% of the scale)`;
  }
  const px = state.image && state.image.bitmap ? state.image.bitmap.width : (answer.overlay ? answer.overlay.width : W);
  const py = state.image && state.image.bitmap ? state.image.bitmap.height : (answer.overlay ? answer.overlay.height : H);
  panel.readout.textContent = `${text} at x ${Math.floor(fx * px)}, y ${Math.floor(fy * py)}`;
  panel.probe.hidden = false;
  panel.probe.style.left = `${100 * fx}%`;
  panel.probe.style.top = `${100 * fy}%`;
  panel.probePoint = [fx, fy];
}

function attachReadout(panel) {
  const canvas = panel.canvas;
  canvas.addEventListener("pointermove", (event) => {
    const box = canvas.getBoundingClientRect();
    readAt(panel, Math.min(Math.max((event.clientX - box.left) / box.width, 0), 0.9999),
      Math.min(Math.max((event.clientY - box.top) / box.height, 0), 0.9999));
  });
  canvas.addEventListener("pointerleave", () => { panel.probe.hidden = true; });
  canvas.addEventListener("focus", () => readAt(panel, ...(panel.probePoint || [0.5, 0.5])));
  canvas.addEventListener("blur", () => { panel.probe.hidden = true; });
  canvas.addEventListener("keydown", (event) => {
    const step = event.shiftKey ? 0.1 : 0.02;
    const moves = {ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step]};
    if (!moves[event.key]) return;
    event.preventDefault();
    const [fx, fy] = panel.probePoint || [0.5, 0.5];
    readAt(panel, Math.min(Math.max(fx + moves[event.key][0], 0), 0.9999), Math.min(Math.max(fy + moves[event.key][1], 0), 0.9999));
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Building the columns

function field(list, name, value) {
  const dt = document.createElement("dt");
  dt.textContent = name;
  const dd = document.createElement("dd");
  dd.textContent = value;
  list.append(dt, dd);
}

function fillCard(column, card) {
  const list = $(".card-fields", column.root);
  list.replaceChildren();
  field(list, "Source", card.source);
  field(list, "Methods", card.methods.join(", ") + (card.default_method ? ` (default ${card.default_method})` : ""));
  field(list, "Target layer", card.target_layer || "not recorded by this export");
  field(list, "Input size", card.input_size ? `${card.input_size[0]} × ${card.input_size[1]}` : "unknown");
  field(list, "Classes", card.num_classes == null ? "unknown" : `${card.num_classes}${card.labels ? " (labelled)" : card.labels === false ? " (no labels: indices)" : ""}`);
  if (card.max_pixels) field(list, "Pixel limit", `${card.max_pixels.toLocaleString("en")} pixels per image`);
  field(list, "Written by", card.tensorflow_version ? `TensorFlow ${card.tensorflow_version}`
    : card.kind === "server" ? "not reported by the server" : "not recorded");
  if (card.served_version != null) field(list, "Served version", String(card.served_version));
  field(list, "Signatures", card.signatures.join(", "));
  showValidation(column, card);
}

function showValidation(column, card) {
  const verdict = $(".verdict", column.root);
  const button = $(".run-validate", column.root);
  const checks = $(".checks", column.root);
  checks.replaceChildren();
  button.hidden = !card.can_validate;
  verdict.className = "verdict";
  if (!card.can_validate) {
    verdict.textContent = "validate: checks export folders; this model is served";
    return;
  }
  const result = card.validation;
  if (!result) {
    verdict.textContent = "validate: not validated yet (it loads the export again and runs every signature once)";
    return;
  }
  verdict.textContent = `validate: ${result.passed ? "PASS" : "FAIL"}`;
  verdict.classList.add(result.passed ? "pass" : "fail");
  for (const check of result.checks) {
    const item = document.createElement("li");
    item.textContent = `${check.ok === true ? "PASS" : check.ok === false ? "FAIL" : "WARN"} ${check.name}: ${check.detail}`;
    if (check.ok === false) item.className = "fail";
    checks.append(item);
  }
}

async function runValidate(column) {
  const button = $(".run-validate", column.root);
  const verdict = $(".verdict", column.root);
  button.disabled = true;
  verdict.textContent = "validate: running…";
  try {
    const result = await postJson(`/api/validate?model=${column.model.id}`, null);
    column.model.card.validation = result;
  } catch (error) {
    verdict.textContent = `validate: could not run (${error.message})`;
    button.disabled = false;
    return;
  }
  button.disabled = false;
  showValidation(column, column.model.card);
}

function buildColumn(model) {
  const root = $("#column-template").content.firstElementChild.cloneNode(true);
  const title = $(".column-title", root);
  title.textContent = model.name;
  title.id = `column-${model.id}`;
  root.setAttribute("aria-labelledby", title.id);
  const column = {model, root, panels: {}, classesList: $(".classes", root), errorBox: $(".column-error", root)};
  fillCard(column, model.card);
  $(".run-validate", root).addEventListener("click", () => runValidate(column));
  column.classesList.addEventListener("keydown", (event) => moveFocus(event, column.classesList, "button", "ArrowUp", "ArrowDown"));
  const panels = $(".panels", root);
  for (const method of model.methods) {
    const figure = $("#panel-template").content.firstElementChild.cloneNode(true);
    figure.dataset.method = method;
    $(".method", figure).textContent = method;
    const panel = {
      method, figure, canvas: $("canvas", figure), readout: $(".readout", figure), probe: $(".probe", figure),
      busy: $(".busy", figure), png: $(".download-png", figure), json: $(".download-json", figure), answer: null,
      blend: model.card.overlay_alpha == null ? BLEND : model.card.overlay_alpha,
    };
    panel.canvas.setAttribute("aria-label", `${method} map: no image yet`);
    attachReadout(panel);
    panel.json.addEventListener("click", () => downloadJson(column, panel));
    column.panels[method] = panel;
    panels.append(figure);
  }
  $("#columns").append(root);
  return column;
}

function moveFocus(event, container, selector, back, forward) {
  if (event.key !== back && event.key !== forward) return;
  const items = [...container.querySelectorAll(selector)];
  const at = items.indexOf(document.activeElement);
  if (at < 0) return;
  event.preventDefault();
  items[(at + (event.key === forward ? 1 : -1) + items.length) % items.length].focus();
}

function showClasses(column, json) {
  const list = column.classesList;
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.classIndex : null;
  list.replaceChildren();
  for (const entry of json.top) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.classIndex = entry.class_index;
    button.setAttribute("aria-pressed", String(entry.class_index === json.class_index));
    const percent = `${(100 * entry.probability).toFixed(1)}%`;
    button.setAttribute("aria-label", `${entry.label}, ${percent}${entry.class_index === json.class_index ? ", explained" : ""}`);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.label;
    name.title = `class ${entry.class_index}: ${entry.label}`;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(100, 100 * entry.probability))}%`;
    bar.append(fill);
    const p = document.createElement("span");
    p.className = "p";
    p.textContent = percent;
    button.append(name, bar, p);
    button.addEventListener("click", () => explainClass(entry.class_index));
    item.append(button);
    list.append(item);
    if (focused === String(entry.class_index)) button.focus();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Talking to the server

class RequestError extends Error {
  constructor(message, status = 0) { super(message); this.status = status; }
}

async function postJson(url, body, signal) {
  let response;
  try {
    response = await fetch(url, {method: "POST", body, signal});
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new RequestError("the view server is not answering: was it stopped? Start gradcam-serving view again, then retry");
  }
  let json = null;
  try { json = await response.json(); } catch (error) { /* not JSON: said below */ }
  if (!response.ok) throw new RequestError((json && json.error) || `the view server answered ${response.status}`, response.status);
  return json;
}

function setPending(delta) {
  state.pending += delta;
  document.body.dataset.pending = String(state.pending);
  if (state.pending === 0) {
    const seconds = (performance.now() - state.started) / 1000;
    window.gradcamView.lastMs = performance.now() - state.started;
    if (state.image) {
      $("#status").textContent = state.errors.size
        ? `${state.image.name}: could not be explained`
        : `${state.image.name}: ${countPanels()} maps in ${seconds.toFixed(2)} s`;
    }
    document.body.dataset.done = String(state.generation);
  }
}

function countPanels() {
  return state.columns.reduce((n, c) => n + Object.values(c.panels).filter((p) => p.answer).length, 0);
}

function showError(message) {
  if (state.errors.has(message)) return;
  state.errors.add(message);
  const box = $("#error");
  const line = document.createElement("p");
  line.textContent = message;
  box.append(line);
  box.hidden = false;
}

function clearErrors() {
  state.errors.clear();
  $("#error").replaceChildren();
  $("#error").hidden = true;
  for (const column of state.columns) { column.errorBox.hidden = true; column.errorBox.textContent = ""; }
}

async function explainOne(column, panel, generation) {
  const url = `/api/explain?model=${column.model.id}&method=${encodeURIComponent(panel.method)}&class_index=${state.classIndex}`;
  panel.busy.hidden = false;
  try {
    const json = await postJson(url, state.image.data, state.controller.signal);
    if (generation !== state.generation) return;
    const overlay = json.overlay_png
      ? await createImageBitmap(new Blob([base64Bytes(json.overlay_png)], {type: "image/png"}),
        {premultiplyAlpha: "none", colorSpaceConversion: "none"})
      : null;
    if (generation !== state.generation) return;
    panel.answer = {json, overlay, heatmap: floats(json.heatmap), cam: floats(json.cam)};
    if (!column.shownClasses) { showClasses(column, json); column.shownClasses = true; }
    offerPng(panel, json);
    panel.json.hidden = false;
    if (scaleMode() === "raw") redrawAll(); else drawPanel(panel);
    if (panel.probePoint && !panel.probe.hidden) readAt(panel, ...panel.probePoint);
    panel.figure.dataset.classIndex = json.class_index;
  } catch (error) {
    if (error.name === "AbortError" || generation !== state.generation) return;
    panel.answer = null;
    const context = panel.canvas.getContext("2d");
    context.clearRect(0, 0, panel.canvas.width, panel.canvas.height);
    panel.canvas.setAttribute("aria-label", `${panel.method} map: not available (${error.message})`);
    // A file the export refuses (400, 413) is refused by every column alike: said once, without a column's name.
    const imageFault = error.status === 400 || error.status === 413;
    const where = state.columns.length > 1 && !imageFault ? `${column.model.name}: ` : "";
    showError(`${state.image.name}: ${where}${error.message}`);
  } finally {
    if (generation === state.generation) {
      panel.busy.hidden = true;
      setPending(-1);
    }
  }
}

function offerPng(panel, json) {
  if (!json.overlay_png) { panel.png.hidden = true; return; }
  const stem = state.image.name.replace(/\.[^.]*$/, "");
  panel.png.href = `data:image/png;base64,${json.overlay_png}`;
  panel.png.download = `${stem}_${panel.method}_class${json.class_index}.png`;
  panel.png.hidden = false;
  panel.png.setAttribute("aria-label", `Download the ${panel.method} overlay PNG`);
  panel.json.setAttribute("aria-label", `Download the ${panel.method} answer as JSON`);
}

function rows(map) {
  const [h, w] = map.shape;
  const out = [];
  for (let y = 0; y < h; y++) out.push(Array.from(map.values.subarray(y * w, (y + 1) * w)));
  return out;
}

function downloadJson(column, panel) {
  const a = panel.answer.json;
  const document_ = {
    image: state.image.name, model: column.model.name, source: column.model.card.source, method: a.method,
    signature: a.signature, class_index: a.class_index, label: a.label, score: a.score, top: a.top,
    probabilities: a.probabilities, heatmap: rows(panel.answer.heatmap), cam: panel.answer.cam ? rows(panel.answer.cam) : null,
    seconds: a.seconds,
  };
  const blob = new Blob([JSON.stringify(document_)], {type: "application/json"});
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = `${state.image.name.replace(/\.[^.]*$/, "")}_${panel.method}_class${a.class_index}.json`;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

function explainAll() {
  if (!state.image) return;
  if (state.controller) state.controller.abort();
  state.controller = new AbortController();
  state.generation += 1;
  document.body.dataset.generation = String(state.generation);
  state.pending = 0;
  clearErrors();
  const generation = state.generation;
  const jobs = [];
  for (const column of state.columns) {
    column.shownClasses = false;
    for (const panel of Object.values(column.panels)) jobs.push([column, panel]);
  }
  setPending(jobs.length);
  $("#status").textContent = `${state.image.name}: explaining${state.classIndex >= 0 ? ` class ${state.classIndex}` : " the predicted class"}…`;
  // Every method of every column at once: the server runs them side by side in its thread pool.
  for (const [column, panel] of jobs) explainOne(column, panel, generation);
}

function explainClass(classIndex) {
  state.classIndex = classIndex;
  state.started = performance.now();
  explainAll();
}

async function openImage(blob, name) {
  state.started = performance.now();
  if (blob.size > state.config.max_upload) {
    clearErrors();
    showError(`${name}: the file is ${(blob.size / 1e6).toFixed(1)} MB; this page accepts up to ${(state.config.max_upload / 1e6).toFixed(1)} MB`);
    return;
  }
  const data = await blob.arrayBuffer();
  if (state.image && state.image.url) URL.revokeObjectURL(state.image.url);
  const url = URL.createObjectURL(blob);
  state.image = {name, data, bitmap: null, url};
  state.classIndex = -1;
  for (const column of state.columns) {
    column.classesList.replaceChildren();
    for (const panel of Object.values(column.panels)) {
      panel.answer = null;
      panel.canvas.getContext("2d").clearRect(0, 0, panel.canvas.width, panel.canvas.height);
      panel.png.hidden = true;
      panel.json.hidden = true;
      panel.readout.textContent = "hover or focus the map to read values";
    }
  }
  const preview = $("#preview");
  preview.hidden = false;
  preview.onerror = () => { preview.hidden = true; };
  preview.src = url;
  preview.alt = `The image being explained: ${name}`;
  $("#image-name").textContent = name;
  $("#current").hidden = false;
  const image = state.image;
  explainAll();
  // The browser's own decode is only for redrawing with other colormaps; the export decodes the file itself.
  try {
    image.bitmap = await createImageBitmap(blob);
    if (state.image === image && $("#colormap").value !== "served") redrawAll();
  } catch (error) {
    image.bitmap = null;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Opening images: picker, drop, paste, gallery

function firstImageFile(items) {
  for (const item of items) {
    const file = item.getAsFile ? (item.kind === "file" ? item.getAsFile() : null) : item;
    if (file) return file;
  }
  return null;
}

function setUpOpening() {
  $("#file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) openImage(file, file.name);
    event.target.value = "";
  });
  let depth = 0;
  document.addEventListener("dragenter", (event) => { event.preventDefault(); depth += 1; document.body.classList.add("dragging"); });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) document.body.classList.remove("dragging"); });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    const file = firstImageFile(event.dataTransfer.files);
    if (file) openImage(file, file.name);
  });
  document.addEventListener("paste", (event) => {
    const file = firstImageFile(event.clipboardData ? event.clipboardData.items : []);
    if (!file) return;
    event.preventDefault();
    openImage(file, file.name && file.name !== "image.png" ? file.name : "pasted image.png");
  });
}

function setUpGallery(items) {
  if (!items.length) return;
  $("#gallery").hidden = false;
  const list = $("#thumbs");
  for (const item of items) {
    const entry = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.title = item.label ? `${item.name} (${item.label})` : item.name;
    const image = document.createElement("img");
    image.src = `/api/gallery/${item.index}`;
    image.alt = item.label ? `${item.name}, labelled ${item.label}` : item.name;
    image.loading = "lazy";
    button.append(image);
    button.addEventListener("click", async () => {
      for (const other of list.querySelectorAll("button")) other.removeAttribute("aria-current");
      button.setAttribute("aria-current", "true");
      try {
        const response = await fetch(`/api/gallery/${item.index}`);
        if (!response.ok) throw new RequestError(((await response.json()) || {}).error || `status ${response.status}`);
        await openImage(await response.blob(), item.name);
      } catch (error) {
        clearErrors();
        showError(`${item.name}: ${error instanceof RequestError ? error.message : "the view server is not answering"}`);
      }
    });
    entry.append(button);
    list.append(entry);
  }
  list.addEventListener("keydown", (event) => moveFocus(event, list, "button", "ArrowLeft", "ArrowRight"));
}

function setUpControls(colormaps) {
  const select = $("#colormap");
  for (const name of Object.keys(colormaps)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = name;
    select.append(option);
    state.luts[name] = base64Bytes(colormaps[name]);
  }
  select.addEventListener("change", () => {
    if (select.value === "served" && scaleMode() === "raw") $("input[name=scale][value=normalised]").checked = true;
    redrawAll();
  });
  $("#opacity").addEventListener("input", () => {
    $("#opacity-out").textContent = `${$("#opacity").value}%`;
    redrawAll();
  });
  for (const radio of document.querySelectorAll("input[name=scale]")) {
    radio.addEventListener("change", () => {
      if (scaleMode() === "raw" && select.value === "served") select.value = "jet";
      redrawAll();
    });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// --results DIR: an explain-batch output folder (rows, failures, per-class mean heatmaps)

const RESULTS_SHOWN = 1000; // table rows drawn at once; the filter narrows a larger folder
const DETAIL_SIDE = 320;    // a row's heatmap drawn from its raw cam, at most this many pixels per side

const results = {data: null, selected: -1, prefix: ""};

// The folder every input lies under (explain-batch keeps full paths): the table shows what follows it.
function commonFolder(paths) {
  if (!paths.length) return "";
  let prefix = paths[0];
  for (const path of paths) while (!path.startsWith(prefix)) prefix = prefix.slice(0, -1);
  return prefix.slice(0, prefix.lastIndexOf("/") + 1);
}

function shortPath(path) {
  return path && path.startsWith(results.prefix) ? path.slice(results.prefix.length) : path;
}

function fixed(value, digits = 3) {
  return value == null ? "–" : Number(value).toFixed(digits);
}

function classText(index, label) {
  if (index == null) return "–";
  const name = label || (results.data && results.data.labels[String(index)]);
  return name ? `${name} (${index})` : String(index);
}

function fillSelect(select, values) {
  for (const [value, text] of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    select.append(option);
  }
}

function shownRows() {
  const wantClass = $("#results-class").value, wantMethod = $("#results-method").value, sort = $("#results-sort").value;
  const rows = results.data.rows.filter((row) => (wantClass === "" || String(row.explained_class) === wantClass)
    && (wantMethod === "" || row.method === wantMethod));
  const score = (row) => (row.score == null ? -Infinity : row.score);
  if (sort === "score-desc") rows.sort((a, b) => score(b) - score(a) || a.index - b.index);
  else if (sort === "score-asc") rows.sort((a, b) => score(a) - score(b) || a.index - b.index);
  else rows.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.index - b.index));
  return rows;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function renderResultRows() {
  const rows = shownRows();
  const body = $("#results-table tbody");
  body.replaceChildren();
  for (const row of rows.slice(0, RESULTS_SHOWN)) {
    const tr = document.createElement("tr");
    tr.dataset.index = row.index;
    tr.setAttribute("aria-selected", String(row.index === results.selected));
    const first = document.createElement("td");
    first.className = "path";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "link";
    open.textContent = shortPath(row.path);
    open.title = row.path;
    open.setAttribute("aria-label", `Show the ${row.method} map of ${row.path} for ${classText(row.explained_class, row.explained_label)}`);
    first.append(open);
    tr.append(first, cell(row.label || "–"), cell(classText(row.predicted_class)), cell(fixed(row.score), "score"),
      cell(classText(row.explained_class, row.explained_label), "explained"), cell(row.method, "method"),
      cell(row.peak_row == null ? "–" : `${fixed(row.peak_row, 2)}, ${fixed(row.peak_col, 2)}`),
      cell(row.area_above_half == null ? "–" : `${(100 * row.area_above_half).toFixed(1)}%`));
    tr.addEventListener("click", () => showResult(row));
    body.append(tr);
  }
  const sort = $("#results-sort").value;
  $("#results-score-head").setAttribute("aria-sort", sort === "score-desc" ? "descending" : sort === "score-asc" ? "ascending" : "none");
  $("#results-shown").textContent = rows.length > RESULTS_SHOWN
    ? `showing the first ${RESULTS_SHOWN} of ${rows.length} rows: filter to narrow`
    : `${rows.length} of ${results.data.rows.length} rows`;
  document.body.dataset.resultsShown = String(Math.min(rows.length, RESULTS_SHOWN));
}

async function showResult(row) {
  results.selected = row.index;
  for (const tr of document.querySelectorAll("#results-table tbody tr")) {
    tr.setAttribute("aria-selected", String(Number(tr.dataset.index) === row.index));
  }
  const figure = $("#result-detail"), image = $("#result-overlay"), canvas = $("#result-heatmap");
  const what = `${row.method} map of ${shortPath(row.path)} for ${classText(row.explained_class, row.explained_label)}`;
  figure.hidden = false;
  figure.dataset.index = row.index;
  figure.dataset.kind = "";
  figure.dataset.under = "";
  $("#result-caption").textContent = `${what}, score ${fixed(row.score)}: loading…`;
  try {
    if (row.overlay) {
      canvas.hidden = true;
      image.alt = `Overlay: ${what}`;
      const response = await fetch(`/api/results/${row.index}/overlay`);
      if (!response.ok) {
        let json = null;
        try { json = await response.json(); } catch (error) { /* not JSON: said below */ }
        throw new Error((json && json.error) || `the view server answered ${response.status}`);
      }
      const blob = await response.blob();
      if (results.selected !== row.index) return;
      if (image.src.startsWith("blob:")) URL.revokeObjectURL(image.src);
      await new Promise((resolve, reject) => {
        image.onload = resolve;
        image.onerror = () => reject(new Error("the overlay file is not a readable PNG"));
        image.src = URL.createObjectURL(blob);
      });
      image.hidden = false;
      figure.dataset.kind = "overlay";
      $("#result-caption").textContent = `${what}, score ${fixed(row.score)} (overlay written by explain-batch)`;
    } else {
      image.hidden = true;
      const response = await fetch(`/api/results/${row.index}/cam`);
      const json = await response.json();
      if (!response.ok) throw new Error(json.error || `the view server answered ${response.status}`);
      if (results.selected !== row.index) return;
      const cam = {shape: json.shape, values: Float32Array.from(json.cam, (v) => (v == null ? 0 : Math.max(v, 0)))};
      const peak = cam.values.reduce((m, v) => Math.max(m, v), 0);
      const [w, h] = canvasSize(row.width || DETAIL_SIDE, row.height || DETAIL_SIDE);
      const scale = Math.min(1, DETAIL_SIDE / Math.max(w, h));
      const big = resize(cam, Math.max(1, Math.round(h * scale)), Math.max(1, Math.round(w * scale)));
      const drawn = colouredMap(big, peak, state.luts.jet);
      const photo = json.image ? await decodedImage(json.image) : null;
      if (results.selected !== row.index) return;
      canvas.width = drawn.width; canvas.height = drawn.height;
      drawOver(canvas.getContext("2d"), photo, drawn);
      canvas.setAttribute("aria-label", `Heatmap from the raw cam${photo ? " over the image" : ""}: ${what}`);
      canvas.hidden = false;
      figure.dataset.kind = "cam";
      figure.dataset.under = photo ? "image" : "none";
      const under = photo ? `, over the image at ${Math.round(100 * BLEND)}%` : `; ${json.image_problem || "no image"}, so the map alone`;
      $("#result-caption").textContent = `${what}, score ${fixed(row.score)} (heatmap from the raw cam ` +
        `${cam.shape[0]}×${cam.shape[1]}, max ${peak.toPrecision(3)}, jet${under}; no overlay was written)`;
    }
  } catch (error) {
    image.hidden = true; canvas.hidden = true;
    $("#result-caption").textContent = `${what}: ${error.message}`;
  }
}

// A data URL's picture, decoded (a row's input image, sent with its cam).
async function decodedImage(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  return image;
}

// The map over the image as the live panels and explain-batch's overlays blend it; the map alone without an image.
function drawOver(context, photo, map) {
  const {width, height} = context.canvas;
  if (photo) context.drawImage(photo, 0, 0, width, height);
  context.globalAlpha = photo ? BLEND : 1;
  context.drawImage(map, 0, 0, width, height);
  context.globalAlpha = 1;
}

function drawSummary(summary) {
  const list = $("#summary-classes");
  list.replaceChildren();
  if (!summary) { $("#summary-empty").hidden = false; return; }
  for (const entry of summary.classes || []) {
    const item = document.createElement("li");
    const figure = document.createElement("figure");
    figure.className = entry.flagged ? "summary-class flagged" : "summary-class";
    figure.dataset.classIndex = entry.class_index;
    figure.dataset.method = entry.method;
    const grid = entry.mean_heatmap || [[0]];
    const map = {shape: [grid.length, grid[0].length], values: Float32Array.from(grid.flat())};
    const canvas = document.createElement("canvas");
    const drawn = colouredMap(map, 1, state.luts.jet);
    canvas.width = drawn.width; canvas.height = drawn.height;
    canvas.getContext("2d").drawImage(drawn, 0, 0);
    canvas.setAttribute("role", "img");
    const border = `${(100 * entry.border_share).toFixed(0)}% of the strong evidence in the border band`;
    canvas.setAttribute("aria-label", `Mean ${entry.method} heatmap of ${entry.count} images explained as ${entry.label}: ${border}` +
      (entry.flagged ? ", flagged as a possible shortcut" : ""));
    const caption = document.createElement("figcaption");
    const name = document.createElement("strong");
    name.className = "summary-label";
    name.textContent = entry.label;
    caption.append(name, ` (${entry.class_index}) · ${entry.method} · n=${entry.count} · mean score ${fixed(entry.mean_score)} · border ${fixed(entry.border_share, 2)}`);
    if (entry.flagged) {
      const flag = document.createElement("span");
      flag.className = "flag";
      flag.textContent = "⚠ flagged: shortcut?";
      caption.append(flag);
    }
    figure.append(canvas, caption);
    item.append(figure);
    list.append(item);
  }
}

function listFailed(failed) {
  const list = $("#failed-list");
  list.replaceChildren();
  $("#failed-count").textContent = `(${failed.length})`;
  if (!failed.length) {
    const none = document.createElement("li");
    none.textContent = "none";
    list.append(none);
  }
  for (const entry of failed) {
    const item = document.createElement("li");
    const path = document.createElement("strong");
    path.className = "failed-path";
    path.textContent = shortPath(entry.path);
    path.title = entry.path;
    const stage = document.createElement("span");
    stage.className = "stage";
    stage.textContent = ` (${entry.stage}) `;
    item.append(path, stage, entry.error || "");
    list.append(item);
  }
}

async function setUpResults() {
  $("#results").hidden = false;
  let data;
  try {
    const response = await fetch("/api/results");
    data = await response.json();
    if (!response.ok) throw new Error(data.error || `the view server answered ${response.status}`);
  } catch (error) {
    showError(`results: ${error.message}`);
    return;
  }
  results.data = data;
  results.prefix = commonFolder([...data.rows, ...data.failed].map((entry) => entry.path || ""));
  $("#results-folder").textContent = `(${data.folder}${results.prefix ? `; images under ${results.prefix}` : ""})`;
  const summary = data.summary;
  $("#results-counts").textContent = summary
    ? `${summary.images} images explained, ${summary.failed} failed, ${summary.rows} rows`
    : `${data.rows.length} rows, ${data.failed.length} failed`;
  if (data.problems.length) {
    $("#results-problems").textContent = data.problems.join("; ");
    $("#results-problems").hidden = false;
  }
  const classes = new Map();
  for (const row of data.rows) if (row.explained_class != null) classes.set(row.explained_class, row.explained_label);
  fillSelect($("#results-class"), [...classes.entries()].sort((a, b) => a[0] - b[0])
    .map(([index, label]) => [String(index), classText(index, label)]));
  fillSelect($("#results-method"), [...new Set(data.rows.map((row) => row.method))].sort().map((m) => [m, m]));
  for (const id of ["#results-class", "#results-method", "#results-sort"]) $(id).addEventListener("change", renderResultRows);
  $("#results-table tbody").addEventListener("keydown", (event) => moveFocus(event, $("#results-table tbody"), "button", "ArrowUp", "ArrowDown"));
  renderResultRows();
  drawSummary(summary);
  listFailed(data.failed);
  document.body.dataset.results = "ready";
}

async function start() {
  window.gradcamView = {state, lastMs: null};
  try {
    const response = await fetch("/api/config");
    state.config = await response.json();
  } catch (error) {
    showError("the view server is not answering: start gradcam-serving view again, then reload");
    return;
  }
  setUpControls(state.config.colormaps);
  if (state.config.models.length) {
    state.columns = state.config.models.map(buildColumn);
    setUpGallery(state.config.gallery);
    setUpOpening();
    drawColorbar();
  } else {
    // --results alone: nothing to explain live, so only the results section shows.
    for (const id of [".open", "#controls", "#status", "#columns"]) $(id).hidden = true;
    $(".skip").href = "#results";
    $(".skip").textContent = "Skip to the results";
  }
  if (state.config.results) await setUpResults();
  document.body.dataset.ready = "true";
}

start();
