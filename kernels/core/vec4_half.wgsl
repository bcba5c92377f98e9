// Mixed precision's f16 activations in an elementwise kernel (included after core/vec4.wgsl): Act,
// the storage type of an activation binding, is T's f16 twin (vec4<f16> or f16) with HALF, else T
// itself. Loads widen with T(...), stores narrow with Act(...); the arithmetic stays f32. A kernel
// with HALF set says `enable f16;` first.
#if ${HALF}
#if ${VEC4}
alias Act = vec4<f16>;
#else
alias Act = f16;
#endif
#else
alias Act = T;
#endif
