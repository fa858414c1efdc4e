/**
 * Quotes one SQL identifier. The only way names reach SQL text in ormlock: a name is wrapped in
 * double quotes with embedded quotes doubled, so it can never end the identifier.
 */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

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
