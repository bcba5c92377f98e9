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
#if ${OUT_HALF}
alias Out = f16;  // mixed precision's activations: the result is stored in f16
#else
alias Out = f32;
#endif
struct U { M: u32, N: u32, K: u32, batch_a: u32, batch_b: u32, batch_c: u32, alpha: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> A: array<In>;
@group(0) @binding(2) var<storage, read> B: array<In>;
#if ${HAS_BIAS}
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> C: array<Out>;
#else
@group(0) @binding(3) var<storage, read_write> C: array<Out>;
#endif

const TM = ${TM}u;              // rows of C per invocation
const NV = ${TN}u / 4u;         // vec4 columns of C per invocation
const WX = ${WG_X}u;
const WY = ${WG_Y}u;
//! include core/workgroup_tile.wgsl

fn mm_rows() -> u32 { return u.M; }
fn mm_cols() -> u32 { return u.N; }
fn mm_depth() -> u32 { return u.K; }

#if ${TRANS_A}
const A_K_FASTEST = false;      // A is K x M: consecutive rows are neighbours
#else
const A_K_FASTEST = true;
#endif

fn mm_read_a(batch: u32, row: u32, k: u32) -> f32 {
  if (row >= u.M || k >= u.K) { return 0.0; }
#if ${TRANS_A}
  return f32(A[batch * u.batch_a + k * u.M + row]);
#else
  return f32(A[batch * u.batch_a + row * u.K + k]);
#endif
}

fn mm_read_b(batch: u32, k: u32, col: u32) -> f32 {
  if (col >= u.N || k >= u.K) { return 0.0; }
#if ${TRANS_B}
  return f32(B[batch * u.batch_b + col * u.K + k]);
#else
  return f32(B[batch * u.batch_b + k * u.N + col]);
#endif
}

fn mm_write(batch: u32, row: u32, col: u32, acc: f32) {
  var value = u.alpha * acc;
#if ${HAS_BIAS}
  value += bias[col];
#endif
#if ${RELU}
  value = max(value, 0.0);
#endif
  C[batch * u.batch_c + row * u.N + col] = Out(value);
}

@compute @workgroup_size(WX, WY)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) li: u32) {
  mm_tiled(wid, lid, li);
}
