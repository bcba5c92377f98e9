// A 3x5 pixel font (digits, letters, a few signs) for labels on PNG charts and overlays.
import type { PNG } from 'pngjs';

// Each glyph: 5 rows of 3 bits, top row first.
const GLYPHS: Record<string, number[]> = {
  '0': [7, 5, 5, 5, 7], '1': [2, 6, 2, 2, 7], '2': [7, 1, 7, 4, 7], '3': [7, 1, 7, 1, 7], '4': [5, 5, 7, 1, 1],
  '5': [7, 4, 7, 1, 7], '6': [7, 4, 7, 5, 7], '7': [7, 1, 1, 2, 2], '8': [7, 5, 7, 5, 7], '9': [7, 5, 7, 1, 7],
  a: [2, 5, 7, 5, 5], b: [6, 5, 6, 5, 6], c: [3, 4, 4, 4, 3], d: [6, 5, 5, 5, 6], e: [7, 4, 6, 4, 7],
  f: [7, 4, 6, 4, 4], g: [3, 4, 5, 5, 3], h: [5, 5, 7, 5, 5], i: [7, 2, 2, 2, 7], j: [1, 1, 1, 5, 2],
  k: [5, 5, 6, 5, 5], l: [4, 4, 4, 4, 7], m: [5, 7, 7, 5, 5], n: [6, 5, 5, 5, 5], o: [2, 5, 5, 5, 2],
  p: [6, 5, 6, 4, 4], q: [2, 5, 5, 6, 3], r: [6, 5, 6, 5, 5], s: [3, 4, 2, 1, 6], t: [7, 2, 2, 2, 2],
  u: [5, 5, 5, 5, 7], v: [5, 5, 5, 5, 2], w: [5, 5, 7, 7, 5], x: [5, 5, 2, 5, 5], y: [5, 5, 2, 2, 2],
  z: [7, 1, 2, 4, 7], '.': [0, 0, 0, 0, 2], ',': [0, 0, 0, 2, 4], ':': [0, 2, 0, 2, 0], '-': [0, 0, 7, 0, 0],
  '+': [0, 2, 7, 2, 0], '/': [1, 1, 2, 4, 4], '%': [5, 1, 2, 4, 5], '(': [1, 2, 2, 2, 1], ')': [4, 2, 2, 2, 4],
  '=': [0, 7, 0, 7, 0], '_': [0, 0, 0, 0, 7], '@': [7, 5, 7, 4, 7], '#': [5, 7, 5, 7, 5], ' ': [0, 0, 0, 0, 0],
};

export const GLYPH_ADVANCE = 4;

export function textWidth(text: string, scale = 1): number {
  return text.length * GLYPH_ADVANCE * scale;
}

/** Draws lower-cased text at (x, y), top-left, `scale` pixels per font pixel. */
export function drawText(png: PNG, text: string, x: number, y: number, color: readonly number[], scale = 1): void {
  let cx = Math.round(x);
  for (const ch of text.toLowerCase()) {
    const rows = GLYPHS[ch] ?? GLYPHS['#']!;
    rows.forEach((bits, r) => {
      for (let c = 0; c < 3; c++) {
        if (!(bits & (4 >> c))) continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = cx + c * scale + dx, py = Math.round(y) + r * scale + dy;
            if (px < 0 || py < 0 || px >= png.width || py >= png.height) continue;
            const o = (py * png.width + px) * 4;
            png.data[o] = color[0]!; png.data[o + 1] = color[1]!; png.data[o + 2] = color[2]!; png.data[o + 3] = 255;
          }
        }
      }
    });
    cx += GLYPH_ADVANCE * scale;
  }
}
