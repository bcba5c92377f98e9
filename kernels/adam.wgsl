// One fused Adam step for a parameter tensor (Kingma & Ba), in place:
//   g = grad + weight_decay * p            (L2 decay as torch.optim.Adam; 0 disables it)
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   p = p - lr * (m / bc1) / (sqrt(v / bc2) + eps),  bc = 1 - b^t (bias correction, from the CPU)
// With VEC4 (a size that is a multiple of 4) each invocation updates 4 values as vec4s.
struct U { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, bc1: f32, bc2: f32 }
@group(0) @binding(0) var<uniform> u: U;
#if ${VEC4}
alias T = vec4<f32>;
const PER = 4u;
#else
alias T = f32;
const PER = 1u;
#endif
@group(0) @binding(1) var<storage, read> grad: array<T>;
#if ${SKIPPABLE}
// Mixed precision: the step is skipped (every parameter left as it is) when the gradients
// overflowed f16 (flag[0] != 0, set by the gradient casts).
@group(0) @binding(2) var<storage, read> flag: array<u32>;
@group(0) @binding(3) var<storage, read_write> param: array<T>;
@group(0) @binding(4) var<storage, read_write> m: array<T>;
@group(0) @binding(5) var<storage, read_write> v: array<T>;
#else
@group(0) @binding(2) var<storage, read_write> param: array<T>;
@group(0) @binding(3) var<storage, read_write> m: array<T>;
@group(0) @binding(4) var<storage, read_write> v: array<T>;
#endif

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i * PER >= u.n) { return; }
#if ${SKIPPABLE}
  if (flag[0] != 0u) { return; }
#endif
  let p = param[i];
  let g = grad[i] + u.weight_decay * p;
  let m1 = u.beta1 * m[i] + (1.0 - u.beta1) * g;
  let v1 = u.beta2 * v[i] + (1.0 - u.beta2) * g * g;
  m[i] = m1;
  v[i] = v1;
  param[i] = p - u.lr * (m1 / u.bc1) / (sqrt(v1 / u.bc2) + u.eps);
}
