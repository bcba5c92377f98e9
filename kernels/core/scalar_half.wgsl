// Mixed precision's f16 activations in a kernel that reads one value at a time (included first: it
// enables f16): Act, the storage type of an activation binding, is f16 with HALF, else f32. Loads
// widen with f32(...), stores narrow with Act(...); the arithmetic stays f32.
#if ${HALF}
enable f16;
alias Act = f16;
#else
alias Act = f32;
#endif
