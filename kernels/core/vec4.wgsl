// The element type of an elementwise kernel: with VEC4 (a size that is a multiple of 4) each
// invocation takes 4 values as a vec4<f32>, else one f32. Expressions are written over T.
#if ${VEC4}
alias T = vec4<f32>;
const PER = 4u;   // values per invocation
#else
alias T = f32;
const PER = 1u;
#endif
