import { type SQL, sql } from 'drizzle-orm';

/**
 * Turns ormlock's `$n`-placeholder SQL into a Drizzle `SQL` object whose values stay bound
 * parameters, so it runs through whichever driver the Drizzle instance uses. Placeholders are
 * looked for only outside quoted identifiers and string literals, so a quoted name that contains
 * `$1` is left alone.
 */
export function toDrizzleSql(text: string, params: readonly unknown[]): SQL {
  const chunks: SQL[] = [];
  let literalStart = 0;
  let index = 0;
  while (index < text.length) {
    const char = text[index];
    if (char === '"' || char === "'") {
      index = endOfQuoted(text, index, char);
      continue;
    }
    if (char === '$' && isDigit(text.charCodeAt(index + 1))) {
      let end = index + 1;
      while (isDigit(text.charCodeAt(end))) end += 1;
      chunks.push(sql.raw(text.slice(literalStart, index)));
      const position = Number(text.slice(index + 1, end));
      if (position < 1 || position > params.length) throw new RangeError(`placeholder $${position} has no parameter`);
      chunks.push(sql`${params[position - 1]}`);
      literalStart = end;
      index = end;
      continue;
    }
    index += 1;
  }
  chunks.push(sql.raw(text.slice(literalStart)));
  return sql.join(chunks);
}

function endOfQuoted(text: string, start: number, quote: string): number {
  let index = start + 1;
  while (index < text.length) {
    if (text[index] === quote) {
      if (text[index + 1] === quote) {
        index += 2;
        continue;
      }
      return index + 1;
    }
    index += 1;
  }
  return index;
}

function isDigit(code: number): boolean {
  return code >= 48 && code <= 57;
}
