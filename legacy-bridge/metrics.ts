import { Counter, Gauge } from 'prom-client';
import { metricsRegistry } from '../src/metrics.js';

/**
 * The legacy bridge's metrics. Gauges read the shared outbox (every instance reports the same
 * database-wide value); counters count what this process did.
 */

export const bridgeCreationsGauge = new Gauge({
  name: 'md_bridge_creations',
  help: 'PY-2 entity creations in the outbox by status (queued: waiting or in flight; failed: given up)',
  labelNames: ['status'] as const,
  registers: [metricsRegistry],
});

export const bridgeOldestPendingAgeGauge = new Gauge({
  name: 'md_bridge_oldest_pending_age_seconds',
  help: 'Seconds since the oldest still-queued PY-2 entity creation was requested (0 when none)',
  registers: [metricsRegistry],
});

export const bridgeCreationEvents = new Counter({
  name: 'md_bridge_creation_events_total',
  help: 'PY-2 entity creations by event in this process: delivered, failed, retry_scheduled, retried (by an operator), released',
  labelNames: ['event'] as const,
  registers: [metricsRegistry],
});

export const bridgePy2Requests = new Counter({
  name: 'md_bridge_py2_requests_total',
  help: 'Requests to PY-2 by outcome: created, final, retryable; circuit_open when the breaker held one back',
  labelNames: ['outcome'] as const,
  registers: [metricsRegistry],
});

export const bridgeCircuitStateGauge = new Gauge({
  name: 'md_bridge_circuit_state',
  help: "State of this process's PY-2 circuit breaker: 0 closed, 1 open, 2 half-open",
  registers: [metricsRegistry],
});

/** This process's event counts, for the periodic log line. */
export async function bridgeEventCounts(): Promise<Record<string, number>> {
  const { values } = await bridgeCreationEvents.get();
  const counts: Record<string, number> = {
    delivered: 0,
    failed: 0,
    retry_scheduled: 0,
    retried: 0,
    released: 0,
  };
  for (const { labels, value } of values) counts[String(labels.event)] = value;
  return counts;
}
