/** Every way a lenient router reads the same path: encoded letters and digits, %2F, //, a trailing /, mixed. */
export function spellingsOf(path: string): string[] {
  const hex = (char: string) => `%${char.charCodeAt(0).toString(16).padStart(2, '0')}`;
  const lastSlash = path.lastIndexOf('/');
  const letterAt = path.slice(lastSlash).search(/[a-z]/i) + lastSlash;
  const digitAt = path.search(/\d/);
  const encodedLetter = `${path.slice(0, letterAt)}${hex(path[letterAt]!)}${path.slice(letterAt + 1)}`;
  const spellings = [
    encodedLetter,
    `${path.slice(0, letterAt)}${hex(path[letterAt]!).toUpperCase()}${path.slice(letterAt + 1)}`,
    `${path.slice(0, lastSlash)}%2F${path.slice(lastSlash + 1)}`,
    `${path.slice(0, lastSlash)}%2f${path.slice(lastSlash + 1)}`,
    `/${path}`,
    path.replace('/', '//').replace(/\/([^/]+)$/, '//$1'),
    `${path}/`,
    `${path}//`,
    `/${encodedLetter}/`,
  ];
  if (digitAt !== -1)
    spellings.push(`${path.slice(0, digitAt)}${hex(path[digitAt]!)}${path.slice(digitAt + 1)}`);
  return spellings;
}
