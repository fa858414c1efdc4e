import { Param, SQL, type SQLChunk, StringChunk } from 'drizzle-orm';
import { forEachPlaceholder } from '../core/sql-fragment.js';

/**
 * Turns ormlock's `$n`-placeholder SQL into a Drizzle `SQL` object whose values stay bound
 * parameters, so it runs through whichever driver the Drizzle instance uses. Placeholders are
 * looked for only outside quoted identifiers, string literals and comments, so a quoted name that
 * contains `$1` is left alone. The object is flat (text and parameter chunks), as cheap as
 * Drizzle can build.
 */
export function toDrizzleSql(text: string, params: readonly unknown[]): SQL {
  const chunks: SQLChunk[] = [];
  let literalStart = 0;
  forEachPlaceholder(text, (start, end, position) => {
    if (position < 1 || position > params.length) throw new RangeError(`placeholder $${position} has no parameter`);
    chunks.push(new StringChunk(text.slice(literalStart, start)), paramChunk(params[position - 1]));
    literalStart = end;
  });
  chunks.push(new StringChunk(text.slice(literalStart)));
  return new SQL(chunks);
}

/**
 * A bound parameter as a chunk. Drizzle binds a bare string, number, boolean, bigint or null
 * chunk as a parameter as it is (no SQL can come of it), and does so several times faster than a
 * `Param`, whose encoder it inspects for a type each time. Anything else (arrays, objects,
 * undefined) goes in a `Param`, which Drizzle never reads as SQL.
 */
function paramChunk(value: unknown): SQLChunk {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return value as unknown as SQLChunk;
    default:
      return value === null ? (null as unknown as SQLChunk) : new Param(value);
  }
}
