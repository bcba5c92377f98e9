// C = alpha * op(A) * op(B) (+ bias over columns) (then ReLU), batched over workgroup z.
//   op(A) is M x K: A is stored M x K, or K x M when TRANS_A.
//   op(B) is K x N: B is stored K x N, or N x K when TRANS_B.
// Register blocking: each invocation computes a TM x TN block of C (TN = 4 or 8, held as TN/4
// vec4s), so every value it loads is used TN (or TM) times. The block and the workgroup shape are
// specialization parameters chosen per adapter and shape by src/engine/tune.ts.
// No workgroup memory: on CPU adapters (lavapipe) barriers cost more than the re-reads they save,
// and the caches do the sharing. Loads are clamped to the matrix (no branches in the inner loop);
// stores outside it are skipped.
// VEC_B reads B as vec4s, one load per four columns; the launcher sets it only when B is K x N
// with N a multiple of 4 (so every row and every batch starts on a vec4).
// With HALF, A and B are f16 (the mixed-precision path), accumulated in f32; C is f32, or f16 with
// OUT_HALF (a 1x1 convolution's activation kept in f16).
#if ${HALF}
enable f16;
alias In = f16;   // the operands are f16 copies (mixed precision); every load widens to f32
#else
alias In = f32;
#endif
#if ${OUT_HALF}
alias Out = f16;  // mixed precision's activations: the result is stored in f16
#else
alias Out = f32;
#endif
struct U { M: u32, N: u32, K: u32, batch_a: u32, batch_b: u32, batch_c: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> A: array<In>;
#if ${VEC_B}
@group(0) @binding(2) var<storage, read> B: array<vec4<In>>;  // VEC_B: B read 4 columns at a time
#else
@group(0) @binding(2) var<storage, read> B: array<In>;
#endif
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<Out>;
#else
@group(0) @binding(3) var<storage, read_write> C: array<Out>;
#endif

const TM = ${TM}u;
const NV = ${TN}u / 4u;   // vec4 columns per invocation
//! include core/register_tile.wgsl

fn a_at(base: u32, row: u32, k: u32) -> f32 {
#if ${TRANS_A}
  return f32(A[base + k * u.M + row]);
#else
  return f32(A[base + row * u.K + k]);
#endif
}

fn b_row(base: u32, k: u32, col: u32) -> vec4<f32> {
  // Four neighbouring columns of op(B) at depth k.
#if ${VEC_B}
  // N is a multiple of 4: clamp the whole vec4 to the last one in the row.
  return vec4<f32>(B[(base + k * u.N + min(col, u.N - 4u)) / 4u]);
#else
  // Clamped one by one at the right edge.
  let last = u.N - 1u;
  let c0 = min(col, last);
  let c1 = min(col + 1u, last);
  let c2 = min(col + 2u, last);
  let c3 = min(col + 3u, last);
#if ${TRANS_B}
  return vec4<f32>(f32(B[base + c0 * u.K + k]), f32(B[base + c1 * u.K + k]), f32(B[base + c2 * u.K + k]), f32(B[base + c3 * u.K + k]));
#else
  let r = base + k * u.N;
  return vec4<f32>(f32(B[r + c0]), f32(B[r + c1]), f32(B[r + c2]), f32(B[r + c3]));
#endif
#endif
}

@compute @workgroup_size(${WG_X}, ${WG_Y})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let col = gid.x * NV * 4u;
  let row = gid.y * TM;
  let batch = gid.z;
  if (col >= u.N || row >= u.M) { return; }
  let base_a = batch * u.batch_a;
  let base_b = batch * u.batch_b;
  var acc: Tile;
  var rows: array<u32, TM>;
  for (var i = 0u; i < TM; i++) { rows[i] = min(row + i, u.M - 1u); }
  var k = 0u;
#if ${K_BLOCKED}
  // A x Bᵀ (a linear layer's x·Wᵀ): both operands run along K in memory, so read 4 steps of K at
  // once - contiguous reads instead of four strided ones per step - and take them one by one.
  var bcol: array<u32, ${TN}>;
  for (var j = 0u; j < NV * 4u; j++) { bcol[j] = base_b + min(col + j, u.N - 1u) * u.K; }
  for (; k + 4u <= u.K; k += 4u) {
    var b4: array<vec4<f32>, ${TN}>;   // b4[j]: column j at depths k .. k + 3
    for (var j = 0u; j < NV * 4u; j++) {
      b4[j] = vec4<f32>(f32(B[bcol[j] + k]), f32(B[bcol[j] + k + 1u]), f32(B[bcol[j] + k + 2u]), f32(B[bcol[j] + k + 3u]));
    }
    var a4: array<vec4<f32>, TM>;      // a4[i]: row i at depths k .. k + 3
    for (var i = 0u; i < TM; i++) {
      let ra = base_a + rows[i] * u.K + k;
      a4[i] = vec4<f32>(f32(A[ra]), f32(A[ra + 1u]), f32(A[ra + 2u]), f32(A[ra + 3u]));
    }
    for (var t = 0u; t < 4u; t++) {
      var a: array<f32, TM>;
      for (var i = 0u; i < TM; i++) { a[i] = a4[i][t]; }
      var b: array<vec4<f32>, NV>;
      for (var v = 0u; v < NV; v++) { b[v] = vec4<f32>(b4[4u * v][t], b4[4u * v + 1u][t], b4[4u * v + 2u][t], b4[4u * v + 3u][t]); }
      mm_step(&acc, &a, &b);
    }
  }
#endif
  // (The remaining K steps, or all of them for the other layouts.)
  for (; k < u.K; k++) {
    var a: array<f32, TM>;
    for (var i = 0u; i < TM; i++) { a[i] = a_at(base_a, rows[i], k); }
    var b: array<vec4<f32>, NV>;
    for (var v = 0u; v < NV; v++) { b[v] = b_row(base_b, k, col + 4u * v); }
    mm_step(&acc, &a, &b);
  }
  let base_c = batch * u.batch_c;
  for (var i = 0u; i < TM; i++) {
    let r = row + i;
    if (r >= u.M) { break; }
    for (var j = 0u; j < NV * 4u; j++) {
      let c = col + j;
      if (c >= u.N) { break; }
      var value = u.alpha * acc[i][j / 4u][j % 4u];
#if ${HAS_BIAS}
      value += bias[c];
#endif
#if ${RELU}
      value = max(value, 0.0);
#endif
      C[base_c + r * u.N + c] = Out(value);
    }
  }
}
