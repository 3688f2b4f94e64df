"use strict";

/** {median, min, max, runs} of a list of numbers. */
function summarize(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return { median: NaN, min: NaN, max: NaN, runs: [] };
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { median, min: v[0], max: v[v.length - 1], runs: values };
}

/** Merges log-bucket latency histograms ({bucket: count}, bucket b ~ 1.01**b us). */
function mergeHists(hists) {
  const out = new Map();
  for (const h of hists) for (const [b, n] of Object.entries(h)) out.set(Number(b), (out.get(Number(b)) ?? 0) + n);
  return out;
}

/** The p-th percentile (0..100) of a merged histogram, in milliseconds. */
function histPercentileMs(hist, p) {
  const buckets = [...hist.entries()].sort((a, b) => a[0] - b[0]);
  const total = buckets.reduce((s, [, n]) => s + n, 0);
  if (total === 0) return NaN;
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const [b, n] of buckets) {
    seen += n;
    if (seen >= rank) return 1.01 ** (b + 0.5) / 1000;
  }
  return NaN;
}

module.exports = { summarize, mergeHists, histPercentileMs };
