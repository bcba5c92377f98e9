// C = alpha * op(A) * op(B) (+ bias) (then ReLU), batched over workgroup z - the same contract as
// gemm.wgsl, computed with workgroup-memory tiles: the workgroup stages a (TM*WG_Y) x BK slice of
// op(A) and a BK x (TN*WG_X) slice of op(B) in workgroup memory, then every invocation computes
// its TM x TN block from there. Each value read from the buffers is then used by a whole row or
// column of invocations instead of one, at the price of two barriers per BK step.
// That pays on GPUs (shared memory is fast, barriers cheap) and not on CPU adapters such as
// lavapipe (a barrier switches every invocation's context): src/engine/tune.ts offers it as a
// candidate tile ("s" in its name) and lets measurement decide.
// Out-of-range elements are staged as zeros, so the inner loop has no bounds tests.
#if ${HALF}
enable f16;
alias In = f16;   // the operands are f16 copies (mixed precision); every load widens to f32
#else
alias In = f32;
#endif
struct U { M: u32, N: u32, K: u32, batch_a: u32, batch_b: u32, batch_c: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> A: array<In>;
@group(0) @binding(2) var<storage, read> B: array<In>;
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
#endif

const TM = ${TM}u;              // rows of C per invocation
const NV = ${TN}u / 4u;         // vec4 columns of C per invocation
const WX = ${WG_X}u;
const WY = ${WG_Y}u;
const TILE_M = TM * WY;         // rows of C per workgroup
const TILE_N = NV * 4u * WX;    // columns of C per workgroup
const BK = 16u;                 // depth staged per step
const THREADS = WX * WY;

var<workgroup> As: array<f32, BK * TILE_M>;            // As[k * TILE_M + row]
var<workgroup> Bs: array<vec4<f32>, BK * TILE_N / 4u>; // Bs[k * TILE_N / 4 + col / 4]

fn a_at(base: u32, row: u32, k: u32) -> f32 {
  if (row >= u.M || k >= u.K) { return 0.0; }
#if ${TRANS_A}
  return f32(A[base + k * u.M + row]);
#else
  return f32(A[base + row * u.K + k]);
#endif
}

fn b_at(base: u32, k: u32, col: u32) -> f32 {
  if (col >= u.N || k >= u.K) { return 0.0; }
#if ${TRANS_B}
  return f32(B[base + col * u.K + k]);
#else
  return f32(B[base + k * u.N + col]);
#endif
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  let row0 = wid.y * TILE_M;      // the workgroup's first row and column of C
  let col0 = wid.x * TILE_N;
  let batch = wid.z;
  let base_a = batch * u.batch_a;
  let base_b = batch * u.batch_b;
  var acc: array<array<vec4<f32>, NV>, TM>;

  for (var k0 = 0u; k0 < u.K; k0 += BK) {
    // Stage op(A)[row0.., k0..] and op(B)[k0.., col0..], every invocation a share of each.
    for (var e = li; e < BK * TILE_M; e += THREADS) {
      // Consecutive invocations take consecutive rows when A is K x M (TRANS_A), else
      // consecutive k: both walk A's memory in order.
#if ${TRANS_A}
      let r = e % TILE_M;
      let k = e / TILE_M;
#else
      let k = e % BK;
      let r = e / BK;
#endif
      As[k * TILE_M + r] = a_at(base_a, row0 + r, k0 + k);
    }
    for (var e = li; e < BK * TILE_N / 4u; e += THREADS) {
      let k = e / (TILE_N / 4u);
      let c = (e % (TILE_N / 4u)) * 4u;
      let col = col0 + c;
      Bs[e] = vec4<f32>(b_at(base_b, k0 + k, col), b_at(base_b, k0 + k, col + 1u), b_at(base_b, k0 + k, col + 2u), b_at(base_b, k0 + k, col + 3u));
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var b: array<vec4<f32>, NV>;
      for (var v = 0u; v < NV; v++) { b[v] = Bs[k * (TILE_N / 4u) + lid.x * NV + v]; }
      for (var i = 0u; i < TM; i++) {
        let a = vec4<f32>(As[k * TILE_M + lid.y * TM + i]);
        for (var v = 0u; v < NV; v++) { acc[i][v] = fma(a, b[v], acc[i][v]); }
      }
    }
    workgroupBarrier();
  }

  let base_c = batch * u.batch_c;
  for (var i = 0u; i < TM; i++) {
    let r = row0 + lid.y * TM + i;
    if (r >= u.M) { break; }
    for (var j = 0u; j < NV * 4u; j++) {
      let c = col0 + lid.x * NV * 4u + j;
      if (c >= u.N) { break; }
      var value = u.alpha * acc[i][j / 4u][j % 4u];
#if ${HAS_BIAS}
      value += bias[c];
#endif
#if ${RELU}
      value = max(value, 0.0);
#endif
      C[base_c + r * u.N + c] = value;
    }
  }
}
