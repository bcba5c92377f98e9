// Plain float64 references for the kernels: simple loops, written for clarity, not speed.

export function broadcastIndex(outShape: number[], shape: number[], flat: number): number {
  const rank = outShape.length;
  let idx = 0, stride = 1, rem = flat;
  const coords: number[] = new Array(rank);
  for (let i = rank - 1; i >= 0; i--) {
    coords[i] = rem % outShape[i]!;
    rem = Math.floor(rem / outShape[i]!);
  }
  for (let i = rank - 1, j = shape.length - 1; j >= 0; i--, j--) {
    const c = shape[j] === 1 ? 0 : coords[i]!;
    idx += c * stride;
    stride *= shape[j]!;
  }
  return idx;
}

export function binaryRef(a: Float64Array, as: number[], b: Float64Array, bs: number[], os: number[], f: (x: number, y: number) => number): Float64Array {
  const n = os.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = f(a[broadcastIndex(os, as, i)]!, b[broadcastIndex(os, bs, i)]!);
  return out;
}

/** C = op(A) op(B) for 2-d row-major matrices. */
export function matmulRef(a: Float64Array, b: Float64Array, M: number, N: number, K: number, transA = false, transB = false): Float64Array {
  const c = new Float64Array(M * N);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += (transA ? a[k * M + i]! : a[i * K + k]!) * (transB ? b[j * K + k]! : b[k * N + j]!);
      c[i * N + j] = s;
    }
  }
  return c;
}

export function reduceRef(x: Float64Array, shape: number[], axes: number[], op: 'sum' | 'mean' | 'max'): Float64Array {
  const outShape = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const n = outShape.reduce((p, d) => p * d, 1);
  const out = new Float64Array(n).fill(op === 'max' ? -Infinity : 0);
  const count = axes.reduce((p, a) => p * shape[a]!, 1);
  for (let i = 0; i < x.length; i++) {
    const o = broadcastIndexInverse(shape, outShape, i);
    out[o] = op === 'max' ? Math.max(out[o]!, x[i]!) : out[o]! + x[i]!;
  }
  if (op === 'mean') for (let i = 0; i < n; i++) out[i]! /= count;
  return out;
}

/** Index in the reduced (kept-dims) shape of input element `flat`. */
function broadcastIndexInverse(shape: number[], outShape: number[], flat: number): number {
  let rem = flat, idx = 0, stride = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    const c = rem % shape[i]!;
    rem = Math.floor(rem / shape[i]!);
    if (outShape[i] !== 1) idx += c * stride;
    stride *= outShape[i]!;
  }
  return idx;
}

export function softmaxXentRef(x: Float64Array, labels: ArrayLike<number>, N: number, C: number, smoothing = 0): number {
  let total = 0, count = 0;
  for (let r = 0; r < N; r++) {
    const label = labels[r]!;
    if (label < 0) continue;
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, x[r * C + j]!);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(x[r * C + j]! - m);
    // Cross-entropy against q = (1 - e) onehot + e / C, written out term by term.
    for (let j = 0; j < C; j++) {
      const q = (1 - smoothing) * (j === label ? 1 : 0) + smoothing / C;
      total -= q * (x[r * C + j]! - m - Math.log(s));
    }
    count++;
  }
  return count ? total / count : 0;
}

export function bceRef(x: Float64Array, t: ArrayLike<number>, wPos: number, wNeg: number): number {
  let total = 0, count = 0;
  for (let i = 0; i < x.length; i++) {
    if (t[i]! < 0) continue;
    const y = t[i]! > 0.5 ? 1 : 0;
    const w = y ? wPos : wNeg;
    const p = 1 / (1 + Math.exp(-x[i]!));
    total += -w * (y * Math.log(p) + (1 - y) * Math.log(1 - p));
    count++;
  }
  return count ? total / count : 0;
}

export function mseRef(p: Float64Array, t: ArrayLike<number>, mask: ArrayLike<number>): number {
  const plane = p.length / mask.length;
  let total = 0, count = 0;
  for (let i = 0; i < p.length; i++) {
    const m = mask[Math.floor(i / plane)]!;
    total += m * (p[i]! - t[i]!) ** 2;
    count += m;
  }
  return count ? total / count : 0;
}

