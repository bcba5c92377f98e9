// wgsl-preprocessor ships plain JavaScript without types or an `exports` map.
declare module 'wgsl-preprocessor/wgsl-preprocessor.js' {
  export function wgsl(strings: TemplateStringsArray, ...values: unknown[]): string;
}
