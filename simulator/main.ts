import { startLegacySimulator } from './legacy-simulator.js';

/** `npm run sim`: the legacy simulator alone, on the ports the service's defaults point at. */
const simulator = await startLegacySimulator({
  py3Port: Number(process.env.SIM_PY3_PORT ?? 3101),
  py2Port: Number(process.env.SIM_PY2_PORT ?? 3102),
});
simulator.state.sessions.set('dev-session', { lab_id: 1, user_id: 7, is_doctor: false, org_id: null });
process.stdout.write(`PY-3 ${simulator.py3Url}\nPY-2 ${simulator.py2Url}\n`);
