// jutsu-pipeline market report: coverage grid (canvas), price + indicators and leaderboard curves
// (TradingView Lightweight Charts, inlined above). Data: JSON script tags written by jutsu_pipeline.report.
(function () {
  "use strict";
  const LC = window.LightweightCharts;
  const main = JSON.parse(document.getElementById("jutsu-main").textContent);

  const CELL_COLORS = {c: "#2e9d5b", p: "#a6d96a", e: "#d9d9d9", o: "#9ecae1", r: "#3182bd", m: "#ffffff", f: "#d7301f"};
  const CELL_NAMES = {
    c: "complete", p: "partial (fewer bars than sessions)", e: "valid, no bars (outside the symbol's life)",
    o: "window not closed yet", r: "materialising now", m: "missing (window closed, never synced)",
    f: "failed (last attempt did not store it)",
  };
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function times(series) {
    const out = new Array(series.dt.length + 1);
    let u = series.t0;
    out[0] = u * series.unit;
    for (let i = 0; i < series.dt.length; i++) { u += series.dt[i]; out[i + 1] = u * series.unit; }
    return out;
  }

  // Inverse of report/data.py `_packed`: running sums of integer deltas, scaled by 10**-digits.
  function unpack(deltas, digits) {
    const scale = Math.pow(10, -digits), out = new Array(deltas.length);
    let acc = 0;
    for (let i = 0; i < deltas.length; i++) {
      if (deltas[i] === null) { out[i] = null; continue; }
      acc += deltas[i];
      out[i] = Number((acc * scale).toFixed(digits));
    }
    return out;
  }

  function unpackSeries(raw) {
    const data = {unit: raw.unit, t0: raw.t0, dt: raw.dt, digits: raw.digits, names: raw.names};
    for (const key of ["o", "h", "l", "c"]) data[key] = unpack(raw[key], raw.digits);
    for (const key of Object.keys(raw.names)) data[key] = unpack(raw[key].v, raw[key].d);
    return data;
  }

  function line(t, values) {
    const out = [];
    for (let i = 0; i < t.length; i++) out.push(values[i] === null ? {time: t[i]} : {time: t[i], value: values[i]});
    return out;
  }

  function fmt(v, digits) {
    return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
  }

  function chartOptions(container, height) {
    return {
      width: container.clientWidth || 900, height: height,
      layout: {background: {color: "#ffffff"}, textColor: "#333", attributionLogo: true, panes: {separatorColor: "#ccc"}},
      grid: {vertLines: {color: "#f0f0f0"}, horzLines: {color: "#f0f0f0"}},
      timeScale: {borderColor: "#ccc"}, rightPriceScale: {borderColor: "#ccc"},
      crosshair: {mode: 0},
    };
  }

  const charts = [];
  window.addEventListener("resize", () => {
    for (const [chart, node] of charts) chart.resize(node.clientWidth, node.clientHeight);
  });

  function makeChart(node, height) {
    const chart = LC.createChart(node, chartOptions(node, height));
    charts.push([chart, node]);
    return chart;
  }

  // ---- coverage -------------------------------------------------------------------------------
  function drawCoverage(cov, box) {
    const legend = el("div", {class: "legend"});
    for (const code of Object.keys(CELL_NAMES)) {
      const item = el("span", {class: "item"});
      const swatch = el("span", {class: "swatch"});
      swatch.style.background = CELL_COLORS[code];
      item.append(swatch, document.createTextNode(`${CELL_NAMES[code]}: ${cov.counts[code] || 0}`));
      legend.append(item);
    }
    box.append(legend);
    const labelWidth = 70, axis = 18;
    const rowH = Math.max(2, Math.min(16, Math.floor(480 / cov.symbols.length)));
    const width = Math.max(300, (box.clientWidth || 900) - 4);
    const colW = (width - labelWidth) / Math.max(1, cov.columns.length);
    const canvas = el("canvas", {class: "coverage", "data-chart": `coverage-${cov.timeframe}`});
    const ratio = window.devicePixelRatio || 1;
    const height = rowH * cov.symbols.length + axis;
    canvas.width = width * ratio; canvas.height = height * ratio;
    canvas.style.width = width + "px"; canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.font = "11px sans-serif";
    ctx.textBaseline = "middle";
    cov.symbols.forEach((symbol, row) => {
      const y = row * rowH;
      if (rowH >= 10) { ctx.fillStyle = "#333"; ctx.fillText(symbol, 2, y + rowH / 2); }
      const codes = cov.cells[row];
      for (let col = 0; col < codes.length; col++) {
        const x = labelWidth + col * colW;
        ctx.fillStyle = CELL_COLORS[codes[col]];
        ctx.fillRect(x, y, Math.max(1, colW - (colW > 3 ? 1 : 0)), Math.max(1, rowH - (rowH > 3 ? 1 : 0)));
        if (codes[col] === "m" || codes[col] === "f") {  // outline so white "missing" cells stand out
          ctx.strokeStyle = "#d7301f";
          ctx.strokeRect(x + 0.5, y + 0.5, Math.max(1, colW - 2), Math.max(1, rowH - 2));
        }
      }
    });
    ctx.fillStyle = "#333";
    let lastYear = "";
    cov.columns.forEach((label, col) => {
      const year = label.slice(0, 4);
      if (year !== lastYear && (col === 0 || colW * col - (canvas.lastX || -99) > 34)) {
        const x = labelWidth + col * colW;
        ctx.fillRect(x, rowH * cov.symbols.length, 1, 4);
        ctx.fillText(year, x + 2, rowH * cov.symbols.length + 10);
        canvas.lastX = colW * col;
      }
      lastYear = year;
    });
    const tip = el("div", {class: "tip"});
    canvas.addEventListener("mousemove", (event) => {
      const rect = canvas.getBoundingClientRect();
      const col = Math.floor((event.clientX - rect.left - labelWidth) / colW);
      const row = Math.floor((event.clientY - rect.top) / rowH);
      if (col < 0 || col >= cov.columns.length || row < 0 || row >= cov.symbols.length) { tip.style.display = "none"; return; }
      const code = cov.cells[row][col];
      tip.textContent = `${cov.symbols[row]} ${cov.columns[col]}: ${CELL_NAMES[code]}; ` +
        `${cov.bars[row][col]} of ${cov.expected[col]} calendar bars stored`;
      tip.style.display = "block";
      tip.style.left = (event.clientX - rect.left + 12) + "px";
      tip.style.top = (event.clientY - rect.top + 12) + "px";
    });
    canvas.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    canvas.addEventListener("click", (event) => {
      const row = Math.floor((event.clientY - canvas.getBoundingClientRect().top) / rowH);
      if (row >= 0 && row < cov.symbols.length) selectSymbol(cov.timeframe, cov.symbols[row]);
    });
    const wrap = el("div", {class: "coverage-wrap"});
    wrap.append(canvas, tip);
    box.append(wrap);
  }

  // ---- price and indicators -------------------------------------------------------------------
  const priceBox = document.getElementById("price");
  const tfSelect = document.getElementById("timeframe");
  const symbolSelect = document.getElementById("symbol");
  let priceChart = null;

  function priceData(tf, symbol) {
    const node = document.getElementById(`p:${tf}:${symbol}`);
    return node ? unpackSeries(JSON.parse(node.textContent)) : null;
  }

  function drawPrice(tf, symbol) {
    if (priceChart) { priceChart.remove(); charts.splice(charts.findIndex(c => c[0] === priceChart), 1); priceChart = null; }
    priceBox.replaceChildren();
    const data = priceData(tf, symbol);
    const caption = document.getElementById("price-caption");
    if (!data || !data.c.length) { caption.textContent = `${symbol} (${tf}): no stored bars.`; return; }
    const t = times(data);
    const names = data.names;
    caption.textContent = `${symbol} (${tf}): the latest ${t.length} bars, ` +
      `${new Date(t[0] * 1000).toISOString().slice(0, 10)} to ${new Date(t[t.length - 1] * 1000).toISOString().slice(0, 10)}` +
      (Object.keys(names).length ? `; indicators ${Object.values(names).join(", ")}` : "; no indicators computed yet");
    const node = el("div", {class: "chart", "data-chart": "price"});
    priceBox.append(node);
    const chart = makeChart(node, 640);
    priceChart = chart;
    const pf = {type: "price", precision: data.digits, minMove: Math.pow(10, -data.digits)};
    const candles = chart.addSeries(LC.CandlestickSeries, {
      upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a",
      wickDownColor: "#ef5350", priceFormat: pf, title: symbol,
    }, 0);
    candles.setData(t.map((time, i) => ({time, open: data.o[i], high: data.h[i], low: data.l[i], close: data.c[i]})));
    const overlay = (key, color, style) => {
      if (!data[key]) return;
      chart.addSeries(LC.LineSeries, {color, lineWidth: 1, lineStyle: style || 0, priceFormat: pf, title: names[key],
        lastValueVisible: false, priceLineVisible: false}, 0).setData(line(t, data[key]));
    };
    overlay("sma", "#ff9800");
    overlay("bbu", "#7e57c2", 2);
    overlay("bbm", "#b39ddb", 1);
    overlay("bbl", "#7e57c2", 2);
    let pane = 1;
    if (data.rsi) {
      const rsi = chart.addSeries(LC.LineSeries, {color: "#5c6bc0", lineWidth: 1, title: names.rsi,
        priceFormat: {type: "price", precision: 1, minMove: 0.1}}, pane);
      rsi.setData(line(t, data.rsi));
      rsi.createPriceLine({price: 70, color: "#999", lineWidth: 1, lineStyle: 2, axisLabelVisible: false});
      rsi.createPriceLine({price: 30, color: "#999", lineWidth: 1, lineStyle: 2, axisLabelVisible: false});
      pane += 1;
    }
    if (data.macd) {
      const mf = {type: "price", precision: data.digits + 1, minMove: Math.pow(10, -(data.digits + 1))};
      if (data.hist) {
        chart.addSeries(LC.HistogramSeries, {priceFormat: mf, title: names.hist, lastValueVisible: false,
          priceLineVisible: false}, pane).setData(
          t.map((time, i) => data.hist[i] === null ? {time} :
            {time, value: data.hist[i], color: data.hist[i] >= 0 ? "#80cbc4" : "#ef9a9a"}));
      }
      chart.addSeries(LC.LineSeries, {color: "#1e88e5", lineWidth: 1, priceFormat: mf, title: names.macd}, pane)
        .setData(line(t, data.macd));
      if (data.sig) {
        chart.addSeries(LC.LineSeries, {color: "#fb8c00", lineWidth: 1, priceFormat: mf, title: names.sig}, pane)
          .setData(line(t, data.sig));
      }
      pane += 1;
    }
    const panes = chart.panes();
    if (panes.length > 1) {
      panes[0].setStretchFactor(3);
      for (let i = 1; i < panes.length; i++) panes[i].setStretchFactor(1);
    }
    chart.timeScale().fitContent();
  }

  function fillSymbols(tf) {
    symbolSelect.replaceChildren();
    for (const symbol of main.symbols) symbolSelect.append(el("option", {value: symbol}, symbol));
  }

  function selectSymbol(tf, symbol) {
    tfSelect.value = tf;
    symbolSelect.value = symbol;
    drawPrice(tf, symbol);
    document.getElementById("prices").scrollIntoView({behavior: "smooth"});
  }

  // ---- leaderboard ----------------------------------------------------------------------------
  function curveTimes(curve) { return times(curve); }

  function drawOverlay(box, rows, curves) {
    const best = rows.filter(r => curves[String(r.rank)]).slice(0, main.best_curves);
    if (!best.length) return;
    const node = el("div", {class: "chart", "data-chart": "leaderboard-best"});
    box.append(el("p", {class: "caption"},
      `The best ${best.length} by Sharpe: return on initial cash (%, top) and drawdown from the running peak (%, bottom).`));
    box.append(node);
    const chart = makeChart(node, 460);
    best.forEach((row, i) => {
      const curve = curves[String(row.rank)];
      const t = curveTimes(curve);
      const base = curve.equity.find(v => v !== null);
      const color = PALETTE[i % PALETTE.length];
      const title = `#${row.rank} ${row.strategy} ${row.symbol}`;
      chart.addSeries(LC.LineSeries, {color, lineWidth: 2, title, priceFormat: {type: "percent", precision: 1, minMove: 0.1}}, 0)
        .setData(line(t, curve.equity.map(v => v === null ? null : 100 * (v / base - 1))));
      chart.addSeries(LC.LineSeries, {color, lineWidth: 1, lastValueVisible: false, priceLineVisible: false,
        priceFormat: {type: "percent", precision: 1, minMove: 0.1}}, 1).setData(line(t, curve.drawdown));
    });
    chart.panes()[0].setStretchFactor(2.5);
    chart.panes()[1].setStretchFactor(1);
    chart.timeScale().fitContent();
  }

  let detailChart = null;
  function drawDetail(row, curve) {
    const box = document.getElementById("detail");
    if (detailChart) { detailChart.remove(); charts.splice(charts.findIndex(c => c[0] === detailChart), 1); detailChart = null; }
    box.replaceChildren();
    box.append(el("p", {class: "caption"}, `#${row.rank} ${row.strategy} on ${row.symbol} (${row.timeframe}): ` +
      `equity (top) and drawdown % (bottom); Sharpe ${fmt(row.sharpe_ratio, 2)}, return ${fmt(row.return_pct, 1)} %, ` +
      `max drawdown ${fmt(row.max_drawdown_pct, 1)} %`));
    const node = el("div", {class: "chart", "data-chart": "leaderboard-detail"});
    box.append(node);
    const chart = makeChart(node, 380);
    detailChart = chart;
    const t = curveTimes(curve);
    chart.addSeries(LC.AreaSeries, {lineColor: "#1f77b4", topColor: "rgba(31,119,180,0.3)",
      bottomColor: "rgba(31,119,180,0.02)", lineWidth: 2, title: "equity"}, 0).setData(line(t, curve.equity));
    chart.addSeries(LC.AreaSeries, {lineColor: "#d62728", topColor: "rgba(214,39,40,0.05)",
      bottomColor: "rgba(214,39,40,0.4)", invertFilledArea: true, lineWidth: 1, title: "drawdown %",
      priceFormat: {type: "percent", precision: 1, minMove: 0.1}}, 1).setData(line(t, curve.drawdown));
    chart.panes()[0].setStretchFactor(2.5);
    chart.panes()[1].setStretchFactor(1);
    chart.timeScale().fitContent();
  }

  function drawLeaderboard() {
    const box = document.getElementById("leaderboard");
    const lb = main.leaderboard;
    if (!lb || !lb.rows.length) {
      box.append(el("p", {class: "caption"}, main.has_strategies ?
        "No backtest results yet: materialise the backtests and the leaderboard (jutsu sync does)." :
        "This market configures no strategies, so it has no leaderboard."));
      return;
    }
    drawOverlay(box, lb.rows, lb.curves);
    const table = el("table", {class: "board"});
    const head = ["#", "strategy", "symbol", "tf", "Sharpe", "return %", "ann. return %", "buy & hold %", "max DD %",
      "trades", "win %"];
    const headRow = table.appendChild(el("thead")).appendChild(el("tr"));
    for (const h of head) headRow.append(el("th", {}, h));
    const body = table.appendChild(el("tbody"));
    for (const row of lb.rows) {
      const tr = el("tr", {"data-rank": row.rank});
      const cells = [row.rank, row.strategy, row.symbol, row.timeframe, fmt(row.sharpe_ratio, 2), fmt(row.return_pct, 1),
        fmt(row.return_ann_pct, 1), fmt(row.buy_hold_return_pct, 1), fmt(row.max_drawdown_pct, 1), row.n_trades,
        fmt(row.win_rate_pct, 1)];
      for (const c of cells) tr.append(el("td", {}, String(c)));
      tr.addEventListener("click", () => {
        for (const other of body.rows) other.classList.remove("selected");
        tr.classList.add("selected");
        drawDetail(row, lb.curves[String(row.rank)]);
      });
      body.append(tr);
    }
    box.append(el("p", {class: "caption"}, "Click a row for its equity and drawdown curves."), table);
    box.append(el("div", {id: "detail"}));
    const first = lb.rows.find(r => lb.curves[String(r.rank)]);
    if (first) body.querySelector(`tr[data-rank="${first.rank}"]`).click();
  }

  // ---- page -----------------------------------------------------------------------------------
  const coverageBox = document.getElementById("coverage");
  for (const cov of main.coverage) {
    coverageBox.append(el("h3", {}, `${cov.timeframe} bars: ${cov.symbols.length} symbols × ${cov.columns.length} ` +
      (cov.binned ? "bins of windows" : "windows")));
    drawCoverage(cov, coverageBox);
  }
  for (const tf of main.timeframes) tfSelect.append(el("option", {value: tf}, tf));
  fillSymbols(main.timeframes[0]);
  tfSelect.addEventListener("change", () => drawPrice(tfSelect.value, symbolSelect.value));
  symbolSelect.addEventListener("change", () => drawPrice(tfSelect.value, symbolSelect.value));
  if (main.timeframes.length && main.symbols.length) drawPrice(main.timeframes[0], main.symbols[0]);
  drawLeaderboard();
  document.body.setAttribute("data-ready", "true");
})();
