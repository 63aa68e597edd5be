import { buildApp } from '../../src/app.js';
import { Database } from '../../src/db/database.js';
import { initOrm } from '../../src/db/orm.js';
import { testConfig } from './fixtures.js';

/**
 * The real app in a process of its own, for measuring what one request costs it in memory. Run with
 * `node --expose-gc --import tsx`: every SAMPLE_MS it collects garbage and keeps the peak of what is
 * still live (heap, Buffers, RSS), so the figure is memory the process holds on to, not garbage
 * waiting for a collection.
 * GET /__probe/memory?reset=1 starts a new measurement; GET /__probe/memory reports it. Prints its port.
 */
const SAMPLE_MS = 500;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with --expose-gc');

const config = testConfig();
const db = new Database(await initOrm({ databaseUrl: config.databaseUrl, poolSize: 4 }));
const app = await buildApp({ config, db });

let baseline = { heapUsed: 0, rss: 0, arrayBuffers: 0 };
let peak = { heapUsed: 0, rss: 0, arrayBuffers: 0 };
const sample = () => {
  gc();
  const { heapUsed, rss, arrayBuffers } = process.memoryUsage();
  peak = {
    heapUsed: Math.max(peak.heapUsed, heapUsed),
    rss: Math.max(peak.rss, rss),
    arrayBuffers: Math.max(peak.arrayBuffers, arrayBuffers),
  };
};
setInterval(sample, SAMPLE_MS).unref();

app.get('/__probe/memory', async (request) => {
  if ((request.query as { reset?: string }).reset) {
    gc();
    const { heapUsed, rss, arrayBuffers } = process.memoryUsage();
    baseline = { heapUsed, rss, arrayBuffers };
    peak = { ...baseline };
  } else {
    sample();
  }
  return { baseline, peak };
});

await app.listen({ host: '127.0.0.1', port: 0 });
const address = app.server.address();
process.stdout.write(
  `${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`,
);

const stop = () => {
  void app
    .close()
    .then(() => db.close())
    .then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
