import { startLegacySimulator } from './legacy-simulator.js';

/**
 * `npm run sim`: the legacy simulator alone, on the ports the service's defaults point at. SIM_HOST
 * 0.0.0.0 lets other containers reach it (compose.yaml); SIGTERM closes it and exits 0, so it stops at
 * once as a container's PID 1.
 */
const simulator = await startLegacySimulator({
  host: process.env.SIM_HOST || '127.0.0.1',
  py3Port: Number(process.env.SIM_PY3_PORT ?? 3101),
  py2Port: Number(process.env.SIM_PY2_PORT ?? 3102),
});
simulator.state.sessions.set('dev-session', { lab_id: 1, user_id: 7, is_doctor: false, org_id: null });
process.stdout.write(`PY-3 ${simulator.py3Url}\nPY-2 ${simulator.py2Url}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => void simulator.close().then(() => process.exit(0)));
}
