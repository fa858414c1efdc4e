/**
 * Renders the bench rows as one self-contained SVG, written by hand (no chart library): per case,
 * one bar per driver from 0 to the median latency with a whisker to p99, on a log scale so that
 * Redis's ~0.1 ms and a new connection's ~5 ms fit one axis; then the contended handoff gaps with
 * the share of acquisitions that went back to the releaser.
 */
import type { BenchRow } from './types.js';

const WIDTH = 1010;
const LABEL_W = 360;
const RIGHT_W = 230;
const BAR_H = 14;
const ROW_H = 20;
const GROUP_GAP = 26;
const COLORS = { floor: '#8c8c8c', ormlock: '#2563eb', peer: '#ea7a1a' } as const;

/** The row's kind, from `kind` when set, else from its driver's name. */
export function kindOf(row: BenchRow): keyof typeof COLORS {
  if (row.kind) return row.kind;
  if (row.driver.startsWith('raw')) return 'floor';
  if (row.driver.startsWith('ormlock')) return 'ormlock';
  return 'peer';
}

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms >= 100) return ms.toFixed(0);
  if (ms >= 10) return ms.toFixed(1);
  if (ms >= 1) return ms.toFixed(2);
  return ms.toFixed(3);
}

/** A log axis between two powers of ten that hold every value. */
function logAxis(values: number[], x0: number, x1: number) {
  const finite = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...finite, 1)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...finite, 1)));
  const span = Math.log10(hi) - Math.log10(lo);
  const x = (v: number) => x0 + ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / span) * (x1 - x0);
  const ticks: number[] = [];
  for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  return { x, ticks };
}

function groupRows(rows: BenchRow[]): Array<{ title: string; rows: BenchRow[] }> {
  const groups = new Map<string, BenchRow[]>();
  for (const row of rows) {
    const title = `${row.case} · ${row.clients} client${row.clients === 1 ? '' : 's'}`;
    const list = groups.get(title) ?? [];
    list.push(row);
    groups.set(title, list);
  }
  return [...groups].map(([title, list]) => ({ title, rows: list }));
}

