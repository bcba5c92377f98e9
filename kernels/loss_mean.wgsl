// loss = sums[0] / sums[1] (sum of losses over the count of elements that count); 0 when none do.
@group(0) @binding(1) var<storage, read> sums: array<f32>;
@group(0) @binding(2) var<storage, read_write> loss: array<f32>;

@compute @workgroup_size(1)
fn main() {
  loss[0] = select(0.0, sums[0] / sums[1], sums[1] > 0.0);
}