// ---------------------------------------------------------------- convolution family (NCHW)

export interface ConvRefShape {
  N: number; C: number; H: number; W: number;
  K: number; KH: number; KW: number;
  stride: number; pad: number;
}

export const outSize = (n: number, k: number, s: number, p: number) => Math.floor((n + 2 * p - k) / s) + 1;

export function conv2dRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, c: ConvRefShape): Float64Array {
  const OH = outSize(c.H, c.KH, c.stride, c.pad), OW = outSize(c.W, c.KW, c.stride, c.pad);
  const out = new Float64Array(c.N * c.K * OH * OW);
  for (let n = 0; n < c.N; n++) for (let k = 0; k < c.K; k++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let s = bias ? bias[k]! : 0;
    for (let ci = 0; ci < c.C; ci++) for (let ky = 0; ky < c.KH; ky++) for (let kx = 0; kx < c.KW; kx++) {
      const iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
      if (iy < 0 || ix < 0 || iy >= c.H || ix >= c.W) continue;
      s += w[((k * c.C + ci) * c.KH + ky) * c.KW + kx]! * x[((n * c.C + ci) * c.H + iy) * c.W + ix]!;
    }
    out[((n * c.K + k) * OH + oy) * OW + ox] = s;
  }
  return out;
}

/** The adjoint of conv2dRef in x: dx from dy. */
export function conv2dGradInputRef(dy: Float64Array, w: Float64Array, c: ConvRefShape): Float64Array {
  const OH = outSize(c.H, c.KH, c.stride, c.pad), OW = outSize(c.W, c.KW, c.stride, c.pad);
  const dx = new Float64Array(c.N * c.C * c.H * c.W);
  for (let n = 0; n < c.N; n++) for (let k = 0; k < c.K; k++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    const g = dy[((n * c.K + k) * OH + oy) * OW + ox]!;
    for (let ci = 0; ci < c.C; ci++) for (let ky = 0; ky < c.KH; ky++) for (let kx = 0; kx < c.KW; kx++) {
      const iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
      if (iy < 0 || ix < 0 || iy >= c.H || ix >= c.W) continue;
      dx[((n * c.C + ci) * c.H + iy) * c.W + ix]! += g * w[((k * c.C + ci) * c.KH + ky) * c.KW + kx]!;
    }
  }
  return dx;
}

export function conv2dGradWeightRef(dy: Float64Array, x: Float64Array, c: ConvRefShape): Float64Array {
  const OH = outSize(c.H, c.KH, c.stride, c.pad), OW = outSize(c.W, c.KW, c.stride, c.pad);
  const dw = new Float64Array(c.K * c.C * c.KH * c.KW);
  for (let n = 0; n < c.N; n++) for (let k = 0; k < c.K; k++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    const g = dy[((n * c.K + k) * OH + oy) * OW + ox]!;
    for (let ci = 0; ci < c.C; ci++) for (let ky = 0; ky < c.KH; ky++) for (let kx = 0; kx < c.KW; kx++) {
      const iy = oy * c.stride - c.pad + ky, ix = ox * c.stride - c.pad + kx;
      if (iy < 0 || ix < 0 || iy >= c.H || ix >= c.W) continue;
      dw[((k * c.C + ci) * c.KH + ky) * c.KW + kx]! += g * x[((n * c.C + ci) * c.H + iy) * c.W + ix]!;
    }
  }
  return dw;
}

