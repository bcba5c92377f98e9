// The coordinates (c0, c1, c2, c3) of flat index i over dims (d0, d1, d2, d3), the last varying
// fastest (d0 is implied). Callers pass compiled-in constants: lavapipe divides by a value known
// only at run time one lane at a time, by a constant with a multiply and a shift across the vector.
fn split_index(i: u32, d1: u32, d2: u32, d3: u32) -> vec4<u32> {
  let q2 = i / d3;
  let q1 = q2 / d2;
  return vec4<u32>(q1 / d1, q1 % d1, q2 % d2, i % d3);
}
