import { startLegacySimulator } from '../simulator/legacy-simulator.js';

/** `npm run dev`: the legacy simulator on 3101/3102, then the service against it. */
const simulator = await startLegacySimulator({ py3Port: 3101, py2Port: 3102 });
simulator.state.sessions.set('dev-session', { lab_id: 1, user_id: 7, is_doctor: false, org_id: null });
process.env.LEGACY_PY3_URL ??= simulator.py3Url;
process.env.LEGACY_PY2_URL ??= simulator.py2Url;
process.stdout.write(
  `legacy simulator: PY-3 ${simulator.py3Url}, PY-2 ${simulator.py2Url} (cookie sessionid=dev-session is lab 1)\n`,
);
await import('../src/server.js');