/** ConvTranspose2d: x [N, Cin, H, W], w [Cin, Cout, KH, KW]; scatter form, straight from the definition. */
export function convTranspose2dRef(x: Float64Array, w: Float64Array, bias: Float64Array | null, N: number, Cin: number, H: number, W: number, Cout: number, KH: number, KW: number, stride: number, pad: number): Float64Array {
  const OH = (H - 1) * stride - 2 * pad + KH, OW = (W - 1) * stride - 2 * pad + KW;
  const out = new Float64Array(N * Cout * OH * OW);
  for (let n = 0; n < N; n++) for (let co = 0; co < Cout; co++) for (let i = 0; i < OH * OW; i++) out[(n * Cout + co) * OH * OW + i] = bias ? bias[co]! : 0;
  for (let n = 0; n < N; n++) for (let ci = 0; ci < Cin; ci++) for (let iy = 0; iy < H; iy++) for (let ix = 0; ix < W; ix++) {
    const v = x[((n * Cin + ci) * H + iy) * W + ix]!;
    for (let co = 0; co < Cout; co++) for (let ky = 0; ky < KH; ky++) for (let kx = 0; kx < KW; kx++) {
      const oy = iy * stride - pad + ky, ox = ix * stride - pad + kx;
      if (oy < 0 || ox < 0 || oy >= OH || ox >= OW) continue;
      out[((n * Cout + co) * OH + oy) * OW + ox]! += v * w[((ci * Cout + co) * KH + ky) * KW + kx]!;
    }
  }
  return out;
}

export function batchNormRef(x: Float64Array, shape: number[], gamma: ArrayLike<number>, beta: ArrayLike<number>, eps: number, stats?: { mean: ArrayLike<number>; variance: ArrayLike<number> }) {
  const [N, C] = shape as [number, number];
  const HW = x.length / (N * C);
  const y = new Float64Array(x.length);
  const means = new Float64Array(C), vars = new Float64Array(C), unbiased = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0, q = 0;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) s += x[(n * C + c) * HW + i]!;
    const m = s / (N * HW);
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) q += (x[(n * C + c) * HW + i]! - m) ** 2;
    means[c] = m;
    vars[c] = q / (N * HW);
    unbiased[c] = q / Math.max(N * HW - 1, 1);
    const mu = stats ? stats.mean[c]! : m, v = stats ? stats.variance[c]! : vars[c]!;
    for (let n = 0; n < N; n++) for (let i = 0; i < HW; i++) {
      const k = (n * C + c) * HW + i;
      y[k] = ((x[k]! - mu) / Math.sqrt(v + eps)) * gamma[c]! + beta[c]!;
    }
  }
  return { y, means, vars, unbiased };
}

export function poolRef(x: Float64Array, N: number, C: number, H: number, W: number, k: number, s: number, p: number, op: 'max' | 'avg'): Float64Array {
  const OH = outSize(H, k, s, p), OW = outSize(W, k, s, p);
  const out = new Float64Array(N * C * OH * OW);
  for (let pl = 0; pl < N * C; pl++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    let best = -Infinity, sum = 0;
    for (let ky = 0; ky < k; ky++) for (let kx = 0; kx < k; kx++) {
      const y = oy * s - p + ky, xx = ox * s - p + kx;
      if (y < 0 || xx < 0 || y >= H || xx >= W) continue;
      const v = x[(pl * H + y) * W + xx]!;
      best = Math.max(best, v);
      sum += v;
    }
    out[(pl * OH + oy) * OW + ox] = op === 'max' ? best : sum / (k * k);
  }
  return out;
}

/** Bilinear resize with half-pixel centres (PyTorch align_corners=False). */
export function resizeRef(x: Float64Array, P: number, H: number, W: number, OH: number, OW: number): Float64Array {
  const out = new Float64Array(P * OH * OW);
  const taps = (o: number, n: number, m: number) => {
    const src = Math.max((o + 0.5) * (n / m) - 0.5, 0);
    const a = Math.min(Math.floor(src), n - 1);
    return [a, Math.min(a + 1, n - 1), src - a] as const;
  };
  for (let pl = 0; pl < P; pl++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    const [y0, y1, ty] = taps(oy, H, OH), [x0, x1, tx] = taps(ox, W, OW);
    const at = (y: number, xx: number) => x[(pl * H + y) * W + xx]!;
    const top = at(y0, x0) * (1 - tx) + at(y0, x1) * tx, bottom = at(y1, x0) * (1 - tx) + at(y1, x1) * tx;
    out[(pl * OH + oy) * OW + ox] = top * (1 - ty) + bottom * ty;
  }
  return out;
}

