// The f16 twin of core/vec4.wgsl's T (vec4<f16> or f16), for elementwise kernels whose tensors
// may be mixed precision's f16 activations: such a binding is declared over T16 instead of T, its
// loads widen with T(...) and its stores narrow with T16(...); arithmetic stays in f32. Included
// only where the kernel has its HALF flag set, after `enable f16;` and core/vec4.wgsl.
#if ${VEC4}
alias T16 = vec4<f16>;
#else
alias T16 = f16;
#endif
