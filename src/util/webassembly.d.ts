// The WebAssembly JS API as Node provides it: the subset our kernels use (src/mining/pow-wasm.ts,
// src/kernels/). TypeScript declares it only in its DOM and web-worker libraries, which would
// bring browser globals into a Node project; @types/node does not declare it.
declare namespace WebAssembly {
  type Imports = Record<string, Record<string, unknown>>;
  interface MemoryDescriptor {
    initial: number;
    maximum?: number;
    shared?: boolean;
  }
  class Module {
    constructor(bytes: BufferSource);
  }
  class Instance {
    constructor(module: Module, imports?: Imports);
    readonly exports: Record<string, unknown>;
  }
  class Memory {
    constructor(descriptor: MemoryDescriptor);
    readonly buffer: ArrayBuffer | SharedArrayBuffer;
    grow(delta: number): number;
  }
  function validate(bytes: BufferSource): boolean;
}
type BufferSource = ArrayBufferView | ArrayBuffer;
