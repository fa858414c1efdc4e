import { describe } from './duration.js';
import { InvalidLockArgumentError } from './errors.js';

/** PostgreSQL's longest name in bytes (NAMEDATALEN - 1 in a standard build). */
export const MAX_IDENTIFIER_BYTES = 63;

/**
 * Quotes one SQL identifier. The only way names reach SQL text in ormlock: a name is wrapped in
 * double quotes with embedded quotes doubled, so it can never end the identifier.
 *
 * Names PostgreSQL would not keep as given are refused with {@link InvalidLockArgumentError}:
 * longer than 63 bytes (the server silently cuts them, which can name another table) or with a
 * NUL character (which ends the statement text on the wire).
 */
export function quoteIdent(name: string): string {
  const known = quotedNames.get(name);
  if (known !== undefined) return known;
  if (typeof name !== 'string') throw new InvalidLockArgumentError('identifier', `expected a name, got ${describe(name)}`);
  if (name.includes('\0')) throw new InvalidLockArgumentError('identifier', `${describe(name)} contains a NUL character`);
  if (Buffer.byteLength(name, 'utf8') > MAX_IDENTIFIER_BYTES) {
    throw new InvalidLockArgumentError('identifier', `${describe(name)} is longer than PostgreSQL's ${MAX_IDENTIFIER_BYTES}-byte limit for names: the server would cut it to another name`);
  }
  const quoted = `"${name.replaceAll('"', '""')}"`;
  // An app names the same few tables and columns on every call: remember them (a bounded set).
  if (quotedNames.size >= QUOTED_NAMES_KEPT) quotedNames.clear();
  quotedNames.set(name, quoted);
  return quoted;
}

const QUOTED_NAMES_KEPT = 1024;
const quotedNames = new Map<string, string>();

/** Quotes a possibly schema-qualified name given as parts: `['Locks Schema', 'leases']`. */
export function quoteQualified(parts: readonly string[]): string {
  return parts.map(quoteIdent).join('.');
}

let savepointCounter = 0;

/** A fresh savepoint name of ormlock's own making (never caller text). */
export function nextSavepointName(): string {
  savepointCounter = (savepointCounter + 1) % 1_000_000_000;
  return `ormlock_sp_${savepointCounter}`;
}
