import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { build } from 'esbuild';
import { BENCH_FIELD_MAPPINGS, fieldMapAppendix } from './bench-fields.js';
import { ROOT } from './processes.js';

/**
 * The service as production runs it: plain JavaScript on `node`, without tsx, whose loader thread
 * alone holds some 50 MB (which the memory scenario would otherwise count). esbuild transpiles each
 * file as tsx does, without bundling, into bench/data/service-build/ (ignored by git), and the
 * benchmark's synthetic templates are appended to the field map of that copy. Returns the entry point.
 */
export async function buildService(): Promise<string> {
  const outdir = join(ROOT, 'bench', 'data', 'service-build');
  await rm(outdir, { recursive: true, force: true });
  const entryPoints: string[] = [];
  for (const dir of ['src', 'routers', 'legacy-bridge', 'migrations']) {
    const files = await readdir(join(ROOT, dir), { recursive: true });
    for (const file of files) {
      if (file.endsWith('.ts') && !file.endsWith('.d.ts')) entryPoints.push(join(ROOT, dir, file));
    }
  }
  await build({
    entryPoints,
    outdir,
    outbase: ROOT,
    bundle: false,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    logLevel: 'error',
  });
  const fieldMap = join(outdir, 'src', 'engine', 'field-map.js');
  await writeFile(fieldMap, `${await readFile(fieldMap, 'utf8')}${fieldMapAppendix(BENCH_FIELD_MAPPINGS)}`);
  return join(outdir, 'src', 'server.js');
}

/**
 * The V8 and Node flags that `npm start` gives the service (package.json's start script), so the
 * benchmark runs the process as production does: its heap sizing is part of what the memory
 * scenario measures. The tracing preload (`--import …`) is left out: tracing is off in the benchmark.
 */
export async function productionNodeFlags(): Promise<string[]> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  const start = manifest.scripts?.start ?? '';
  const command = /(?:^|&&\s*)node\s+((?:--[\w-]+(?:=\S+|\s+\.\/\S+)?\s+)*)\S+\s*$/.exec(start);
  if (!command)
    throw new Error(`package.json's start script does not end in "node [flags] <entry>": ${start}`);
  const tokens = command[1]!.split(/\s+/).filter(Boolean);
  return tokens.filter((token, i) => token !== '--import' && tokens[i - 1] !== '--import');
}
