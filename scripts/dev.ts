import { startLegacySimulator } from '../simulator/legacy-simulator.js';
import { loadConfigOrExit } from '../src/config.js';

/**
 * `npm run dev`: the legacy simulator on the ports of LEGACY_PY3_URL and LEGACY_PY2_URL (3101 and 3102
 * by default, from the environment or .env), then the service against it, logging readable lines
 * (LOG_FORMAT=pretty unless set).
 */
process.env.LOG_FORMAT ??= 'pretty';
const config = loadConfigOrExit();
const portOf = (url: string) => Number(new URL(url).port || 80);
const simulator = await startLegacySimulator({
  py3Port: portOf(config.legacyPy3Url),
  py2Port: portOf(config.legacyPy2Url),
});
simulator.state.sessions.set('dev-session', { lab_id: 1, user_id: 7, is_doctor: false, org_id: null });
process.stdout.write(
  `legacy simulator: PY-3 ${simulator.py3Url}, PY-2 ${simulator.py2Url} (cookie sessionid=dev-session is lab 1)\n`,
);
await import('../src/server.js');
