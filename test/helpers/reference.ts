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

export function softmaxXentRef(x: Float64Array, labels: ArrayLike<number>, N: number, C: number): number {
  let total = 0, count = 0;
  for (let r = 0; r < N; r++) {
    const label = labels[r]!;
    if (label < 0) continue;
    let m = -Infinity;
    for (let j = 0; j < C; j++) m = Math.max(m, x[r * C + j]!);
    let s = 0;
    for (let j = 0; j < C; j++) s += Math.exp(x[r * C + j]! - m);
    total += m + Math.log(s) - x[r * C + label]!;
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
