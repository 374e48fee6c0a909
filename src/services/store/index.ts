export type * from './store.js';
export { openStore, describeLocation, isPostgresUrl } from './open-store.js';
export { KyselyStore, SchemaVersionError } from './kysely-store.js';
export { migrations } from './migrations.js';
