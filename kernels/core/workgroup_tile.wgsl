// The GEMM core of the workgroup-memory kernels (gemm_tiled, conv2d_tiled): a workgroup computes a
// TILE_M x TILE_N block of the product, staging BK steps of depth of both operands in workgroup
// memory at a time (every invocation loads a share; then each takes its TM x NV*4 register tile
// of the block from there with the register core's mm_step). The including kernel defines TM, NV,
// WX, WY, the product's size (mm_rows, mm_cols, mm_depth), its operand readers
//   mm_read_a(batch, row, k), mm_read_b(batch, k, col)   zero outside the product
//   A_K_FASTEST   true when consecutive depths of a row of A are neighbours in memory
// and its writer mm_write(batch, row, col, value) (the epilogue). Batches are workgroup z.
//! include core/register_tile.wgsl
const TILE_M = TM * WY;         // rows per workgroup
const TILE_N = NV * 4u * WX;    // columns per workgroup
const BK = 16u;                 // depth staged per step
const THREADS = WX * WY;

var<workgroup> As: array<f32, BK * TILE_M>;            // As[k * TILE_M + row]
var<workgroup> Bs: array<vec4<f32>, BK * TILE_N / 4u>; // Bs[k * TILE_N / 4 + col / 4]

fn mm_tiled(wid: vec3<u32>, lid: vec3<u32>, li: u32) {
  let row0 = wid.y * TILE_M;      // the workgroup's first row and column
  let col0 = wid.x * TILE_N;
  let batch = wid.z;
  var acc: Tile;
  for (var k0 = 0u; k0 < mm_depth(); k0 += BK) {
    // Stage op(A)[row0.., k0..] and op(B)[k0.., col0..], every invocation a share of each, in the
    // order that lets consecutive invocations read neighbouring memory.
    for (var e = li; e < BK * TILE_M; e += THREADS) {
      var r = e / BK;
      var k = e % BK;
      if (!A_K_FASTEST) {
        r = e % TILE_M;
        k = e / TILE_M;
      }
      As[k * TILE_M + r] = mm_read_a(batch, row0 + r, k0 + k);
    }
    for (var e = li; e < BK * TILE_N / 4u; e += THREADS) {
      let k = k0 + e / (TILE_N / 4u);
      let col = col0 + (e % (TILE_N / 4u)) * 4u;
      Bs[e] = vec4<f32>(mm_read_b(batch, k, col), mm_read_b(batch, k, col + 1u), mm_read_b(batch, k, col + 2u), mm_read_b(batch, k, col + 3u));
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var a: array<f32, TM>;
      for (var i = 0u; i < TM; i++) { a[i] = As[k * TILE_M + lid.y * TM + i]; }
      var b: array<vec4<f32>, NV>;
      for (var v = 0u; v < NV; v++) { b[v] = Bs[k * (TILE_N / 4u) + lid.x * NV + v]; }
      mm_step(&acc, &a, &b);
    }
    workgroupBarrier();
  }
  let row = row0 + lid.y * TM;
  let col = col0 + lid.x * NV * 4u;
  for (var j = 0u; j < NV * 4u; j++) {
    if (col + j >= mm_cols()) { break; }
    for (var i = 0u; i < TM; i++) {
      if (row + i >= mm_rows()) { break; }
      mm_write(batch, row + i, col + j, acc[i][j / 4u][j % 4u]);
    }
  }
}
