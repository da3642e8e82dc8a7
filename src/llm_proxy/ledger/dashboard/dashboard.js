/*
 * llm-proxy usage dashboard: fetches api/usage/records for the chosen range, aggregates the rows in the
 * browser and draws them with uPlot.
 *
 * The aggregation (buckets, percentiles, grouping, totals) is pure and exposed as window.dashboardLib, so the
 * tests can call it with small inputs. What each chart drew (series and non-null point counts) is published in
 * window.dashboardState and on each chart root as data-points.
 *
 * Plain ES2020, no build step. Names from the records (models, clients, backends) only ever reach the page
 * through textContent, never as HTML.
 */
(() => {
  "use strict";

  // The ranges offered, and the bucket (seconds) each one is drawn with.
  const RANGES = Object.freeze({
    "1h": Object.freeze({ seconds: 3600, bucket: 60, label: "hour" }),
    "24h": Object.freeze({ seconds: 86400, bucket: 900, label: "24 hours" }),
    "7d": Object.freeze({ seconds: 7 * 86400, bucket: 7200, label: "7 days" }),
    "30d": Object.freeze({ seconds: 30 * 86400, bucket: 43200, label: "30 days" }),
  });
  const DEFAULT_RANGE = "24h";
  // More series than colours is unreadable: the busiest keep their name, the rest become one "(other)".
  const MAX_SERIES = 8;
  const OTHER = "(other)";
  const REFRESH_MS = 60000;
  const CHART_HEIGHT = 240;

  // ---- pure aggregation ------------------------------------------------------------------------------------

  function bucketSize(range) {
    const spec = RANGES[range];
    if (!spec) throw new Error(`unknown range ${range}`);
    return spec.bucket;
  }

  /** The start (unix seconds) of every bucket from the one holding `since` to the one holding `now`. */
  function buckets(since, now, size) {
    const starts = [];
    for (let i = Math.floor(since / size); i <= Math.floor(now / size); i++) starts.push(i * size);
    return starts;
  }

  /** Index of the bucket holding `time` in buckets(since, …, size); may be out of range for foreign times. */
  function bucketIndex(time, since, size) {
    return Math.floor(time / size) - Math.floor(since / size);
  }

  /** Nearest-rank percentile (an observed value, never interpolated); null for no values. */
  function percentile(values, p) {
    const sorted = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
    if (sorted.length === 0) return null;
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
  }

  function isError(record) {
    return record.status >= 400;
  }

  /** Every token the request moved; reasoning tokens are already part of output_tokens. */
  function totalTokens(record) {
    return (
      (record.input_tokens || 0) +
      (record.output_tokens || 0) +
      (record.cache_read_tokens || 0) +
      (record.cache_write_tokens || 0)
    );
  }

  function sum(values) {
    let total = 0;
    for (const v of values) total += v;
    return total;
  }

  /**
   * The series names for one dimension (model, client, backend): busiest first (ties by name), at most
   * `limit`, the rest folded into "(other)". The same grouping is reused by every chart of that dimension, so
   * a name keeps its colour across charts.
   */
  function grouping(records, keyFn, limit = MAX_SERIES) {
    const counts = new Map();
    for (const r of records) {
      const key = String(keyFn(r));
      counts.set(key, (counts.get(key) || 0) + 1);
    }
    const ranked = [...counts.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .map(([key]) => key);
    if (ranked.length <= limit) return { names: ranked, keyOf: (r) => String(keyFn(r)) };
    const kept = new Set(ranked.slice(0, limit - 1));
    return {
      names: [...ranked.slice(0, limit - 1), OTHER],
      keyOf: (r) => (kept.has(String(keyFn(r))) ? String(keyFn(r)) : OTHER),
    };
  }

  /**
   * One value per bucket per group: `reduce` gets the records of a non-empty cell and returns a number or null;
   * an empty cell is null (a gap, not a zero). Series with no value at all are dropped. `points` counts the
   * non-null values: exactly what the chart draws.
   */
  function timeSeries(records, frame, group, reduce) {
    const x = buckets(frame.since, frame.now, frame.size);
    const slot = new Map(group.names.map((name, i) => [name, i]));
    const cells = group.names.map(() => x.map(() => []));
    for (const r of records) {
      const i = bucketIndex(r.time, frame.since, frame.size);
      if (i < 0 || i >= x.length) continue;
      cells[slot.get(group.keyOf(r))][i].push(r);
    }
    const series = [];
    group.names.forEach((label, s) => {
      const values = cells[s].map((rs) => (rs.length ? reduce(rs) : null));
      const points = values.filter((v) => v !== null).length;
      if (points > 0) series.push({ label, color: s, values, points });
    });
    return { x, series };
  }

  const reducers = Object.freeze({
    count: (rs) => rs.length,
    tokens: (rs) => sum(rs.map(totalTokens)),
    cost: (rs) => {
      const priced = rs.filter((r) => r.cost_usd !== null && r.cost_usd !== undefined);
      return priced.length ? sum(priced.map((r) => r.cost_usd)) : null;
    },
    durationP95: (rs) => percentile(rs.map((r) => r.duration), 95),
    ttftP95: (rs) => percentile(rs.filter((r) => r.ttft !== null && r.ttft !== undefined).map((r) => r.ttft), 95),
    errorPercent: (rs) => (100 * rs.filter(isError).length) / rs.length,
  });

  function summarize(records) {
    const priced = records.filter((r) => r.cost_usd !== null && r.cost_usd !== undefined);
    const errors = records.filter(isError).length;
    return {
      requests: records.length,
      tokens: sum(records.map(totalTokens)),
      inputTokens: sum(records.map((r) => r.input_tokens || 0)),
      outputTokens: sum(records.map((r) => r.output_tokens || 0)),
      cacheTokens: sum(records.map((r) => (r.cache_read_tokens || 0) + (r.cache_write_tokens || 0))),
      cost: sum(priced.map((r) => r.cost_usd)),
      priced: priced.length,
      unpriced: records.length - priced.length,
      errors,
      errorRate: records.length ? (100 * errors) / records.length : null,
      clients: new Set(records.map((r) => r.client)).size,
      models: new Set(records.map((r) => r.frontend_model)).size,
    };
  }

  function rowsBy(records, group) {
    const rows = new Map(group.names.map((name) => [name, []]));
    for (const r of records) rows.get(group.keyOf(r)).push(r);
    return [...rows.entries()];
  }

  function latencyRows(records, group) {
    return rowsBy(records, group).map(([name, rs]) => {
      const ttfts = rs.filter((r) => r.ttft !== null && r.ttft !== undefined).map((r) => r.ttft);
      const durations = rs.map((r) => r.duration);
      return {
        name,
        requests: rs.length,
        ttftP50: percentile(ttfts, 50),
        ttftP95: percentile(ttfts, 95),
        durationP50: percentile(durations, 50),
        durationP95: percentile(durations, 95),
      };
    });
  }

  function backendRows(records, group) {
    return rowsBy(records, group).map(([name, rs]) => {
      const errors = rs.filter(isError).length;
      return { name, requests: rs.length, errors, errorRate: (100 * errors) / rs.length };
    });
  }

  // ---- formatting --------------------------------------------------------------------------------------------

  const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

  function formatCost(usd) {
    if (usd > 0 && usd < 0.005) return "< $0.01";
    return `$${usd.toFixed(2)}`;
  }

  function formatAxisCost(usd) {
    if (usd === 0) return "$0";
    return usd >= 1 ? `$${usd.toFixed(2)}` : `$${Number(usd.toPrecision(2))}`;
  }

  function formatSeconds(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return `${Math.round(s * 1000)} ms`;
    return `${s.toFixed(2)} s`;
  }

  function formatPercent(p) {
    return p === null || p === undefined ? "–" : `${p.toFixed(1)}%`;
  }

  function formatTime(unix) {
    return new Date(unix * 1000).toLocaleString(undefined, {
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    });
  }

  function formatBucket(size) {
    return size < 3600 ? `${size / 60}-minute` : `${size / 3600}-hour`;
  }

  // ---- the page ------------------------------------------------------------------------------------------------

  const state = {
    status: "loading",
    message: "",
    range: DEFAULT_RANGE,
    bucket: RANGES[DEFAULT_RANGE].bucket,
    since: null,
    now: null,
    records: 0,
    truncated: false,
    loads: 0,
    summary: null,
    charts: {},
  };

  // The chart each data-chart root shows: the dimension it groups by, how it reduces a cell, its axis format.
  const CHARTS = Object.freeze([
    { name: "requests-by-model", dim: "model", reduce: reducers.count, format: (v) => integer.format(v) },
    { name: "tokens-by-model", dim: "model", reduce: reducers.tokens, format: (v) => compact.format(v) },
    { name: "cost-by-model", dim: "model", reduce: reducers.cost, format: formatAxisCost },
    { name: "requests-by-client", dim: "client", reduce: reducers.count, format: (v) => integer.format(v) },
    { name: "ttft-by-model", dim: "model", reduce: reducers.ttftP95, format: formatSeconds },
    { name: "duration-by-model", dim: "model", reduce: reducers.durationP95, format: formatSeconds },
    {
      name: "errors-by-backend",
      dim: "backend",
      reduce: reducers.errorPercent,
      format: (v) => `${Math.round(v)}%`,
      max: 100,
    },
  ]);

  const DIMENSIONS = Object.freeze({
    model: (r) => r.frontend_model,
    client: (r) => r.client,
    backend: (r) => r.backend,
  });

  const plots = new Map();
  let lastBody = null;
  let loadSeq = 0;
  let timer = null;

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function setStatus(status, message) {
    state.status = status;
    state.message = message;
    document.body.dataset.status = status;
    document.getElementById("status").textContent = message;
  }

  function setTile(name, value, detail) {
    const tile = document.querySelector(`[data-tile="${name}"]`);
    tile.querySelector("[data-value]").textContent = value;
    tile.querySelector("[data-detail]").textContent = detail;
  }

  function renderTiles(s) {
    setTile(
      "requests",
      integer.format(s.requests),
      s.requests ? `${s.models} model${s.models === 1 ? "" : "s"}, ${s.clients} client key${s.clients === 1 ? "" : "s"}` : "",
    );
    setTile(
      "tokens",
      integer.format(s.tokens),
      s.requests
        ? `in ${compact.format(s.inputTokens)} · out ${compact.format(s.outputTokens)} · cache ${compact.format(s.cacheTokens)}`
        : "",
    );
    setTile("cost", formatCost(s.cost), s.unpriced ? `${integer.format(s.unpriced)} unpriced` : "");
    setTile(
      "errors",
      formatPercent(s.errorRate),
      s.requests ? `${integer.format(s.errors)} of ${integer.format(s.requests)} requests` : "",
    );
  }

  function clearChart(root) {
    const plot = plots.get(root.dataset.chart);
    if (plot) plot.destroy();
    plots.delete(root.dataset.chart);
    root.replaceChildren();
    root.dataset.points = "0";
  }

  function drawChart(spec, data, frame) {
    const root = document.querySelector(`[data-chart="${spec.name}"]`);
    clearChart(root);
    const points = sum(data.series.map((s) => s.points));
    state.charts[spec.name] = {
      buckets: data.x.length,
      points,
      series: data.series.map((s) => ({
        label: s.label,
        points: s.points,
        total: sum(s.values.filter((v) => v !== null)),
      })),
    };
    if (data.series.length === 0) {
      const note = document.createElement("p");
      note.className = "chart-note";
      note.textContent = "Nothing to draw in this range.";
      root.append(note);
      return;
    }
    const muted = cssVar("--muted");
    const grid = cssVar("--grid");
    const axis = { stroke: muted, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const last = data.x[data.x.length - 1];
    const options = {
      width: Math.max(280, root.clientWidth),
      height: CHART_HEIGHT,
      scales: {
        x: { time: true, range: () => [data.x[0], last + frame.size] },
        y: { range: (u, min, max) => [0, spec.max ? spec.max : max > 0 ? max * 1.1 : 1] },
      },
      axes: [axis, { ...axis, size: 64, values: (u, ticks) => ticks.map(spec.format) }],
      cursor: { points: { size: 8 } },
      series: [
        { value: (u, v) => (v === null ? "–" : formatTime(v)) },
        ...data.series.map((s) => {
          const color = cssVar(s.label === OTHER ? "--series-7" : `--series-${s.color % MAX_SERIES}`);
          return {
            label: s.label,
            stroke: color,
            width: 2,
            spanGaps: false,
            points: { show: true, size: 5, fill: color, stroke: color },
            value: (u, v) => (v === null || v === undefined ? "–" : spec.format(v)),
          };
        }),
      ],
    };
    const plot = new uPlot(options, [data.x, ...data.series.map((s) => s.values)], root);
    plots.set(spec.name, plot);
    const canvas = root.querySelector("canvas");
    if (canvas) {
      canvas.setAttribute("role", "img");
      canvas.setAttribute(
        "aria-label",
        `${data.series.map((s) => `${s.label}: ${s.points} intervals`).join("; ")}. Values are in the legend below.`,
      );
    }
    root.dataset.points = String(points);
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.append(td);
  }

  function fillTable(name, rows, columns) {
    const body = document.querySelector(`[data-table="${name}"] tbody`);
    body.replaceChildren(
      ...rows.map((row) => {
        const tr = document.createElement("tr");
        const th = document.createElement("th");
        th.scope = "row";
        th.textContent = row.name;
        tr.append(th);
        for (const [text, className] of columns(row)) cell(tr, text, className);
        return tr;
      }),
    );
  }

  function render(range, body) {
    const size = bucketSize(range);
    const records = body.records;
    const frame = { since: body.since, now: body.now, size };
    Object.assign(state, {
      range,
      bucket: size,
      since: body.since,
      now: body.now,
      records: records.length,
      truncated: Boolean(body.truncated),
      charts: {},
    });
    state.summary = summarize(records);
    renderTiles(state.summary);
    const empty = records.length === 0;
    document.getElementById("empty").hidden = !empty;
    document.getElementById("charts").hidden = empty;
    const span = `${formatTime(body.since)} – ${formatTime(body.now)}`;
    if (empty) {
      for (const root of document.querySelectorAll("[data-chart]")) clearChart(root);
      fillTable("latency", [], () => []);
      fillTable("backends", [], () => []);
      setStatus("empty", `No requests in the last ${RANGES[range].label} (${span}).`);
      return;
    }
    const groups = {};
    for (const [dim, keyFn] of Object.entries(DIMENSIONS)) groups[dim] = grouping(records, keyFn);
    for (const spec of CHARTS) drawChart(spec, timeSeries(records, frame, groups[spec.dim], spec.reduce), frame);
    fillTable("latency", latencyRows(records, groups.model), (r) => [
      [integer.format(r.requests), "num"],
      [formatSeconds(r.ttftP50), "num"],
      [formatSeconds(r.ttftP95), "num"],
      [formatSeconds(r.durationP50), "num"],
      [formatSeconds(r.durationP95), "num"],
    ]);
    fillTable("backends", backendRows(records, groups.backend), (r) => [
      [integer.format(r.requests), "num"],
      [integer.format(r.errors), "num"],
      [formatPercent(r.errorRate), r.errors ? "num bad" : "num"],
    ]);
    const truncated = state.truncated ? " The server truncated this range: totals cover only the records returned." : "";
    setStatus(
      "ready",
      `${integer.format(records.length)} requests, ${span}, in ${formatBucket(size)} intervals.${truncated}`,
    );
  }

  function validBody(body) {
    return (
      body !== null &&
      typeof body === "object" &&
      typeof body.since === "number" &&
      typeof body.now === "number" &&
      Array.isArray(body.records)
    );
  }

  async function load() {
    const seq = ++loadSeq;
    const range = state.range;
    setStatus("loading", "Loading…");
    let body;
    try {
      const response = await fetch(`api/usage/records?since=${encodeURIComponent(range)}`, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.status === 401 || response.status === 403) {
        throw new Error(`HTTP ${response.status}: sign in with the admin key`);
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      body = await response.json();
      if (!validBody(body)) throw new Error("the answer is not a usage record list");
    } catch (err) {
      if (seq === loadSeq) setStatus("error", `Could not load usage records: ${err.message}`);
      return;
    }
    if (seq !== loadSeq) return; // a newer load (another range) started meanwhile
    lastBody = { range, body };
    render(range, body);
    state.loads += 1;
  }

  function rangeFromHash() {
    const value = decodeURIComponent(location.hash.replace(/^#/, ""));
    return Object.prototype.hasOwnProperty.call(RANGES, value) ? value : DEFAULT_RANGE;
  }

  function chooseRange(range) {
    state.range = range;
    for (const input of document.querySelectorAll('input[name="range"]')) input.checked = input.value === range;
    history.replaceState(null, "", `#${range}`);
    load();
  }

  function setAutoRefresh(on) {
    if (timer !== null) clearInterval(timer);
    timer = on
      ? setInterval(() => {
          if (!document.hidden) load();
        }, REFRESH_MS)
      : null;
  }

  function redraw() {
    if (lastBody) render(lastBody.range, lastBody.body);
  }

  function resize() {
    for (const [name, plot] of plots) {
      const root = document.querySelector(`[data-chart="${name}"]`);
      plot.setSize({ width: Math.max(280, root.clientWidth), height: CHART_HEIGHT });
    }
  }

  function start() {
    if (typeof uPlot !== "function") {
      setStatus("error", "The chart library (uPlot.iife.min.js) did not load.");
      return;
    }
    for (const input of document.querySelectorAll('input[name="range"]')) {
      input.addEventListener("change", () => input.checked && chooseRange(input.value));
    }
    document.getElementById("refresh").addEventListener("click", () => load());
    document.getElementById("auto-refresh").addEventListener("change", (e) => setAutoRefresh(e.target.checked));
    document.getElementById("controls").addEventListener("submit", (e) => e.preventDefault());
    // Canvas colours come from CSS variables: repaint when the colour scheme flips.
    matchMedia("(prefers-color-scheme: dark)").addEventListener("change", redraw);
    let pending = null;
    addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(resize, 150);
    });
    chooseRange(rangeFromHash());
  }

  window.dashboardState = state;
  window.dashboardLib = Object.freeze({
    RANGES,
    bucketSize,
    buckets,
    bucketIndex,
    percentile,
    grouping,
    timeSeries,
    reducers,
    summarize,
    latencyRows,
    backendRows,
    totalTokens,
    formatCost,
    formatPercent,
    formatSeconds,
  });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