/**
 * SSIM loss straight from its definition: a 2-d Gaussian window (not separable passes), zero
 * padding, per-pixel SSIM, weighted mean with one mask value per plane, loss = 1 - mean.
 */
export function ssimRef(x: Float64Array, y: Float64Array, P: number, H: number, W: number, mask: ArrayLike<number>, window = 11, sigma = 1.5, L = 1): number {
  const half = Math.floor(window / 2);
  const g1 = Array.from({ length: window }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const total = g1.reduce((a, b) => a + b, 0);
  const g = g1.map((v) => v / total);
  const C1 = (0.01 * L) ** 2, C2 = (0.03 * L) ** 2;
  let num = 0, den = 0;
  for (let pl = 0; pl < P; pl++) {
    const m = mask.length === 1 ? mask[0]! : mask[pl]!;
    for (let r = 0; r < H; r++) for (let c = 0; c < W; c++) {
      let mx = 0, my = 0, exx = 0, eyy = 0, exy = 0;
      for (let i = 0; i < window; i++) for (let j = 0; j < window; j++) {
        const rr = r + i - half, cc = c + j - half;
        if (rr < 0 || cc < 0 || rr >= H || cc >= W) continue;
        const wgt = g[i]! * g[j]!, a = x[(pl * H + rr) * W + cc]!, b = y[(pl * H + rr) * W + cc]!;
        mx += wgt * a; my += wgt * b; exx += wgt * a * a; eyy += wgt * b * b; exy += wgt * a * b;
      }
      const sx = exx - mx * mx, sy = eyy - my * my, sxy = exy - mx * my;
      const s = ((2 * mx * my + C1) * (2 * sxy + C2)) / ((mx * mx + my * my + C1) * (sx + sy + C2));
      num += m * s;
      den += m;
    }
  }
  return 1 - (den > 0 ? num / den : 0);
}

export function adaptiveAvgPoolRef(x: Float64Array, P: number, H: number, W: number, OH: number, OW: number): Float64Array {
  const out = new Float64Array(P * OH * OW);
  for (let p = 0; p < P; p++) for (let oy = 0; oy < OH; oy++) for (let ox = 0; ox < OW; ox++) {
    const y0 = Math.floor((oy * H) / OH), y1 = Math.ceil(((oy + 1) * H) / OH);
    const x0 = Math.floor((ox * W) / OW), x1 = Math.ceil(((ox + 1) * W) / OW);
    let s = 0;
    for (let y = y0; y < y1; y++) for (let xx = x0; xx < x1; xx++) s += x[(p * H + y) * W + xx]!;
    out[(p * OH + oy) * OW + ox] = s / ((y1 - y0) * (x1 - x0));
  }
  return out;
}

export function l1Ref(p: Float64Array, t: ArrayLike<number>, mask: ArrayLike<number>): number {
  const plane = p.length / mask.length;
  let total = 0, count = 0;
  for (let i = 0; i < p.length; i++) {
    const m = mask[Math.floor(i / plane)]!;
    total += m * Math.abs(p[i]! - t[i]!);
    count += m;
  }
  return count ? total / count : 0;
}

/** Soft-argmax of planes [P, H, W]: [P, 2] expected pixel centres as fractions of W and H. */
export function softArgmaxRef(x: Float64Array, planes: number, H: number, W: number): Float64Array {
  const out = new Float64Array(planes * 2);
  for (let k = 0; k < planes; k++) {
    const plane = x.subarray(k * H * W, (k + 1) * H * W);
    let m = -Infinity;
    for (const v of plane) m = Math.max(m, v);
    let s = 0, sx = 0, sy = 0;
    for (let i = 0; i < H * W; i++) {
      const e = Math.exp(plane[i]! - m);
      s += e;
      sx += e * ((i % W) + 0.5);
      sy += e * (Math.floor(i / W) + 0.5);
    }
    out[2 * k] = sx / s / W;
    out[2 * k + 1] = sy / s / H;
  }
  return out;
}
