// Inverted dropout: each element is kept with probability 1 - p and scaled by 1 / (1 - p).
// The keep decision is a hash of (seed, index), so a step is reproducible from its seed and the
// mask (kept for the backward pass, which is dy * mask) costs no random-number state.
struct U { n: u32, seed: u32, p: f32 }
@group(0) @binding(0) var<uniform> u: U;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> mask: array<f32>;

// PCG-style integer hash (Jarzynski & Olano 2020).
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i >= u.n) { return; }
  let r = f32(pcg(i ^ pcg(u.seed)) >> 8u) / 16777216.0;
  let m = select(0.0, 1.0 / (1.0 - u.p), r >= u.p);
  mask[i] = m;
  y[i] = x[i] * m;
}
