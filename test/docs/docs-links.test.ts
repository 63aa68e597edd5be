import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The README is a front door and the rest lives in docs/ by topic: every relative link in them must
 * reach a file of the repository (and a heading, when it names one), and the README stays short.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const README_MAX_LINES = 150;
/** A quoted file path of the repository's own folders, such as `test/rest/summary.test.ts`. */
const REPOSITORY_PATH =
  /^(?:src|test|routers|legacy-bridge|migrations|bench|examples|scripts|simulator|soak)\/[\w./-]+\.(?:ts|md|sql|json|svg)$/;

const docsFiles = readdirSync(join(ROOT, 'docs'))
  .filter((name) => name.endsWith('.md'))
  .map((name) => join('docs', name));
const checkedFiles = ['README.md', 'CONTRIBUTING.md', ...docsFiles];

function read(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8');
}

/** A Markdown text without its fenced and indented code blocks. */
function withoutCodeBlocks(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/^(?: {4}|\t)[^\n]*$/gm, '');
}

/** The prose of a Markdown text: code blocks and inline code spans removed. */
function prose(markdown: string): string {
  return withoutCodeBlocks(markdown).replace(/`[^`\n]*`/g, '');
}

/** Link targets: inline `[text](target)`, images, and reference definitions `[name]: target`. */
function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const inline = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1] ?? '');
  const references = [...text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1] ?? '');
  return [...inline, ...references];
}

const isRelative = (target: string) => !/^(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(target);

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const headings = [...withoutCodeBlocks(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)].map(
    (m) => m[1] ?? '',
  );
  return new Set(headings.map(anchorOf));
}

/** What is wrong with one link of `file`, or null when it resolves. */
function brokenLink(file: string, target: string): string | null {
  const [pathPart = '', fragment] = target.split('#', 2);
  const path = decodeURIComponent(pathPart);
  const resolved = path === '' ? join(ROOT, file) : join(ROOT, dirname(file), path);
  const where = relative(ROOT, resolved);
  if (where.startsWith('..')) return `${target} leaves the repository`;
  if (!existsSync(resolved)) return `${target} names ${where}, which does not exist`;
  if (fragment && statSync(resolved).isFile() && resolved.endsWith('.md')) {
    if (!anchorsOf(readFileSync(resolved, 'utf8')).has(fragment))
      return `${target} names no heading of ${where}`;
  }
  return null;
}

describe('the documentation', () => {
  it.each(checkedFiles)('%s links only to files of the repository that exist', (file) => {
    const broken = linkTargets(read(file))
      .filter(isRelative)
      .map((target) => brokenLink(file, target))
      .filter((problem) => problem !== null);
    expect(broken).toEqual([]);
  });

  it.each(checkedFiles)('%s names only repository files that exist where it quotes a path', (file) => {
    const quoted = [...withoutCodeBlocks(read(file)).matchAll(/`([^`\s]+)`/g)].map((m) => m[1] ?? '');
    const paths = quoted.filter((text) => REPOSITORY_PATH.test(text));
    expect(paths.filter((path) => !existsSync(join(ROOT, path)))).toEqual([]);
  });

  it(`keeps the README a front door of at most ${README_MAX_LINES} lines`, () => {
    const lines = read('README.md').replace(/\n$/, '').split('\n').length;
    expect(lines).toBeLessThanOrEqual(README_MAX_LINES);
  });

  it('keeps the two commands a newcomer needs in the README', () => {
    const readme = read('README.md');
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm ci && npm test');
  });

  it('lists every topic document in the docs index', () => {
    const index = linkTargets(read('docs/README.md')).map((target) => target.split('#')[0]);
    const topics = docsFiles.map((file) => file.slice('docs/'.length)).filter((name) => name !== 'README.md');
    expect(topics.filter((name) => !index.includes(name))).toEqual([]);
  });
});

describe('the link check itself', () => {
  it('finds inline links, images and references, but not code', () => {
    const markdown = [
      'See [a](docs/a.md#part) and ![chart](bench/c.svg "chart").',
      '[ref]: ./b.md',
      '`[not](code.md)`',
      '    [indented](code.md)',
      '```',
      '[fenced](code.md)',
      '```',
    ].join('\n');
    expect(linkTargets(markdown)).toEqual(['docs/a.md#part', 'bench/c.svg', './b.md']);
  });

  it('reports a missing file, a missing heading and a path outside the repository', () => {
    expect(brokenLink('README.md', 'docs/nowhere.md')).toMatch(/does not exist/);
    expect(brokenLink('README.md', 'CONTRIBUTING.md#no-such-heading')).toMatch(/names no heading/);
    expect(brokenLink('README.md', '../outside.md')).toMatch(/leaves the repository/);
    expect(brokenLink('docs/api.md', '../README.md#run-it-test-it')).toBeNull();
  });
});
