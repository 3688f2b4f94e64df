// The flight browser page: lists flights, shows a flight's schema and first rows, charts a
// numeric column over a timestamp column, and reads a whole flight over plain HTTP or gRPC-Web.
import * as flightWeb from "/web/flight-web.js";

const { listFlights, numberOf, readGrpcWeb, readHttp, summarize } = flightWeb;

const $ = (id) => document.getElementById(id);
const FIRST_ROWS = 10;
/** Rows read for the chart at most (a chart has a few hundred pixels across anyway). */
const CHART_ROWS = 200_000;
let current; // { flight, schema }

const token = () => $("token").value.trim() || undefined;
function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
}
const isTime = (f) => Arrow.DataType.isTimestamp(f.type) || Arrow.DataType.isDate(f.type);
const isNumber = (f) => Arrow.DataType.isInt(f.type) || Arrow.DataType.isFloat(f.type) || Arrow.DataType.isDecimal(f.type);
const cell = (v) => (v === null || v === undefined ? "∅" : v instanceof Date ? v.toISOString() : typeof v === "object" ? JSON.stringify(v) : String(v));

function fillSelect(select, fields, preferred) {
  select.replaceChildren(...fields.map((f) => new Option(f.name, f.name)));
  const pick = fields.find((f) => f.name === preferred) ?? fields[0];
  if (pick) select.value = pick.name;
}

async function refresh() {
  setStatus("listing…");
  try {
    const flights = await listFlights({ prefix: $("prefix").value.trim(), token: token() });
    const tbody = $("flights").tBodies[0];
    tbody.replaceChildren(
      ...flights.map((f) => {
        const tr = document.createElement("tr");
        tr.dataset.ticket = f.ticket;
        const name = f.descriptor?.path ? f.descriptor.path.join("/") : `cmd ${f.descriptor?.cmd ?? ""}`;
        for (const text of [name, f.totalRecords.toLocaleString("en"), f.totalBytes.toLocaleString("en")]) tr.insertCell().textContent = text;
        tr.addEventListener("click", () => select(f).catch((e) => setStatus(e.message, true)));
        return tr;
      }),
    );
    setStatus(`${flights.length} flight${flights.length === 1 ? "" : "s"}`);
    return flights;
  } catch (e) {
    setStatus(e.message, true);
    throw e;
  }
}

async function select(flight, chosen = {}) {
  for (const tr of $("flights").tBodies[0].rows) tr.classList.toggle("selected", tr.dataset.ticket === flight.ticket);
  $("flight-pane").hidden = false;
  $("flight-title").textContent = flight.descriptor?.path ? flight.descriptor.path.join("/") : "flight";
  $("read-result").textContent = "";
  setStatus("reading…");
  const reader = await readHttp(flight.ticket, { token: token() });
  const schema = reader.schema;
  current = { flight, schema };
  $("schema").replaceChildren(...schema.fields.map((f) => Object.assign(document.createElement("li"), { textContent: `${f.name}: ${f.type}${f.nullable ? "" : " not null"}` })));
  // The first batch gives the first rows; the chart reads on up to CHART_ROWS.
  const xs = [];
  const ys = [];
  let first = true;
  const timeFields = schema.fields.filter(isTime);
  const numFields = schema.fields.filter(isNumber);
  fillSelect($("x-column"), timeFields.length ? timeFields : numFields, chosen.x ?? timeFields[0]?.name);
  fillSelect($("y-column"), numFields, chosen.y ?? numFields.find((f) => !isTime(f) && f.name !== $("x-column").value)?.name);
  fillSelect($("sum-column"), numFields, numFields.at(-1)?.name);
  const xName = $("x-column").value;
  const yName = $("y-column").value;
  for await (const batch of reader) {
    if (first) {
      showRows(schema, batch);
      first = false;
    }
    const x = batch.getChild(xName);
    const y = batch.getChild(yName);
    if (x && y) for (let i = 0; i < batch.numRows && xs.length < CHART_ROWS; i++) {
      xs.push(numberOf(x.get(i)));
      ys.push(numberOf(y.get(i)));
    }
    if (xs.length >= CHART_ROWS) break;
  }
  if (first) showRows(schema, null);
  drawChart(xs, ys, xName, yName, timeFields.some((f) => f.name === xName));
  setStatus(`${flight.totalRecords.toLocaleString("en")} rows`);
  return { fields: schema.fields.map((f) => f.name), points: xs.length };
}

