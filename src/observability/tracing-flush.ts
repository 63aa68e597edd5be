/**
 * The tracing preload (src/tracing.ts) registers how to send the spans still buffered; the entry
 * points call flushTracing() after draining, before process.exit. Without tracing it does nothing.
 */
let flush: (() => Promise<void>) | undefined;

export function onTracingFlush(callback: () => Promise<void>): void {
  flush = callback;
}

export async function flushTracing(timeoutMs = 2_000): Promise<void> {
  if (!flush) return;
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref());
  await Promise.race([flush().catch(() => undefined), timeout]);
}
