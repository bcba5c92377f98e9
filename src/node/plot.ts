// Line charts as PNG (pngjs): training curves people can look at without a plotting stack.
import { writeFileSync } from 'node:fs';
import { PNG } from 'pngjs';
import { drawText, textWidth } from './font.js';

export interface Series {
  name: string;
  values: number[];
  color: [number, number, number];
}

export function plotLines(file: string, title: string, series: Series[], opts: { width?: number; height?: number; logY?: boolean } = {}): void {
  const W = opts.width ?? 640, H = opts.height ?? 360;
  const png = new PNG({ width: W, height: H });
  png.data.fill(255);
  const left = 56, right = 16, top = 28, bottom = 28;
  const tf = (v: number) => (opts.logY ? Math.log10(Math.max(v, 1e-12)) : v);
  const all = series.flatMap((s) => s.values.filter(Number.isFinite).map(tf));
  let lo = Math.min(...all), hi = Math.max(...all);
  if (!Number.isFinite(lo)) (lo = 0), (hi = 1);
  if (hi - lo < 1e-12) (hi += 0.5), (lo -= 0.5);
  const n = Math.max(2, ...series.map((s) => s.values.length));
  const px = (i: number) => left + (i / (n - 1)) * (W - left - right);
  const py = (v: number) => top + (1 - (tf(v) - lo) / (hi - lo)) * (H - top - bottom);
  const set = (x: number, y: number, c: [number, number, number]) => {
    x = Math.round(x); y = Math.round(y);
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    const o = (y * W + x) * 4;
    png.data[o] = c[0]; png.data[o + 1] = c[1]; png.data[o + 2] = c[2]; png.data[o + 3] = 255;
  };
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]) => {
    const steps = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let s = 0; s <= steps; s++) set(x0 + ((x1 - x0) * s) / steps, y0 + ((y1 - y0) * s) / steps, c);
  };
  const grey: [number, number, number] = [200, 200, 200], black: [number, number, number] = [0, 0, 0];
  for (let k = 0; k <= 4; k++) {
    const y = top + (k / 4) * (H - top - bottom);
    line(left, y, W - right, y, grey);
    const v = hi - (k / 4) * (hi - lo);
    const label = formatTick(opts.logY ? 10 ** v : v);
    drawText(png, label, left - 4 - textWidth(label), y - 3, black);
  }
  line(left, top, left, H - bottom, black);
  line(left, H - bottom, W - right, H - bottom, black);
  drawText(png, '0', left, H - bottom + 6, black);
  const last = String(n - 1);
  drawText(png, last, W - right - textWidth(last), H - bottom + 6, black);
  drawText(png, title, left, 8, black);
  let legendX = W - right;
  for (const s of [...series].reverse()) {
    legendX -= textWidth(s.name) + 18;
    line(legendX, 12, legendX + 10, 12, s.color);
    drawText(png, s.name, legendX + 14, 9, s.color);
  }
  for (const s of series) {
    for (let i = 1; i < s.values.length; i++) {
      const a = s.values[i - 1]!, b = s.values[i]!;
      if (Number.isFinite(a) && Number.isFinite(b)) line(px(i - 1), py(a), px(i), py(b), s.color);
    }
    if (s.values.length === 1 && Number.isFinite(s.values[0]!)) for (let d = -2; d <= 2; d++) set(px(0) + d, py(s.values[0]!), s.color);
  }
  writeFileSync(file, PNG.sync.write(png));
}

function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a < 0.01 || a >= 10000)) return v.toExponential(1);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toFixed(3);
}
