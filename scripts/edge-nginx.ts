import { parseArgs } from 'node:util';
import { edgeConfig, upstreamAddress } from '../src/edge/edge-config.js';

/**
 * `npm run -s edge:nginx -- --listen 8080 --service http://10.0.0.5:3000 [--service …] --legacy
 * http://10.0.0.9:8000 [--prefix /var/lib/md-edge] [--timeout 35]` prints the edge's nginx
 * configuration (docs/edge.md); `nginx -c FILE` runs it.
 */
const usage =
  'usage: edge:nginx --listen [HOST:]PORT --service http://HOST:PORT [--service …] --legacy http://HOST:PORT [--prefix DIR] [--timeout SECONDS] [--max-body SIZE]\n';

function fail(message: string): never {
  process.stderr.write(`${message}\n${usage}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    listen: { type: 'string' },
    service: { type: 'string', multiple: true },
    legacy: { type: 'string' },
    prefix: { type: 'string', default: '/var/lib/md-edge' },
    timeout: { type: 'string', default: '35' },
    'max-body': { type: 'string', default: '64m' },
  },
});
const listen = values.listen ?? '';
const port = Number(listen.split(':').at(-1));
if (!Number.isInteger(port) || port < 1 || port > 65535) fail('--listen needs a port (or host:port)');
if (!values.service?.length) fail('--service is required (once per instance)');
if (!values.legacy) fail('--legacy is required');
for (const url of [...values.service, values.legacy]) {
  try {
    upstreamAddress(url);
  } catch (error) {
    fail((error as Error).message);
  }
}
const timeoutSeconds = Number(values.timeout);
if (!Number.isInteger(timeoutSeconds) || timeoutSeconds < 1) fail('--timeout needs whole seconds');
if (!/^\d+[km]?$/.test(values['max-body'])) fail('--max-body needs an nginx size such as 64m');

process.stdout.write(
  edgeConfig({
    listen,
    services: values.service,
    legacy: values.legacy,
    prefix: values.prefix,
    timeoutSeconds,
    clientMaxBodySize: values['max-body'],
  }),
);