function showRows(schema, batch) {
  const head = document.createElement("tr");
  for (const f of schema.fields) head.appendChild(Object.assign(document.createElement("th"), { textContent: f.name }));
  $("rows").tHead.replaceChildren(head);
  const rows = [];
  for (let i = 0; batch && i < Math.min(FIRST_ROWS, batch.numRows); i++) {
    const tr = document.createElement("tr");
    for (const f of schema.fields) {
      const v = batch.getChild(f.name)?.get(i);
      tr.insertCell().textContent = isTime(f) && (typeof v === "number" || typeof v === "bigint") ? new Date(Number(v)).toISOString() : cell(v);
    }
    rows.push(tr);
  }
  $("rows").tBodies[0].replaceChildren(...rows);
}

/** A line chart on the canvas: axes with min/max labels, one polyline (min/max per pixel column when dense). */
function drawChart(xs, ys, xName, yName, xIsTime) {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  const pad = { l: 56, r: 12, t: 12, b: 36 };
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, W, H);
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#4a5568";
  if (xs.length === 0) {
    ctx.fillText("no numeric column to chart", pad.l, H / 2);
    return;
  }
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (let i = 0; i < xs.length; i++) {
    if (xs[i] < x0) x0 = xs[i];
    if (xs[i] > x1) x1 = xs[i];
    if (ys[i] < y0) y0 = ys[i];
    if (ys[i] > y1) y1 = ys[i];
  }
  if (x1 === x0) x1 = x0 + 1;
  if (y1 === y0) y1 = y0 + 1;
  const px = (x) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const py = (y) => H - pad.b - ((y - y0) / (y1 - y0)) * (H - pad.t - pad.b);
  // Axes and labels.
  ctx.strokeStyle = "#a0aec0";
  ctx.beginPath();
  ctx.moveTo(pad.l, pad.t);
  ctx.lineTo(pad.l, H - pad.b);
  ctx.lineTo(W - pad.r, H - pad.b);
  ctx.stroke();
  const fmtX = (x) => (xIsTime ? new Date(x).toISOString().slice(11, 19) : x.toLocaleString("en"));
  ctx.textAlign = "right";
  ctx.fillText(y1.toFixed(1), pad.l - 6, pad.t + 8);
  ctx.fillText(y0.toFixed(1), pad.l - 6, H - pad.b);
  ctx.textAlign = "left";
  ctx.fillText(fmtX(x0), pad.l, H - pad.b + 16);
  ctx.textAlign = "right";
  ctx.fillText(fmtX(x1), W - pad.r, H - pad.b + 16);
  ctx.textAlign = "center";
  ctx.fillText(`${yName} over ${xName}${xIsTime ? " (UTC)" : ""}`, W / 2, H - 6);
  // The line.
  ctx.strokeStyle = "#2b6cb0";
  ctx.lineWidth = 1.5;
  ctx.beginPath();
  for (let i = 0; i < xs.length; i++) {
    if (i === 0) ctx.moveTo(px(xs[i]), py(ys[i]));
    else ctx.lineTo(px(xs[i]), py(ys[i]));
  }
  ctx.stroke();
}

async function readWhole(kind) {
  if (!current) return undefined;
  const column = $("sum-column").value;
  const started = performance.now();
  $("read-result").className = "";
  $("read-result").textContent = `reading over ${kind}…`;
  try {
    const reader = kind === "grpc-web" ? await readGrpcWeb(current.flight.ticket, { token: token() }) : await readHttp(current.flight.ticket, { token: token() });
    const { rows, sum } = await summarize(reader, column);
    const ms = performance.now() - started;
    const result = { kind, rows, column, sum, ms: Math.round(ms) };
    $("read-result").textContent = `${kind}: ${rows.toLocaleString("en")} rows, sum(${column}) = ${sum}, ${Math.round(ms)} ms`;
    return result;
  } catch (e) {
    $("read-result").className = "error";
    $("read-result").textContent = `${kind}: ${e.message}`;
    return { kind, error: e.code ?? String(e), httpStatus: e.httpStatus };
  }
}

$("refresh").addEventListener("click", () => refresh().catch(() => undefined));
for (const id of ["x-column", "y-column"]) {
  $(id).addEventListener("change", () => current && select(current.flight, { x: $("x-column").value, y: $("y-column").value }).catch((e) => setStatus(e.message, true)));
}
$("read-http").addEventListener("click", () => readWhole("http"));
$("read-grpc-web").addEventListener("click", () => readWhole("grpc-web"));

// What the browser test drives (and a console user may call).
window.flightWeb = flightWeb;
window.flightPage = {
  refresh,
  async selectPath(path) {
    const flights = await refresh();
    const f = flights.find((x) => x.descriptor?.path?.join("/") === path);
    if (!f) throw new Error(`no flight ${path}`);
    return select(f);
  },
  async readWhole(kind, column) {
    if (column) $("sum-column").value = column;
    return readWhole(kind);
  },
};
window.flightPageReady = refresh().then(
  () => true,
  (e) => e.message,
);
