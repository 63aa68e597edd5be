import { parseArgs } from 'node:util';
import { mintToken } from '../auth/token.js';
import { loadConfigOrExit } from '../config.js';

/** `npm run token -- --lab 1 [--user 7] [--role doctor] [--org 9] [--hours 8]`: prints a bearer token. */
const { values } = parseArgs({
  options: {
    lab: { type: 'string' },
    user: { type: 'string', default: '1' },
    role: { type: 'string', default: 'lab_user' },
    org: { type: 'string' },
    hours: { type: 'string', default: '8' },
  },
});
const config = loadConfigOrExit();
const secret = config.auth.jwtSecret;
const labId = Number(values.lab);
if (!Number.isInteger(labId) || labId <= 0) {
  process.stderr.write(
    'usage: npm run token -- --lab <lab id> [--user 7] [--role lab_user|doctor] [--org 9]\n',
  );
  process.exit(2);
}
if (!secret) {
  process.stderr.write(
    'AUTH_JWT_SECRET is not set (tokens for a JWKS setup come from your identity provider)\n',
  );
  process.exit(2);
}
if (values.role !== 'lab_user' && values.role !== 'doctor') {
  process.stderr.write('--role must be lab_user or doctor\n');
  process.exit(2);
}
const token = await mintToken(secret, {
  labId,
  userId: Number(values.user),
  role: values.role,
  orgId: values.org ? Number(values.org) : null,
  expiresInSeconds: Number(values.hours) * 3600,
});
process.stdout.write(`${token}\n`);
