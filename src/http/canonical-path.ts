/**
 * The one form of a path that every routing decision uses (routing to the shim, capture, flags, the
 * 405 answers, rate-limit exemptions): the path a lenient legacy router acts on. Percent-escapes are
 * decoded, duplicate slashes collapsed and a trailing slash ignored, so
 * `/api-v3/registration/patients/ne%77`, `…/new/` and `//api-v3/…/new` are all `…/patients/new`.
 * Dot segments (`.`, `..`, also encoded) have no canonical form here: routers disagree on them, so
 * the front door refuses such a path (`hasDotSegments`).
 */

const ESCAPE = /%[0-9a-fA-F]{2}/;

/** The path part of a request target (before `?` or `#`). */
export function pathPart(url: string): string {
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}

/**
 * Decodes valid `%XX` escapes as UTF-8 bytes; an invalid escape (`%zz`, a lone `%`) stays as typed,
 * which is what a lenient router keeps too.
 */
function decodeEscapes(path: string): string {
  if (!ESCAPE.test(path)) return path;
  const bytes: number[] = [];
  for (let i = 0; i < path.length; i++) {
    const char = path.charCodeAt(i);
    if (char === 37 /* % */ && i + 2 < path.length && isHex(path, i + 1) && isHex(path, i + 2)) {
      bytes.push(Number.parseInt(path.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(path[i] ?? '', 'utf8'));
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

function isHex(text: string, at: number): boolean {
  const c = text.charCodeAt(at);
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/** The canonical form of a request target's path; the query is not part of it. */
export function canonicalPath(url: string): string {
  return `/${segmentsOf(url).join('/')}`;
}

function segmentsOf(url: string): string[] {
  return decodeEscapes(pathPart(url))
    .split('/')
    .filter((segment) => segment !== '');
}

/** Whether the decoded path has a `.` or `..` segment. */
export function hasDotSegments(url: string): boolean {
  return segmentsOf(url).some((segment) => segment === '.' || segment === '..');
}
