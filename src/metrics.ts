import { Registry } from 'prom-client';

/**
 * The process's one metrics registry. Each area defines its own counters and gauges next to its
 * code and registers them here (`registers: [metricsRegistry]`); /metrics serves this registry.
 */
export const metricsRegistry = new Registry();
