// One fused Adam step for a parameter tensor (Kingma & Ba), in place:
//   g = clip * grad (+ weight_decay * p     L2 decay as torch.optim.Adam, without DECOUPLED)
//   m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2
//   p = p - lr * ((m / bc1) / (sqrt(v / bc2) + eps) (+ weight_decay * p   with DECOUPLED: AdamW))
//   bc = 1 - b^t (bias correction); clip = min(1, max_norm / |all gradients|) or 1.
// b1 may change from step to step (a one-cycle schedule cycles it, as torch's OneCycleLR does);
// bc1 then uses this step's b1, as torch.optim.Adam does.
// The step count, the bias corrections, the learning rate, the clip factor and b1 live on the GPU
// (counter = [t, bc1, bc2, lr, clip, b1, 0, 0]), set once per step by `begin`: the uniforms of
// every `main` dispatch then stay the same from step to step (a schedule changes only begin's),
// so their buffers and bind groups are made once, not once per parameter per step.
// With VEC4 (a size that is a multiple of 4) each invocation updates 4 values as vec4s.
// With SKIPPABLE (mixed precision) nothing changes, t included, while flag[0] != 0: the step's
// gradients overflowed f16 (set by the gradient casts).
struct U { n: u32, lr: f32, beta1: f32, beta2: f32, eps: f32, weight_decay: f32, max_norm: f32 }
@group(0) @binding(0) var<uniform> u: U;
//! include core/vec4.wgsl
@group(0) @binding(1) var<storage, read> grad: array<T>;
@group(0) @binding(2) var<storage, read> counter: array<f32>;
#if ${SKIPPABLE}
@group(0) @binding(3) var<storage, read> flag: array<u32>;
@group(0) @binding(4) var<storage, read_write> param: array<T>;
@group(0) @binding(5) var<storage, read_write> m: array<T>;
@group(0) @binding(6) var<storage, read_write> v: array<T>;
#else
@group(0) @binding(3) var<storage, read_write> param: array<T>;
@group(0) @binding(4) var<storage, read_write> m: array<T>;
@group(0) @binding(5) var<storage, read_write> v: array<T>;
#endif

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * nwg.x) * 256u + lid;
  if (i * PER >= u.n) { return; }
#if ${SKIPPABLE}
  if (flag[0] != 0u) { return; }
#endif
  let bc1 = counter[1];
  let bc2 = counter[2];
  let lr = counter[3];
  let beta1 = counter[5];
  let p = param[i];
#if ${DECOUPLED}
  let g = counter[4] * grad[i];
#else
  let g = counter[4] * grad[i] + u.weight_decay * p;
#endif
  let m1 = beta1 * m[i] + (1.0 - beta1) * g;
  let v1 = u.beta2 * v[i] + (1.0 - u.beta2) * g * g;
  m[i] = m1;
  v[i] = v1;
#if ${DECOUPLED}
  param[i] = p - lr * ((m1 / bc1) / (sqrt(v1 / bc2) + u.eps) + u.weight_decay * p);
#else
  param[i] = p - lr * (m1 / bc1) / (sqrt(v1 / bc2) + u.eps);
#endif
}

// begin: t += 1 and the bias corrections for the new t, this step's learning rate and b1, and with CLIP
// the factor that brings the gradients' global norm (sqrt of norm2, summed before) to max_norm.
// Bindings in launch order: the flag (SKIPPABLE), then norm2 (CLIP), then the counter.
#if ${SKIPPABLE}
@group(0) @binding(1) var<storage, read> begin_flag: array<u32>;
#if ${CLIP}
@group(0) @binding(2) var<storage, read> begin_norm2: array<f32>;
@group(0) @binding(3) var<storage, read_write> begin_counter: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> begin_counter: array<f32>;
#endif
#else
#if ${CLIP}
@group(0) @binding(1) var<storage, read> begin_norm2: array<f32>;
@group(0) @binding(2) var<storage, read_write> begin_counter: array<f32>;
#else
@group(0) @binding(1) var<storage, read_write> begin_counter: array<f32>;
#endif
#endif

@compute @workgroup_size(1)
fn begin() {
#if ${SKIPPABLE}
  if (begin_flag[0] != 0u) { return; }
#endif
  let t = begin_counter[0] + 1.0;
  begin_counter[0] = t;
  begin_counter[1] = 1.0 - pow(u.beta1, t);
  begin_counter[2] = 1.0 - pow(u.beta2, t);
  begin_counter[3] = u.lr;
  begin_counter[5] = u.beta1;
#if ${CLIP}
  let norm = sqrt(begin_norm2[0]);
  begin_counter[4] = select(1.0, u.max_norm / norm, norm > u.max_norm);
#else
  begin_counter[4] = 1.0;
#endif
}
