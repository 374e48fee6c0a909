import { readFileSync } from 'node:fs';
import { DataOwner, QueryClient, parseNumericCsv } from 'ciphermine';

const server = process.env.CIPHERMINE_SERVER ?? 'http://127.0.0.1:7400';
const iris = parseNumericCsv(readFileSync('data/iris.csv', 'utf8'), ['label']);

// A data owner encrypts its table under its own key and lets one analyst use it.
const hospital = await DataOwner.register(server, 'Hospital A');
const analyst = await QueryClient.register(server, 'analyst');
const dataset = await hospital.uploadTable('iris', iris, { epsilonBudget: 1 });
await hospital.grant(dataset, analyst.id);

// Exact k-means: centroids come back decrypted, in the table's units.
const clusters = await analyst.kmeans({ datasets: [dataset], k: 3 });
console.log('sizes', clusters.sizes, 'first centroid', clusters.centroids[0]);

// A differentially private mean, charged to the dataset's privacy budget.
const mean = await analyst.stats({ datasets: [dataset], column: 'petal_length', kind: 'mean', lo: 0, hi: 10, epsilon: 0.5 });
console.log('mean petal length, epsilon 0.5:', mean.value);
