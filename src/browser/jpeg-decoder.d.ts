// jpeg-js's decoder on its own (the package's index also loads the encoder, which needs Node's Buffer).
declare module 'jpeg-js/lib/decoder.js' {
  const decode: (data: Uint8Array, opts: { useTArray: true; formatAsRGBA?: boolean; maxResolutionInMP?: number }) => { width: number; height: number; data: Uint8Array };
  export default decode;
}
