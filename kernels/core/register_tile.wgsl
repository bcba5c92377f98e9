// The GEMM core every register-blocked kernel shares (gemm, conv2d, conv2d_grad_input,
// conv2d_grad_weight): each invocation holds a TM x (NV * 4) tile of the product in registers,
// acc[i][v] a vec4 of 4 neighbouring columns, and takes one step along the depth at a time from
// TM values of the left operand (a) and NV vec4s of the right one (b): each value loaded feeds
// NV * 4 (or TM) FMAs. The including kernel defines TM and NV, reads its operands in its own order
// (its readers: where a convolution's window arithmetic and skipped taps live) and writes the tile
// out with its own epilogue (bias, folded BatchNorm, ReLU, the output's layout).
alias Tile = array<array<vec4<f32>, NV>, TM>;

// acc += a (a column of TM values) x b (a row of NV * 4 values): one depth step. Everything is
// passed by pointer, so that the inlined call copies no array.
fn mm_step(acc: ptr<function, Tile>, a: ptr<function, array<f32, TM>>, b: ptr<function, array<vec4<f32>, NV>>) {
  for (var i = 0u; i < TM; i++) {
    let ai = vec4<f32>((*a)[i]);
    for (var v = 0u; v < NV; v++) { (*acc)[i][v] = fma(ai, (*b)[v], (*acc)[i][v]); }
  }
}
