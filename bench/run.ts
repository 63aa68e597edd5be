import './field-map.js';

/**
 * `npm run bench [-- --quick] [-- --only=rest-list,proxy]`: runs every scenario against its baseline,
 * interleaved, and writes bench/results.{json,md,svg}. The synthetic templates are mapped (above)
 * before the service's modules load, so the runner is imported only now.
 */
const { main } = await import('./runner.js');
process.exitCode = await main(process.argv.slice(2));
