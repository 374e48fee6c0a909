/** The crypto layer's public surface. */
export * from './errors.js';
export * from './bigint.js';
export type { BignumBackend, FixedBase } from './backend.js';
export { backend, createBackend } from './backends.js';
export { BcpParams, setup, setupAsync, findGenerator, isMaximalOrderGenerator } from './bcp-params.js';
export { BcpPublicKey, BcpSecretKey, keyGen, toResidue, toSigned } from './bcp-keys.js';
export { BcpMasterKey } from './bcp-master.js';
export { CrtPair } from './crt.js';
export * from './ciphertext.js';
export * from './serialize.js';
export * from './keyfile.js';
export * from './encoding.js';
export * from './key-agreement.js';
export * from './envelope.js';
export { WorkerPool } from './pool.js';
export { keyWire, runKernel, cryptoKernels, type KeyWire, type Pair, type Kernel, type KernelModule } from './kernels.js';
