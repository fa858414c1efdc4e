import { Column, Param, Placeholder, SQL, StringChunk, is } from 'drizzle-orm';
import type { PgDialect } from 'drizzle-orm/pg-core';
import type { SqlFragment } from '../core/sql-fragment.js';

type ColumnCasing = { getColumnCasing(column: Column): string };

// Where a Drizzle table keeps its name, its schema and whether it is an alias (`alias(table, 'a')`).
const TABLE_NAME = Symbol.for('drizzle:Name');
const TABLE_SCHEMA = Symbol.for('drizzle:Schema');
const IS_ALIAS = Symbol.for('drizzle:IsAlias');

/**
 * Renders a caller's Drizzle condition (`eq(jobs.status, 'pending')`, `and(…)`, `inArray(…)`,
 * sql`…` with columns and values) to text and bound values, exactly as `dialect.sqlToQuery` does.
 *
 * The conditions a lock call takes are made of a handful of chunk kinds: text, nested `SQL`,
 * columns, parameters and plain values, and lists of them. Those are rendered here in one pass.
 * Drizzle's renderer asks every chunk in turn whether it is each of about a dozen kinds, which
 * costs more than the rest of a claim's JavaScript together. Anything else (a table, a sub-query,
 * a placeholder, a value whose column maps it to SQL, inlined parameters, chunks of another copy
 * of drizzle-orm) hands the whole condition to `dialect.sqlToQuery`, so the result never differs
 * from Drizzle's own (a test compares the two over every kind of condition).
 */
export function renderCondition(dialect: PgDialect, value: SQL): SqlFragment {
  const fast = renderConditionFast(dialect, value);
  if (fast !== undefined) return fast;
  const query = dialect.sqlToQuery(value);
  return { text: query.sql, params: query.params };
}

/** The one-pass rendering of {@link renderCondition}, or undefined where Drizzle's renderer is needed. */
export function renderConditionFast(dialect: PgDialect, value: SQL): SqlFragment | undefined {
  const casing = (dialect as unknown as { casing?: ColumnCasing }).casing;
  if (casing === undefined || typeof casing.getColumnCasing !== 'function') return undefined;
  const out: Rendering = { text: '', params: [] };
  return renderChunks(value, dialect, casing, out) ? out : undefined;
}

interface Rendering {
  text: string;
  params: unknown[];
}

/** Appends `sql`'s chunks to `out`; false when a chunk needs Drizzle's own renderer. */
function renderChunks(sql: SQL, dialect: PgDialect, casing: ColumnCasing, out: Rendering): boolean {
  if ((sql as unknown as { shouldInlineParams?: boolean }).shouldInlineParams) return false;
  for (const chunk of sql.queryChunks) {
    if (!renderChunk(chunk, dialect, casing, out)) return false;
  }
  return true;
}

function renderChunk(chunk: unknown, dialect: PgDialect, casing: ColumnCasing, out: Rendering): boolean {
  switch (typeof chunk) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'bigint':
      return bind(chunk, out);
    case 'undefined':
      return true;
    case 'object':
      break;
    default:
      return false;
  }
  if (chunk === null) return bind(null, out);
  if (chunk instanceof StringChunk) {
    out.text += chunk.value.join('');
    return true;
  }
  if (chunk instanceof SQL) return renderChunks(chunk, dialect, casing, out);
  if (chunk instanceof Column) {
    const table = chunk.table as unknown as Record<symbol, unknown>;
    const schema = table[TABLE_SCHEMA] as string | undefined;
    const name = dialect.escapeName(table[TABLE_NAME] as string);
    const qualified = table[IS_ALIAS] || schema === undefined ? name : `${dialect.escapeName(schema)}.${name}`;
    out.text += `${qualified}.${dialect.escapeName(casing.getColumnCasing(chunk))}`;
    return true;
  }
  if (chunk instanceof Param) {
    const raw: unknown = chunk.value;
    if (raw === null) return bind(null, out);
    if (raw instanceof Placeholder) return false;
    const mapped: unknown = chunk.encoder.mapToDriverValue(raw);
    // A column type may map a value to SQL (Drizzle then renders that SQL in its place).
    if (typeof mapped === 'object' && mapped !== null && is(mapped, SQL)) return false;
    return bind(mapped, out);
  }
  if (Array.isArray(chunk)) {
    out.text += '(';
    for (let index = 0; index < chunk.length; index += 1) {
      if (index > 0) out.text += ', ';
      if (!renderChunk(chunk[index], dialect, casing, out)) return false;
    }
    out.text += ')';
    return true;
  }
  return false;
}

function bind(value: unknown, out: Rendering): true {
  out.params.push(value);
  out.text += `$${out.params.length}`;
  return true;
}