/** The SVG document for `rows`; `subtitle` names machine, versions and date. */
export function renderChart(rows: BenchRow[], subtitle: string): string {
  const latency = rows.filter((r) => !r.handoff && r.medianMs !== undefined);
  const handoffs = rows.filter((r) => r.handoff);
  const x0 = LABEL_W;
  const x1 = WIDTH - RIGHT_W;
  const parts: string[] = [];
  let y = 30;
  parts.push(`<text x="16" y="${y}" class="title">ormlock benchmarks: latency per operation, median (bar) and p99 (whisker), log scale</text>`);
  y += 18;
  parts.push(`<text x="16" y="${y}" class="sub">${esc(subtitle)}</text>`);
  y += 16;
  parts.push(legend(16, y));
  y += 24;

  type Group = { title: string; rows: BenchRow[]; values: (r: BenchRow) => [number, number]; right: (r: BenchRow) => string };
  const section = (title: string, groups: Group[]) => {
    if (groups.length === 0) return;
    const axis = logAxis(groups.flatMap((g) => g.rows.flatMap(g.values)), x0, x1);
    parts.push(`<text x="16" y="${y + 4}" class="section">${esc(title)}</text>`);
    y += 22;
    const top = y;
    for (const group of groups) {
      parts.push(`<text x="16" y="${y + 10}" class="group">${esc(group.title)}</text>`);
      y += ROW_H;
      for (const row of group.rows) {
        const [mid, high] = group.values(row);
        // Rows of one driver that differ by a parameter (heartbeat of 1, 100, 10,000 leases) say which.
        const label = group.rows.filter((r) => r.driver === row.driver).length > 1 && row.note ? `${row.driver} (${row.note})` : row.driver;
        const color = COLORS[kindOf(row)];
        const xm = axis.x(mid);
        const xp = axis.x(high);
        parts.push(`<text x="${x0 - 8}" y="${y + BAR_H - 3}" class="label" text-anchor="end">${esc(label)}</text>`);
        parts.push(`<rect x="${x0}" y="${y}" width="${Math.max(1, xm - x0).toFixed(1)}" height="${BAR_H}" fill="${color}" rx="2"><title>${esc(`${row.driver}: ${group.right(row)}`)}</title></rect>`);
        if (Number.isFinite(high) && high > mid) {
          const cy = y + BAR_H / 2;
          parts.push(`<line x1="${xm.toFixed(1)}" y1="${cy}" x2="${xp.toFixed(1)}" y2="${cy}" stroke="${color}" stroke-width="1.5"/>`);
          parts.push(`<line x1="${xp.toFixed(1)}" y1="${y + 2}" x2="${xp.toFixed(1)}" y2="${y + BAR_H - 2}" stroke="${color}" stroke-width="1.5"/>`);
        }
        parts.push(`<text x="${x1 + 8}" y="${y + BAR_H - 3}" class="value">${esc(group.right(row))}</text>`);
        y += ROW_H;
      }
      y += GROUP_GAP - ROW_H / 2;
    }
    for (const tick of axis.ticks) {
      const tx = axis.x(tick).toFixed(1);
      parts.push(`<line x1="${tx}" y1="${top}" x2="${tx}" y2="${y - 8}" class="grid"/>`);
      parts.push(`<text x="${tx}" y="${y + 6}" class="tick" text-anchor="middle">${tick >= 1 ? tick.toFixed(0) : String(tick)} ms</text>`);
    }
    y += 30;
  };

  section(
    'Acquire + release and other operations',
    groupRows(latency).map((g) => ({
      ...g,
      values: (r: BenchRow): [number, number] => [r.medianMs ?? Number.NaN, r.p99Ms ?? Number.NaN],
      right: (r: BenchRow) => `${fmtMs(r.medianMs ?? Number.NaN)} / ${fmtMs(r.p99Ms ?? Number.NaN)} ms${r.ratio !== undefined ? ` · ${r.ratio.toFixed(2)}×` : ''}`,
    })),
  );
  section(
    'Contended handoff (p50 bar, p99 whisker)',
    groupRows(handoffs).flatMap((g) => [
      {
        title: `${g.title}: gap from a release to the next acquisition`,
        rows: g.rows,
        values: (r: BenchRow): [number, number] => [r.handoff!.gapP50Ms, r.handoff!.gapP99Ms],
        right: (r: BenchRow) => `${fmtMs(r.handoff!.gapP50Ms)} / ${fmtMs(r.handoff!.gapP99Ms)} ms · ${(r.handoff!.backToReleaser * 100).toFixed(0)} % back to releaser`,
      },
      ...(g.rows.some((r) => r.handoff!.waitP50Ms !== undefined)
        ? [
            {
              title: `${g.title}: wait of one acquire call`,
              rows: g.rows.filter((r) => r.handoff!.waitP50Ms !== undefined),
              values: (r: BenchRow): [number, number] => [r.handoff!.waitP50Ms!, r.handoff!.waitP99Ms!],
              right: (r: BenchRow) => `${fmtMs(r.handoff!.waitP50Ms!)} / ${fmtMs(r.handoff!.waitP99Ms!)} ms · max ${fmtMs(r.handoff!.waitMaxMs ?? Number.NaN)}`,
            },
          ]
        : []),
    ]),
  );
  if (handoffs.length > 0) {
    parts.push(`<text x="16" y="${y - 10}" class="sub">"back to releaser": share of acquisitions that went to the client that had just released; 1/16 ≈ 6 % is fair.</text>`);
    y += 6;
  }

  const style = `
    text { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; fill: #1f2328; }
    .title { font-size: 16px; font-weight: 600; }
    .section { font-size: 14px; font-weight: 600; }
    .sub { font-size: 11px; fill: #59636e; }
    .group { font-size: 12px; font-weight: 600; fill: #3d444d; }
    .label, .value { font-size: 11px; }
    .tick { font-size: 10px; fill: #59636e; }
    .grid { stroke: #d1d9e0; stroke-width: 1; stroke-dasharray: 2 3; }`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${y}" viewBox="0 0 ${WIDTH} ${y}" role="img" aria-label="ormlock benchmark chart">`,
    `<style>${style}</style>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function legend(x: number, y: number): string {
  const items: Array<[string, string]> = [
    [COLORS.floor, 'raw SQL floor (same driver)'],
    [COLORS.ormlock, 'ormlock'],
    [COLORS.peer, 'peers: redlock, advisory-lock, hand-written helpers'],
  ];
  let cx = x;
  return items
    .map(([color, text]) => {
      const out = `<rect x="${cx}" y="${y - 10}" width="12" height="12" fill="${color}" rx="2"/><text x="${cx + 18}" y="${y}" class="sub">${esc(text)}</text>`;
      cx += 40 + text.length * 6;
      return out;
    })
    .join('');
}
