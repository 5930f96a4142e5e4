"use strict";
/* cnnlab explore: the page's whole program. It reads the JSON document embedded in the page
   (written by cnnlab.viz.explore.document), recomputes the layers whose values are not stored
   (ReLU, batch norm, additions, pooling, flatten) with the same functions that spell out their
   arithmetic, and draws. No network access, no libraries: it works from a file. */
(function () {
  const DOC = JSON.parse(document.getElementById("cnnlab-data").textContent);
  const NET = DOC.network;
  const LABELS = DOC.labels;
  const NODES = new Map(NET.nodes.map((n) => [n.id, n]));
  const INPUT = -1;
  const state = { lang: DOC.lang, image: 0, node: null, channel: 0, unit: null, pinned: false, camClass: null };
  const cache = new Map();
  const unpacked = new WeakMap();

  // ---- helpers --------------------------------------------------------------------------
  function t(key, args) {
    let text = (LABELS[state.lang] && LABELS[state.lang][key]) || LABELS.en[key] || key;
    for (const name in args || {}) text = text.split("{" + name + "}").join(String(args[name]));
    return text;
  }
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value);
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }
  function unpack(p) {
    if (unpacked.has(p)) return unpacked.get(p);
    const binary = atob(p.data);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    const array = p.dtype === "f4" ? new Float32Array(bytes.buffer) : bytes;
    unpacked.set(p, array);
    return array;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    if (v === 0) return "0";
    if (!Number.isFinite(v)) return v > 0 ? "inf" : "-inf";
    let s = Number(v).toPrecision(digits || 7);
    let exponent = "";
    if (s.includes("e")) [s, exponent] = [s.split("e")[0], "e" + s.split("e")[1]];
    if (s.includes(".")) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s + exponent;
  }
  const short = (v) => fmt(v, 4);
  const whole = (v) => (Math.abs(v - Math.round(v)) < 1e-9 ? String(Math.round(v)) : v.toFixed(1));
  const dims = (shape) => shape.join("×");
  function nodeName(id) { return id === INPUT ? t("input") : NODES.get(id).name; }

  // ---- colour maps ----------------------------------------------------------------------
  function lut(stops) {
    const table = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const x = (i / 255) * (stops.length - 1);
      const k = Math.min(Math.floor(x), stops.length - 2);
      const f = x - k;
      for (let c = 0; c < 3; c++) table[i * 3 + c] = stops[k][c] + f * (stops[k + 1][c] - stops[k][c]);
    }
    return table;
  }
  const VIRIDIS = lut([[68, 1, 84], [71, 44, 122], [59, 81, 139], [44, 113, 142], [33, 144, 141],
    [39, 173, 129], [92, 200, 99], [170, 220, 50], [253, 231, 37]]);
  const DIVERGING = lut([[5, 48, 97], [67, 147, 195], [209, 229, 240], [247, 247, 247], [253, 219, 199],
    [214, 96, 77], [103, 0, 31]]);
  const HEAT = lut([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]]);

  function scaleOf(data) {  // over the finite values; inf and NaN are drawn grey
    let lo = Infinity, hi = -Infinity, bad = 0;
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (!Number.isFinite(v)) { bad++; continue; }
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo)) { lo = 0; hi = 0; }
    if (bad) return { lo: lo < 0 && hi > 0 ? -Math.max(-lo, hi) : lo, hi: lo < 0 && hi > 0 ? Math.max(-lo, hi) : hi,
      table: lo < 0 && hi > 0 ? DIVERGING : VIRIDIS, bad };
    if (lo < 0 && hi > 0) { const m = Math.max(-lo, hi); return { lo: -m, hi: m, table: DIVERGING }; }
    return { lo: lo, hi: hi, table: VIRIDIS };
  }
  function colour(scale, v) {
    if (!Number.isFinite(v)) return [150, 150, 150];
    const span = scale.hi - scale.lo;
    const i = span > 0 ? Math.max(0, Math.min(255, Math.round(((v - scale.lo) / span) * 255))) : 128;
    return [scale.table[i * 3], scale.table[i * 3 + 1], scale.table[i * 3 + 2]];
  }
  function colourBar(scale, label) {
    const bar = el("canvas", { width: 180, height: 10 });
    const ctx = bar.getContext("2d");
    for (let x = 0; x < 180; x++) {
      const [r, g, b] = colour(scale, scale.lo + ((scale.hi - scale.lo) * x) / 179);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(x, 0, 1, 10);
    }
    return el("div", { class: "scale" }, el("span", { text: short(scale.lo) }), bar, el("span", { text: short(scale.hi) }),
      el("span", { text: label || "" }));
  }

  // ---- values: stored, or recomputed by the rules below ------------------------------------
  function values(index) {
    if (cache.has(index)) return cache.get(index);
    const record = DOC.images[index];
    const vals = new Map();
    vals.set(INPUT, { data: unpack(record.input), shape: record.input.shape });
    for (const node of NET.nodes) {
      const stored = record.values[String(node.id)];
      const rest = record.rest[String(node.id)] ? unpack(record.rest[String(node.id)]) : null;
      let v = null;
      if (stored) v = { data: unpack(stored), shape: stored.shape };
      else if (node.derive) v = derive(node, vals, rest);
      if (v) {
        v.scale = scaleOf(v.data);
        v.rest = rest;
        vals.set(node.id, v);
      }
    }
    cache.set(index, vals);
    return vals;
  }
  const at = (v, c, y, x) => v.data[(c * v.shape[1] + y) * v.shape[2] + x];

  function derive(node, vals, rest) {
    const src = vals.get(node.sources[0]);
    if (!src) return null;
    const n = src.data.length;
    if (node.derive === "conv") return convMap(node, src, rest);
    if (node.derive === "identity") return { data: src.data, shape: src.shape };
    if (node.derive === "flatten") return { data: src.data, shape: [n], from: src.shape };
    const out = new Float32Array(node.derive === "pool" ? 0 : n);
    if (node.derive === "relu") for (let i = 0; i < n; i++) out[i] = src.data[i] > 0 ? src.data[i] : 0;
    if (node.derive === "add") {
      const other = vals.get(node.sources[1]);
      if (!other || other.data.length !== n) return null;
      for (let i = 0; i < n; i++) out[i] = src.data[i] + other.data[i];
    }
    if (node.derive === "bn") {
      const per = src.shape[1] * src.shape[2];
      for (let c = 0; c < src.shape[0]; c++) {
        const a = node.bn.scale[c], b = node.bn.shift[c];
        for (let i = c * per; i < (c + 1) * per; i++) out[i] = src.data[i] * a + b;
      }
    }
    if (node.derive === "pool") {
      const [k, h, w] = [src.shape[0], node.shape[1], node.shape[2]];
      const pooled = new Float32Array(k * h * w);
      for (let c = 0; c < k; c++) for (let y = 0; y < h; y++) for (let x = 0; x < w; x++)
        pooled[(c * h + y) * w + x] = poolUnit(node, src, c, y, x).result;
      return { data: pooled, shape: [k, h, w] };
    }
    return { data: out, shape: src.shape };
  }

  function poolUnit(node, src, c, y, x) {
    const [, H, W] = src.shape;
    const mode = node.pool.mode;
    const cells = [];
    let ys, xs, divisor = null;
    if (mode.startsWith("adaptive")) {
      const [oh, ow] = [node.shape[1], node.shape[2]];
      ys = [Math.floor((y * H) / oh), Math.ceil(((y + 1) * H) / oh)];
      xs = [Math.floor((x * W) / ow), Math.ceil(((x + 1) * W) / ow)];
      for (let iy = ys[0]; iy < ys[1]; iy++) for (let ix = xs[0]; ix < xs[1]; ix++)
        cells.push({ iy, ix, inside: true, v: at(src, c, iy, ix) });
      divisor = cells.length;
    } else {
      const win = node.window;
      const y0 = y * win.stride[0] - win.padding[0], x0 = x * win.stride[1] - win.padding[1];
      for (let i = 0; i < win.kernel[0]; i++) for (let j = 0; j < win.kernel[1]; j++) {
        const iy = y0 + i * win.dilation[0], ix = x0 + j * win.dilation[1];
        const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
        cells.push({ iy, ix, inside, v: inside ? at(src, c, iy, ix) : null });
      }
      if (mode === "avg") {  // PyTorch's avg_pool2d: the window clipped to the padded input, then to the input
        const hend = Math.min(y0 + win.kernel[0], H + win.padding[0]), wend = Math.min(x0 + win.kernel[1], W + win.padding[1]);
        const padded = (hend - y0) * (wend - x0);
        const inner = (Math.min(hend, H) - Math.max(y0, 0)) * (Math.min(wend, W) - Math.max(x0, 0));
        divisor = node.pool.divisor || (node.pool.countIncludePad ? padded : inner);
      }
    }
    const inside = cells.filter((cell) => cell.inside);
    let result, sum = 0, best = null;
    if (mode.endsWith("max")) {
      result = -Infinity;
      for (const cell of inside) if (cell.v > result) { result = cell.v; best = cell; }
    } else {
      for (const cell of inside) sum += cell.v;
      result = sum / divisor;
    }
    return { cells, result, sum, divisor, best, max: mode.endsWith("max") };
  }

  // One output unit of a convolution, for the arithmetic panel: Σ kernel weight × input over the held
  // input channels (zero padding outside the input), plus `rest` (cnnlab's exact sum over the
  // channels not held) and the bias, with every window position.
  function convUnit(node, src, rest, c, y, x) {
    const weights = unpack(node.weights);
    const [, J, kh, kw] = node.weights.shape;
    const win = node.window;
    const [, H, W] = src.shape;
    const perGroup = node.inChannels / node.groups;
    const group = Math.floor(c / (node.shape[0] / node.groups));
    const channels = [];
    let shown = 0, count = 0;
    for (let j = 0; j < J; j++) {
      const ci = group * perGroup + j;
      if (ci >= src.shape[0]) continue;
      count++;
      const cells = [];
      const base = (c * J + j) * kh;
      for (let i = 0; i < kh; i++) {
        const iy = y * win.stride[0] - win.padding[0] + i * win.dilation[0];
        for (let k = 0; k < kw; k++) {
          const ix = x * win.stride[1] - win.padding[1] + k * win.dilation[1];
          const inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
          const v = inside ? src.data[(ci * H + iy) * W + ix] : 0;
          const w = weights[(base + i) * kw + k];
          shown += w * v;
          cells.push({ iy, ix, inside, v, w, p: w * v });
        }
      }
      channels.push({ channel: ci, cells });
    }
    const r = rest ? rest[(c * node.shape[1] + y) * node.shape[2] + x] : 0;
    const bias = node.bias ? node.bias[c] : 0;
    return { channels, shown, rest: r, hidden: perGroup - count, bias, total: shown + r + bias, kh, kw };
  }

  // The whole map at once, summing in convUnit's order (held channel, kernel row, kernel column)
  // for every unit, so each value is the total its arithmetic shows: for each kernel position the
  // valid output rows and columns are found once, and the inner loop runs without branches.
  function convMap(node, src, rest) {
    const weights = unpack(node.weights);
    const [K, J, kh, kw] = node.weights.shape;
    const [, H, W] = src.shape;
    const [h, w] = [node.shape[1], node.shape[2]];
    const [sy, sx] = node.window.stride, [py, px] = node.window.padding, [dy, dx] = node.window.dilation;
    const perGroup = node.inChannels / node.groups;
    const out = new Float32Array(K * h * w);
    const acc = new Float64Array(h * w);
    const span = (s, p, d, i, n, size) => {  // outputs o < n whose input o·s − p + i·d lies in 0..size-1
      const lo = Math.max(0, Math.ceil((p - i * d) / s)), hi = Math.min(n - 1, Math.floor((size - 1 + p - i * d) / s));
      return [lo, hi];
    };
    for (let c = 0; c < K; c++) {
      acc.fill(0);
      const group = Math.floor(c / (node.shape[0] / node.groups));
      for (let j = 0; j < J; j++) {
        const ci = group * perGroup + j;
        if (ci >= src.shape[0]) continue;
        const plane = ci * H * W;
        for (let i = 0; i < kh; i++) {
          const [y0, y1] = span(sy, py, dy, i, h, H);
          for (let k = 0; k < kw; k++) {
            const [x0, x1] = span(sx, px, dx, k, w, W);
            const wt = weights[((c * J + j) * kh + i) * kw + k];
            for (let y = y0; y <= y1; y++) {
              const row = plane + (y * sy - py + i * dy) * W - px + k * dx;
              const o = y * w;
              for (let x = x0; x <= x1; x++) acc[o + x] += wt * src.data[row + x * sx];
            }
          }
        }
      }
      const bias = node.bias ? node.bias[c] : 0;
      for (let u = 0; u < h * w; u++) out[c * h * w + u] = acc[u] + (rest ? rest[c * h * w + u] : 0) + bias;
    }
    return { data: out, shape: [K, h, w] };
  }

  // ---- header, inputs, language ---------------------------------------------------------
  function renderHeader() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.getElementById("lang").textContent = t("language");
    document.getElementById("title").textContent = NET.title;
    const [c, h, w] = NET.inputShape;
    document.getElementById("subtitle").textContent =
      `${t("inputDims")} ${c}×${h}×${w} · ${NET.params.toLocaleString("en")} ${t("params")} · ` +
      `${NET.macs.toLocaleString("en")} ${t("macs")}`;
    const warn = document.getElementById("weights");
    warn.textContent = NET.trained ? t("trainedRun", { run: NET.run }) : t("randomWeights");
    warn.style.display = NET.trained ? "none" : "block";
    for (const node of document.querySelectorAll("[data-l]")) node.textContent = t(node.dataset.l);
    document.getElementById("overview-help").textContent =
      NET.depth === null ? t("overviewHelpUnfolded") : t("overviewHelp", { depth: NET.depth });
    document.getElementById("limit").textContent =
      NET.channels < NET.widest ? t("channelLimit", { channels: NET.channels, widest: NET.widest }) : "";
  }

  function renderInputs() {
    const box = document.getElementById("inputs");
    box.replaceChildren();
    DOC.images.forEach((record, i) => {
      const top = topClass(record);
      const caption = record.label !== null && record.label !== undefined
        ? `${record.name} (${t("truth")} ${record.label})` : record.name;
      const pick = el("button", { type: "button", class: "pick" + (i === state.image ? " on" : ""), title: caption,
        onclick: () => { state.image = i; state.camClass = null; renderAll(); } },
      el("img", { src: record.picture, alt: caption }), el("div", { text: caption }),
      top === null ? null : el("div", { text: `${t("predicted")} ${NET.classes[top] ?? top}` }));
      box.append(pick);
    });
  }

  // ---- overview -------------------------------------------------------------------------
  const CARD = 150, GAP_X = 46, GAP_Y = 22, TOP = 36, INNER = 142;

  function thumbLayout(v) {
    if (v.shape.length === 3) {
      const k = v.shape[0];
      const cols = k <= 2 ? k : k <= 6 ? 2 : k <= 16 ? 4 : 8;
      const size = Math.floor((INNER - (cols - 1) * 2) / cols);
      const aspect = v.shape[1] / v.shape[2];
      return { cols, rows: Math.ceil(k / cols), w: size, h: Math.max(2, Math.round(size * aspect)), gap: 2, count: k };
    }
    const n = v.data.length;
    const cols = Math.min(n, n <= 16 ? n : Math.ceil(Math.sqrt(n * 4)));
    const size = Math.max(1, Math.floor(INNER / cols));
    return { cols, rows: Math.ceil(n / cols), w: size, h: size, gap: 0, count: n, vector: true };
  }

  function drawThumbs(canvas, v) {
    const L = thumbLayout(v);
    canvas.width = L.cols * (L.w + L.gap) - L.gap;
    canvas.height = L.rows * (L.h + L.gap) - L.gap;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(canvas.width, canvas.height);
    const px = image.data;
    for (let n = 0; n < L.count; n++) {
      const ox = (n % L.cols) * (L.w + L.gap), oy = Math.floor(n / L.cols) * (L.h + L.gap);
      for (let py = 0; py < L.h; py++) for (let qx = 0; qx < L.w; qx++) {
        const value = L.vector ? v.data[n]
          : at(v, n, Math.floor((py * v.shape[1]) / L.h), Math.floor((qx * v.shape[2]) / L.w));
        const [r, g, b] = colour(v.scale, value);
        const o = ((oy + py) * canvas.width + ox + qx) * 4;
        px[o] = r; px[o + 1] = g; px[o + 2] = b; px[o + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    canvas.dataset.cols = L.cols; canvas.dataset.cellW = L.w + L.gap; canvas.dataset.cellH = L.h + L.gap;
    return L;
  }

  function renderGraph() {
    const graph = document.getElementById("graph");
    graph.replaceChildren();
    const vals = values(state.image);
    const record = DOC.images[state.image];
    const cards = new Map();
    const inputCard = el("div", { class: "card kind-input", "data-node": INPUT },
      el("div", { class: "name", text: t("input") }), el("div", { class: "meta", text: dims(NET.inputShape) }),
      el("img", { src: record.picture, width: INNER, style: "image-rendering: pixelated; display:block" }));
    cards.set(INPUT, { el: inputCard, column: 0, row: 0 });
    graph.append(inputCard);
    for (const node of NET.nodes) {
      const v = vals.get(node.id);
      const card = el("div", { class: `card kind-${node.kind}` + (state.node === node.id ? " on" : ""),
        "data-node": node.id, title: `${node.name}: ${node.type}` },
      el("div", { class: "name", text: node.name }),
      el("div", { class: "meta", text: `${node.type} · ${dims(node.shape)}` }),
      el("div", { class: "meta", text: `${node.params.toLocaleString("en")} ${t("params")}` }));
      if (v) {
        const canvas = el("canvas", { "data-node": node.id });
        drawThumbs(canvas, v);
        canvas.addEventListener("click", (event) => {
          const cols = +canvas.dataset.cols;
          const col = Math.floor(event.offsetX / +canvas.dataset.cellW), row = Math.floor(event.offsetY / +canvas.dataset.cellH);
          const n = Math.min(row * cols + col, thumbLayout(v).count - 1);
          if (v.shape.length === 3) select(node.id, n, null);
          else select(node.id, 0, [n]);
        });
        card.append(canvas);
        if (v.scale.bad) card.append(el("div", { class: "meta flag", text: t("notFinite", { count: v.scale.bad }) }));
        const kept = v.shape.length === 3 ? v.shape[0] : v.data.length;
        const total = node.shape.length === 3 ? node.shape[0] : node.shape[0];
        if (kept < total) card.append(el("div", { class: "meta", text: `${kept} ${t("of")} ${total}` }));
      }
      cards.set(node.id, { el: card, column: node.column, row: node.row });
      graph.append(card);
    }
    const heights = new Map();
    for (const info of cards.values()) {
      info.height = info.el.offsetHeight;
      heights.set(info.row, Math.max(heights.get(info.row) || 0, info.height));
    }
    const rowTop = new Map();
    let y = TOP;
    for (const row of [...heights.keys()].sort((a, b) => a - b)) { rowTop.set(row, y); y += heights.get(row) + GAP_Y; }
    let width = 0;
    for (const info of cards.values()) {
      info.x = 8 + info.column * (CARD + GAP_X);
      info.y = rowTop.get(info.row);
      info.el.style.left = info.x + "px";
      info.el.style.top = info.y + "px";
      width = Math.max(width, info.x + CARD + 8);
    }
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("width", width);
    svg.setAttribute("height", y);
    svg.innerHTML = '<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="7" markerHeight="7" ' +
      'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#777"/></marker></defs>';
    for (const node of NET.nodes) {
      for (const source of node.sources) svg.append(edge(cards.get(source), cards.get(node.id), cards));
    }
    graph.prepend(svg);
    graph.style.height = Math.min(y + 24, 680) + "px";
  }

  function edge(from, to, cards) {
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    const sx = from.x + CARD, sy = from.y + Math.min(from.height / 2, 40);
    const tx = to.x, ty = to.y + Math.min(to.height / 2, 40);
    let d;
    const between = [...cards.values()].filter((c) => c.column > from.column && c.column < to.column &&
      c.y <= sy && c.y + c.height >= sy);
    if (to.column === from.column + 1 || between.length === 0) {
      const bend = Math.max(tx - 30, sx);
      d = `M${sx},${sy} L${bend},${sy} C${bend + 20},${sy} ${tx - 10},${ty} ${tx},${ty}`;
    } else {  // a skip connection: over the top of the layers it skips
      const lane = Math.min(from.y, to.y) - 14;
      const ax = from.x + CARD / 2, bx = to.x + CARD / 2;
      d = `M${ax},${from.y} C${ax},${lane} ${ax},${lane} ${ax + 20},${lane} L${bx - 20},${lane} C${bx},${lane} ${bx},${lane} ${bx},${to.y}`;
      path.setAttribute("stroke-dasharray", "5 3");
    }
    path.setAttribute("d", d);
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "#777");
    path.setAttribute("stroke-width", "1.3");
    path.setAttribute("marker-end", "url(#arrow)");
    return path;
  }

  // ---- a map in detail --------------------------------------------------------------------
  function select(nodeId, channel, unit) {
    state.node = nodeId;
    state.channel = channel;
    const node = NODES.get(nodeId);
    const v = values(state.image).get(nodeId);
    if (unit) state.unit = unit;
    else if (node.shape.length === 3) state.unit = [Math.floor(node.shape[1] / 2), Math.floor(node.shape[2] / 2)];
    else state.unit = [0];
    state.pinned = !!unit;
    if (v && node.shape.length === 1) state.unit = [Math.min(state.unit[0], v.data.length - 1)];
    for (const card of document.querySelectorAll(".card")) card.classList.toggle("on", +card.dataset.node === nodeId);
    renderDetail();
  }

  function layerFacts(node) {
    const facts = [[t("inputDims"), node.sources.map((s) => dims(s === INPUT ? NET.inputShape : NODES.get(s).shape)).join(" + ")],
      [t("outputDims"), dims(node.shape)]];
    if (node.window) {
      facts.push([t("kernel"), node.window.kernel.join("×")], [t("stride"), node.window.stride.join("×")],
        [t("paddingLabel"), node.window.padding.join("×")]);
      if (node.window.dilation.some((d) => d !== 1)) facts.push([t("dilation"), node.window.dilation.join("×")]);
    }
    facts.push([t("params"), node.params.toLocaleString("en")]);
    return el("table", { class: "num" }, ...facts.map(([k, v]) => el("tr", {}, el("th", { text: k }), el("td", { text: v }))));
  }

  function renderDetail() {
    const box = document.getElementById("detail");
    box.replaceChildren();
    if (state.node === null) return;
    const node = NODES.get(state.node);
    const v = values(state.image).get(node.id);
    if (!v) { box.append(el("p", { text: t("noArithmetic") })); return; }
    const map = el("div", { class: "panel", id: "map" });
    const source = node.derive ? t("derived", { source: node.sources.map(nodeName).join(", ") }) : t("stored");
    map.append(el("h3", { text: `${node.name} (${node.type})` + (node.shape.length === 3
      ? ` · ${t("channel")} ${state.channel} ${t("of")} ${node.shape[0]}` : "") }), el("div", { class: "help", text: source }));
    if (node.shape.length === 3) {
      const [h, w] = [node.shape[1], node.shape[2]];
      const cell = Math.max(2, Math.floor(280 / Math.max(h, w)));
      const canvas = el("canvas", { width: w * cell, height: h * cell, id: "map-canvas", "data-cell": cell,
        "data-h": h, "data-w": w });
      drawMap(canvas, v, cell);
      const pick = (event, pin) => {
        const y = Math.min(h - 1, Math.floor(event.offsetY / cell)), x = Math.min(w - 1, Math.floor(event.offsetX / cell));
        if (pin) state.pinned = true;
        else if (state.pinned) return;
        state.unit = [y, x];
        drawMap(canvas, v, cell);
        renderUnit();
      };
      canvas.addEventListener("mousemove", (e) => pick(e, false));
      canvas.addEventListener("click", (e) => pick(e, true));
      let lo = Infinity, hi = -Infinity;
      for (let i = state.channel * h * w; i < (state.channel + 1) * h * w; i++) {
        lo = Math.min(lo, v.data[i]); hi = Math.max(hi, v.data[i]);
      }
      map.append(canvas, colourBar(v.scale, t("colourScale")),
        el("div", { class: "help", text: t("channelRange", { min: short(lo), max: short(hi) }) }));
    } else {
      const canvas = el("canvas", { id: "map-canvas" });
      drawThumbs(canvas, v);
      canvas.addEventListener("click", (event) => {
        const cols = +canvas.dataset.cols;
        const i = Math.floor(event.offsetY / +canvas.dataset.cellH) * cols + Math.floor(event.offsetX / +canvas.dataset.cellW);
        state.unit = [Math.min(i, v.data.length - 1)];
        state.pinned = true;
        renderUnit();
      });
      map.append(canvas, colourBar(v.scale, t("colourScale")));
      if (v.data.length < node.shape[0]) map.append(el("div", { class: "help", text: t("firstValues", { count: v.data.length, total: node.shape[0] }) }));
    }
    map.append(layerFacts(node));
    if (node.kind === "block") map.append(el("p", { class: "help", text: t("blockNote") }));
    box.append(map, el("div", { class: "panel", id: "field" }), el("div", { class: "panel", id: "unit" }));
    if (node.kind === "conv") box.append(kernelPanel(node));
    renderUnit();
  }

  function drawMap(canvas, v, cell) {
    const [h, w] = [v.shape[1], v.shape[2]];
    const ctx = canvas.getContext("2d");
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const [r, g, b] = colour(v.scale, at(v, state.channel, y, x));
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(x * cell, y * cell, cell, cell);
    }
    if (state.unit && state.unit.length === 2) {
      ctx.strokeStyle = "#ff2d00";
      ctx.lineWidth = 2;
      ctx.strokeRect(state.unit[1] * cell + 1, state.unit[0] * cell + 1, cell - 2, cell - 2);
    }
  }

  function kernelPanel(node) {
    const panel = el("div", { class: "panel", id: "kernel-panel" }, el("h3", { text: t("kernels") }));
    const weights = unpack(node.weights);
    const [, J, kh, kw] = node.weights.shape;
    const c = state.channel;
    const perGroup = node.inChannels / node.groups;
    const group = Math.floor(c / (node.shape[0] / node.groups));
    let lo = Infinity, hi = -Infinity;
    for (let i = c * J * kh * kw; i < (c + 1) * J * kh * kw; i++) { lo = Math.min(lo, weights[i]); hi = Math.max(hi, weights[i]); }
    const scale = { lo: -Math.max(Math.abs(lo), Math.abs(hi)), hi: Math.max(Math.abs(lo), Math.abs(hi)), table: DIVERGING };
    const list = el("div", { id: "kernels" });
    const cell = Math.max(3, Math.floor(54 / Math.max(kh, kw)));
    for (let j = 0; j < Math.min(J, 64); j++) {
      const canvas = el("canvas", { width: kw * cell, height: kh * cell });
      const ctx = canvas.getContext("2d");
      for (let i = 0; i < kh; i++) for (let k = 0; k < kw; k++) {
        const [r, g, b] = colour(scale, weights[((c * J + j) * kh + i) * kw + k]);
        ctx.fillStyle = `rgb(${r},${g},${b})`;
        ctx.fillRect(k * cell, i * cell, cell, cell);
      }
      list.append(el("figure", {}, canvas, el("figcaption", { text: t("kernelOf", { channel: group * perGroup + j }) })));
    }
    panel.append(list, colourBar(scale, t("weights")));
    if (perGroup > J) panel.append(el("p", { class: "help", text: t("kernelsHidden", { count: perGroup - J }) }));
    return panel;
  }

  // ---- one unit: its receptive field and its arithmetic ------------------------------------
  function renderUnit() {
    const node = NODES.get(state.node);
    const vals = values(state.image);
    const v = vals.get(node.id);
    const field = document.getElementById("field");
    const unit = document.getElementById("unit");
    if (!field || !unit) return;
    field.replaceChildren(el("h3", { text: t("receptiveField") }));
    unit.replaceChildren(el("h3", { text: t("arithmetic") }));
    const spatial = node.shape.length === 3;
    const [y, x] = spatial ? state.unit : [0, 0];
    const value = spatial ? at(v, state.channel, y, x) : v.data[state.unit[0]];
    const where = spatial ? `${t("channel")} ${state.channel}, ${t("row")} ${y}, ${t("column")} ${x}`
      : `${t("unit")} ${state.unit[0]}`;
    unit.append(el("div", { class: "sum" }, el("span", { text: `${where}: ${t("value")} ` }),
      el("b", { id: "unit-value", text: fmt(value) })));
    if (spatial && node.field) drawField(field, node, y, x);
    else field.append(el("p", { class: "help", text: t("fieldWhole") }));
    explain(unit, node, vals, v, value, y, x);
  }

  function fieldBox(node, y, x) {
    const [fy, fx] = node.field;
    const y0 = y * fy.jump + fy.offset, x0 = x * fx.jump + fx.offset;
    return { y0, y1: y0 + fy.size - 1, x0, x1: x0 + fx.size - 1, fy, fx };
  }

  function drawField(panel, node, y, x) {
    const [, H, W] = NET.inputShape;
    const box = fieldBox(node, y, x);
    const top = Math.min(0, box.y0), left = Math.min(0, box.x0);
    const bottom = Math.max(H - 1, box.y1), right = Math.max(W - 1, box.x1);
    const spanH = bottom - top + 1, spanW = right - left + 1;
    const scale = 240 / Math.max(spanH, spanW);
    const canvas = el("canvas", { width: Math.round(spanW * scale), height: Math.round(spanH * scale), id: "field-canvas" });
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ddd";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (let i = -canvas.height; i < canvas.width; i += 6) {
      ctx.strokeStyle = "#bbb"; ctx.beginPath(); ctx.moveTo(i, 0); ctx.lineTo(i + canvas.height, canvas.height); ctx.stroke();
    }
    const picture = pictureOf(DOC.images[state.image]);
    const draw = () => {
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(picture, (-left) * scale, (-top) * scale, W * scale, H * scale);
      ctx.strokeStyle = "#ff2d00";
      ctx.lineWidth = 2;
      ctx.strokeRect((box.x0 - left) * scale, (box.y0 - top) * scale, (box.x1 - box.x0 + 1) * scale, (box.y1 - box.y0 + 1) * scale);
    };
    if (picture.complete && picture.naturalWidth) draw(); else picture.addEventListener("load", draw, { once: true });
    const outside = box.y0 < 0 || box.x0 < 0 || box.y1 > H - 1 || box.x1 > W - 1;
    panel.append(canvas,
      el("div", { class: "sum", id: "field-box", text: t("fieldBox", { y0: whole(box.y0), y1: whole(box.y1), x0: whole(box.x0), x1: whole(box.x1), h: H, w: W }) }),
      el("div", { class: "help", text: t("fieldSize", { sh: whole(box.fy.size), sw: whole(box.fx.size), jh: whole(box.fy.jump),
        jw: whole(box.fx.jump), ph: whole(-box.fy.offset), pw: whole(-box.fx.offset) }) }),
      ...(outside ? [el("div", { class: "help", text: t("paddingShown") })] : []));
  }

  function pictureOf(record) {
    if (!record._picture) { record._picture = new Image(); record._picture.src = record.picture; }
    return record._picture;
  }

  function windowTable(cells, kh, kw, pick, classes) {
    const table = el("table", { class: "num" });
    for (let i = 0; i < kh; i++) {
      const tr = el("tr");
      for (let k = 0; k < kw; k++) {
        const cell = cells[i * kw + k];
        tr.append(el("td", { class: classes ? classes(cell) : (cell.inside ? "" : "pad"), text: pick(cell) }));
      }
      table.append(tr);
    }
    return table;
  }

  function line(label, id, v) {
    return el("div", { class: "sum" }, el("span", { text: label + " = " }), el("b", { id, text: fmt(v) }));
  }

  function explain(panel, node, vals, v, value, y, x) {
    if (node.kind === "conv" && node.weights && node.window && node.paddingMode === "zeros") {
      const a = convUnit(node, vals.get(node.sources[0]), v.rest, state.channel, y, x);
      panel.append(el("p", { class: "formula", text: t("convFormula") }));
      const windows = el("div", { class: "windows" });
      for (const ch of a.channels.slice(0, 16)) {
        windows.append(el("div", {}, el("div", { text: `${t("inputWindow")} (${t("channel")} ${ch.channel})` }),
          windowTable(ch.cells, a.kh, a.kw, (c) => short(c.v)),
          el("div", { text: t("weights") }), windowTable(ch.cells, a.kh, a.kw, (c) => short(c.w), () => ""),
          el("div", { text: t("products") }), windowTable(ch.cells, a.kh, a.kw, (c) => short(c.p), () => "")));
      }
      panel.append(windows);
      if (a.channels.some((ch) => ch.cells.some((c) => !c.inside))) panel.append(el("p", { class: "help", text: t("zeroPadding") }));
      panel.append(line(t("sumShown", { count: a.channels.length }), "arith-shown", a.shown));
      if (node.rest) panel.append(line(t("sumRest", { count: a.hidden }), "arith-rest", a.rest));
      panel.append(node.bias ? line(t("bias"), "arith-bias", a.bias) : el("div", { class: "sum", text: t("noBias") }));
      panel.append(line(t("beforeActivation"), "arith-total", a.total));
      panel.append(line(t("mapValue"), "arith-value", value));
      afterActivation(panel, node, vals, y, x);
      return;
    }
    if (node.kind === "pool" && node.pool && (node.window || node.pool.mode.startsWith("adaptive"))) {
      const src = vals.get(node.sources[0]);
      if (!src) return;
      const a = poolUnit(node, src, state.channel, y, x);
      const kh = node.window && !node.pool.mode.startsWith("adaptive") ? node.window.kernel[0] : new Set(a.cells.map((c) => c.iy)).size;
      const kw = a.cells.length / kh;
      panel.append(el("div", { text: `${t("poolWindow")} (${nodeName(node.sources[0])}, ${t("channel")} ${state.channel})` }),
        windowTable(a.cells, kh, kw, (c) => (c.inside ? short(c.v) : t("padding")), (c) => (!c.inside ? "pad" : c === a.best ? "hit" : "")));
      if (a.cells.some((c) => !c.inside)) panel.append(el("p", { class: "help", text: a.max ? t("poolPadding") : t("zeroPadding") }));
      panel.append(line(a.max ? t("poolMax") : t("poolAvg", { sum: fmt(a.sum), count: a.divisor }), "pool-result", a.result));
      panel.append(line(t("mapValue"), "arith-value", value));
      return;
    }
    const source = node.sources.length ? vals.get(node.sources[0]) : null;
    const index = node.shape.length === 3 ? ((state.channel * node.shape[1] + y) * node.shape[2] + x) : state.unit[0];
    if (node.kind === "relu" && source) {
      panel.append(el("p", { class: "formula", text: t("relu") }),
        line(`x (${nodeName(node.sources[0])})`, "relu-input", source.data[index]), line("max(0, x)", "arith-value", value));
      return;
    }
    if (node.kind === "bn" && node.bn && source) {
      const c = state.channel;
      panel.append(el("p", { class: "formula", text: t("bn") }),
        line("x", "bn-input", source.data[index]), line("mean", "bn-mean", node.bn.mean[c]), line("var", "bn-var", node.bn.var[c]),
        line("ε", "bn-eps", node.bn.eps), line("γ", "bn-weight", node.bn.weight ? node.bn.weight[c] : 1),
        line("β", "bn-bias", node.bn.bias ? node.bn.bias[c] : 0), line(t("mapValue"), "arith-value", value));
      return;
    }
    if (node.kind === "add" && node.derive) {
      const other = vals.get(node.sources[1]);
      panel.append(el("p", { class: "formula", text: t("add") }),
        line(nodeName(node.sources[0]), "add-a", source.data[index]), line(nodeName(node.sources[1]), "add-b", other.data[index]),
        line(t("mapValue"), "arith-value", value));
      return;
    }
    if (node.kind === "flatten" && node.derive && v.from) {
      const [, h, w] = v.from;
      const i = state.unit[0];
      panel.append(el("p", { text: t("flatten", { index: i, c: Math.floor(i / (h * w)), y: Math.floor(i / w) % h, x: i % w }) }),
        line(t("mapValue"), "arith-value", value));
      return;
    }
    if (node.kind === "identity" && node.derive) {
      panel.append(el("p", { text: t("identity") }), line(t("mapValue"), "arith-value", value));
      return;
    }
    if (node.kind === "linear" && node.weights && source) {
      const weights = unpack(node.weights);
      const n = node.inFeatures;
      const u = state.unit[0];
      const terms = [];
      for (let i = 0; i < n; i++) terms.push({ i, w: weights[u * n + i], x: source.data[i], p: weights[u * n + i] * source.data[i] });
      const total = terms.reduce((s, term) => s + term.p, 0);
      const top = [...terms].sort((a, b) => Math.abs(b.p) - Math.abs(a.p)).slice(0, 8);
      const table = el("table", { class: "num" }, el("tr", {}, ...["i", "w", "x", "w·x"].map((h) => el("th", { text: h }))));
      for (const term of top) table.append(el("tr", {}, ...[term.i, short(term.w), short(term.x), short(term.p)].map((c) => el("td", { text: String(c) }))));
      const shownSum = top.reduce((s, term) => s + term.p, 0);
      panel.append(el("p", { text: t("linear", { count: n }) }), table,
        line(t("otherTerms", { count: n - top.length }), "linear-others", total - shownSum),
        line("Σ w·x", "arith-shown", total),
        node.bias ? line(t("bias"), "arith-bias", node.bias[u]) : el("div", { class: "sum", text: t("noBias") }),
        line(t("beforeActivation"), "arith-total", total + (node.bias ? node.bias[u] : 0)),
        line(t("mapValue"), "arith-value", value));
      afterActivation(panel, node, vals, 0, 0);
      return;
    }
    panel.append(el("p", { class: "help", text: node.kind === "block" ? t("blockNote") : t("noArithmetic") }));
  }

  function afterActivation(panel, node, vals, y, x) {
    if (node.activation !== null && node.activation !== undefined) {
      const act = NODES.get(node.activation);
      const v = vals.get(act.id);
      if (!v) return;
      const after = node.shape.length === 3 ? at(v, state.channel, y, x) : v.data[state.unit[0]];
      panel.append(line(t("afterActivation", { name: `${act.type} (${act.name})` }), "arith-after", after));
      return;
    }
    const next = NET.nodes.find((other) => other.sources.includes(node.id));
    if (next) panel.append(el("p", { class: "help", text: t("followedBy", { name: next.name, type: next.type }) }));
  }

  // ---- the output ----------------------------------------------------------------------------
  function softmax(z) {
    let max = -Infinity;
    for (const v of z) max = Math.max(max, v);
    const e = Array.from(z, (v) => Math.exp(v - max));
    const sum = e.reduce((a, b) => a + b, 0);
    return { p: e.map((v) => v / sum), e, sum, max };
  }
  function softmaxFormula() {  // p_k = e^{z_k} / Σ_j e^{z_j}, set with sub- and superscripts
    const power = (index) => el("sup", {}, "z", el("sub", { text: index }));
    return el("p", { class: "formula", id: "softmax-formula" }, `${t("softmax")}: p`, el("sub", { text: "k" }),
      " = e", power("k"), " / Σ", el("sub", { text: "j" }), " e", power("j"));
  }
  function topClass(record) {
    if (!record.logits) return null;
    const z = unpack(record.logits);
    if (!Array.from(z).every(Number.isFinite)) return null;
    let best = 0;
    for (let i = 1; i < z.length; i++) if (z[i] > z[best]) best = i;
    return best;
  }

  function renderOutput() {
    const box = document.getElementById("output");
    box.replaceChildren();
    const record = DOC.images[state.image];
    if (!record.logits) {
      const last = NET.nodes[NET.nodes.length - 1];
      box.append(el("p", { class: "help", text: t("outputMaps", { shape: dims(last.shape) }) }));
      return;
    }
    const z = unpack(record.logits);
    if (!Array.from(z).every(Number.isFinite)) {
      box.append(el("p", { class: "flag", id: "prediction", text: t("outputNotFinite") }));
      box.append(camPanel(record, null));
      return;
    }
    const s = softmax(z);
    const order = [...z.keys()].sort((a, b) => s.p[b] - s.p[a]);
    const rows = z.length <= 10 ? [...z.keys()] : order.slice(0, 10);
    const top5 = new Set(order.slice(0, 5));
    const table = el("table", { class: "num", id: "softmax-table" }, el("tr", {},
      ...[t("class"), "z", "e^(z − max z)", t("probability"), ""].map((h) => el("th", { text: h }))));
    for (const k of rows) {
      table.append(el("tr", { class: top5.has(k) ? "top" : "", "data-class": k },
        el("td", { text: NET.classes[k] ?? String(k) }), el("td", { text: fmt(z[k]) }), el("td", { text: fmt(s.e[k], 5) }),
        el("td", { class: "p", text: fmt(s.p[k], 5) }), el("td", {}, el("span", { class: "bar", style: `width:${Math.round(s.p[k] * 120)}px` }))));
    }
    const panel = el("div", { class: "panel" }, el("h3", { text: `${t("logits")} → ${t("top5")}` }),
      softmaxFormula(), el("p", { class: "sum", text: t("softmaxSum", { sum: fmt(s.sum) }) }), table,
      el("p", { class: "sum" }, el("span", { text: t("predicted") + ": " }),
        el("b", { id: "prediction", text: `${NET.classes[order[0]] ?? order[0]} (${fmt(s.p[order[0]], 4)})` }),
        record.label !== null && record.label !== undefined ? el("span", { text: ` · ${t("truth")}: ${record.label}` }) : null));
    box.append(panel, camPanel(record, order[0]));
  }

  function camPanel(record, predicted) {
    const panel = el("div", { class: "panel", id: "cam" }, el("h3", { text: t("gradcam") }));
    const cam = record.cam;
    if (!cam || cam.problem) { panel.append(el("p", { class: "help", text: t("noCam", { reason: cam ? cam.problem : "" }) })); return panel; }
    if (state.camClass === null || !cam.classes.includes(state.camClass))
      state.camClass = cam.classes.includes(predicted) ? predicted : cam.classes[0];
    const choose = el("select", { id: "cam-class", onchange: (e) => { state.camClass = +e.target.value; renderOutput(); } });
    for (const k of cam.classes) {
      const option = el("option", { value: k, text: NET.classes[k] ?? String(k) });
      if (k === state.camClass) option.selected = true;
      choose.append(option);
    }
    panel.append(el("label", {}, el("span", { text: t("gradcamOf") + " " }), choose),
      el("p", { class: "help", text: t("gradcamLayer", { layer: cam.layer }) }));
    const i = cam.classes.indexOf(state.camClass);
    const map = unpack(cam.maps[i]);
    const [h, w] = cam.maps[i].shape;
    const scale = Math.max(1, Math.floor(240 / Math.max(h, w)));
    const canvas = el("canvas", { width: w * scale, height: h * scale });
    const picture = pictureOf(record);
    const draw = () => {
      const ctx = canvas.getContext("2d");
      ctx.imageSmoothingEnabled = false;
      ctx.filter = "grayscale(1)";
      ctx.drawImage(picture, 0, 0, canvas.width, canvas.height);
      ctx.filter = "none";
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
        const level = map[y * w + x] / 255;
        const [r, g, b] = [HEAT[map[y * w + x] * 3], HEAT[map[y * w + x] * 3 + 1], HEAT[map[y * w + x] * 3 + 2]];
        ctx.fillStyle = `rgba(${r},${g},${b},${0.15 + 0.6 * level})`;
        ctx.fillRect(x * scale, y * scale, scale, scale);
      }
    };
    if (picture.complete && picture.naturalWidth) draw(); else picture.addEventListener("load", draw, { once: true });
    panel.append(canvas, colourBar({ lo: 0, hi: 1, table: HEAT }, ""));
    if (cam.empty[i]) panel.append(el("p", { class: "flag", id: "cam-empty", text: t("gradcamEmpty") }));
    const check = cam.sanity;
    if (check) {
      const name = NET.classes[check.class] ?? check.class;
      const text = el("div", { id: "sanity" }, el("h3", { text: t("sanity") }),
        el("p", { text: t("sanityText", { count: check.randomised.length, names: check.randomised.join(", "), cls: name,
          rho: check.correlation === null ? "—" : check.correlation.toFixed(3) }) }));
      if (check.correlation === null) text.append(el("p", { text: t("sanityUndefined") }));
      else text.append(el("p", { class: check.flagged ? "flag" : "ok",
        text: check.flagged ? t("sanityBad", { threshold: check.threshold }) : t("sanityGood", { threshold: check.threshold }) }));
      if (check.class !== state.camClass) text.append(el("p", { class: "help", text: t("sanityOther", { cls: name }) }));
      panel.append(text);
    }
    return panel;
  }

  // ---- live mode --------------------------------------------------------------------------------
  function setupLive() {
    const live = document.getElementById("live");
    if (!DOC.live) return;
    live.classList.add("on");
    const status = document.getElementById("live-status");
    const send = (body, name) => {
      status.textContent = t("busy");
      status.className = "";
      fetch("api/image", { method: "POST", body, headers: { "Content-Type": body.type || "application/octet-stream",
        "X-Image-Name": encodeURIComponent(name) } })
        .then((response) => response.json().then((answer) => ({ ok: response.ok, answer })))
        .then(({ ok, answer }) => {
          if (!ok) { status.textContent = t("liveError", { reason: answer.error }); status.className = "error"; return; }
          DOC.images.push(answer.image);
          state.image = DOC.images.length - 1;
          state.camClass = null;
          status.textContent = "";
          renderAll();
        })
        .catch((error) => { status.textContent = t("liveError", { reason: String(error) }); status.className = "error"; });
    };
    document.getElementById("upload").addEventListener("change", (event) => {
      const file = event.target.files[0];
      if (file) send(file, file.name);
    });
    const pad = document.getElementById("pad");
    const ctx = pad.getContext("2d");
    const clear = () => { ctx.fillStyle = "#000"; ctx.fillRect(0, 0, pad.width, pad.height); };
    clear();
    let drawing = false;
    const point = (e) => [e.offsetX, e.offsetY];
    pad.addEventListener("pointerdown", (e) => { drawing = true; ctx.beginPath(); ctx.moveTo(...point(e)); });
    pad.addEventListener("pointermove", (e) => {
      if (!drawing) return;
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 16; ctx.lineCap = "round"; ctx.lineJoin = "round";
      ctx.lineTo(...point(e)); ctx.stroke();
    });
    for (const end of ["pointerup", "pointerleave"]) pad.addEventListener(end, () => { drawing = false; });
    document.getElementById("clear").addEventListener("click", clear);
    document.getElementById("send").addEventListener("click", () => pad.toBlob((blob) => send(blob, "drawing"), "image/png"));
  }

  // ---- start ---------------------------------------------------------------------------------
  function renderAll() {
    renderHeader();
    renderInputs();
    renderGraph();
    if (state.node === null) {
      const first = NET.nodes.find((n) => n.kind === "conv") || NET.nodes.find((n) => values(state.image).get(n.id));
      if (first) select(first.id, 0, null);
    } else renderDetail();
    renderOutput();
  }
  document.getElementById("lang").addEventListener("click", () => { state.lang = state.lang === "zh" ? "en" : "zh"; renderAll(); });
  setupLive();
  renderAll();
  window.cnnlabExplorer = { state, values, nodes: NODES, select, fieldBox };
  document.body.dataset.ready = String(Math.round(performance.now()));
})();
