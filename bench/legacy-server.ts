import { startLegacySimulator } from '../simulator/legacy-simulator.js';

/**
 * The simulated legacy PY-3 / PY-2 for the benchmark, in a process of its own so it does not share an
 * event loop with the load generator. BENCH_REPORT_PATIENTS (comma-separated user_details_ids) fills
 * GET /api-v3/reports with one report per patient. Prints `{"py3Url","py2Url"}` once listening.
 */
const simulator = await startLegacySimulator();
const patients = (process.env.BENCH_REPORT_PATIENTS ?? '')
  .split(',')
  .map(Number)
  .filter((id) => Number.isInteger(id) && id > 0);
patients.forEach((userDetailsId, index) => {
  const reportId = 50_000 + index;
  simulator.state.reports.set(reportId, {
    report_id: reportId,
    user_details_id: userDetailsId,
    patient_name: `Patient ${userDetailsId}`,
    test_name: index % 3 === 0 ? 'Complete blood count' : index % 3 === 1 ? 'Lipid profile' : 'HbA1c',
    status: index % 4 === 0 ? 'pending' : 'signed',
    sample_id: `S-${reportId}`,
    bill_id: 700_000 + index,
    created_at: new Date(Date.UTC(2025, 11, 1) + index * 60_000).toISOString(),
  });
});

// The simulator records every request for the tests' assertions; under load that is only memory.
setInterval(() => {
  simulator.state.py3Requests.length = 0;
  simulator.state.py2Calls.length = 0;
}, 1_000).unref();

process.stdout.write(`${JSON.stringify({ py3Url: simulator.py3Url, py2Url: simulator.py2Url })}\n`);

const stop = () => {
  void simulator.close().then(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
