/** The protocol layer's public surface. */
export * from './transport.js';
export * from './http-transport.js';
export * from './messages.js';
export * from './round-trip.js';
export * from './bit-budget.js';
export { sct, sctBounded } from './sct.js';
export { secureMultiply, secureSquare } from './sm.js';
export { secureDistances } from './sdm.js';
export { secureCompare, type Comparison } from './sdc.js';
export * from './packing.js';
export { secureArgmin } from './smdm.js';
export { KeyServerCore, UnknownKeyError, type DecryptionObserver } from './key-server-core.js';
export { secureLessThan } from './secure-less-than.js';
export { keyServerNoiseShares } from './noise-share.js';
export { innerDistances, blindCentroids, shareRecords, dropShare, newShareId, type RecordShare, type BlindedCentroids } from './inner-distances.js';
export { ShareStore, UnknownShareError, MAX_SHARED_VALUES } from './share-store.js';
export { processStats } from './process-stats.js';
export { createProtocolPool, protocolKernels, type CombineItem } from './kernels.js';
