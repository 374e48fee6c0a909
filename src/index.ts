/**
 * Ciphermine as a library. Data owners (DO) and query clients (QC) talk to a running compute server:
 *
 *   const owner = await DataOwner.register(url, 'Hospital A');
 *   const dataset = await owner.uploadTable('patients', table, { epsilonBudget: 2 });
 *   const clusters = await client.kmeans({ datasets: [dataset], k: 3 });
 *
 * The servers themselves can be embedded too (startKeyServer, startComputeServer), and a deployment
 * can add its own job kinds (defineJobKind). docs/ explains the design and what each party learns.
 */
export {
  DataOwner,
  type UploadOptions,
  type CsvUploadOptions,
  type UploadProgress,
  type UploadOutcome,
  type OwnedDataset,
} from './clients/data-owner.js';
export { scanCsvFile, csvRowBatches, type CsvSummary } from './clients/csv-file.js';
export {
  QueryClient,
  JobFailedError,
  type KMeansSpec,
  type KMeansOutcome,
  type StatsSpec,
  type StatsAnswer,
  type JobStatus,
  type FollowOptions,
  type GrantedDataset,
} from './clients/query-client.js';
export { ApiError, isTransient } from './clients/api.js';
export { parseNumericCsv, CsvError, type NumericTable } from './clients/csv.js';
export { loadIdentity, saveIdentity, type IdentityFile } from './clients/identity.js';
export { CiphermineError, ERROR_CODES, type ErrorCode } from './crypto/errors.js';
export { FixedPointCodec } from './crypto/encoding.js';
export { startKeyServer, type KeyServerOptions, type KeyServerHandle } from './services/key-server.js';
export { startComputeServer, type ComputeServerOptions, type ComputeServerHandle } from './services/compute-server.js';
export { defineJobKind, type JobKind, type JobContext, type AdmitContext, type JobServices } from './services/jobs/job-kind.js';
export { grantedDatasets } from './services/jobs/datasets.js';
