import { describe } from '../core/duration.js';
import { InvalidLockArgumentError } from '../core/errors.js';
import { type OrderTerm, type SetItem, isPlainObject, qualifiedTable } from '../core/row-lock.js';
import { type SqlFragment, SqlBuilder } from '../core/sql-fragment.js';
import { quoteIdent } from '../core/sql.js';
import type { PrismaModelInfo, PrismaRelationField, PrismaScalarField } from './prisma-model.js';

/**
 * Translates a Prisma `where` on one model into SQL, producing the same predicate Prisma's own
 * query compiler writes for `findMany` (the test suite checks this against `findMany` on generated
 * filters). Covered: scalar fields (shorthand values, `equals`, `in`, `notIn`, `lt`, `lte`, `gt`,
 * `gte`, `not`, `contains`, `startsWith`, `endsWith`, `mode: 'insensitive'`, null checks), Json
 * `equals` / `not`, compound unique keys (`orgId_userId: { … }`), `AND` / `OR` / `NOT`, and
 * relation filters: to-one (`author: { is | isNot }`, the shorthand `author: { …filters }`,
 * `author: null`) and to-many (`posts: { some | every | none }`), nested to any depth.
 * Anything else (list filters, full-text search, Json paths, implicit many-to-many relations) is
 * refused with an {@link InvalidLockArgumentError} that names it: a lock must never run a wider
 * query than asked.
 *
 * Columns of the model are qualified with its table name (as `FROM` names it, unaliased), so the
 * predicate also reads right in a statement that joins other tables. A relation filter is an
 * `EXISTS (SELECT 1 FROM <related> AS ormlock_rN WHERE <join> AND …)` sub-select: it reads the
 * related rows and never locks them (a locking clause does not reach into sub-selects).
 *
 * Like Prisma, `contains` / `startsWith` / `endsWith` and insensitive `equals` pass the value to
 * `LIKE` / `ILIKE` as it is, so `%` and `_` in it act as wildcards.
 */
export function translateWhere(info: PrismaModelInfo, where: unknown): SqlFragment | undefined {
  if (where === undefined) return undefined;
  const builder = new SqlBuilder();
  const scope: Scope = { builder, info, ref: quoteIdent(info.table.name), aliases: aliasMaker('ormlock_r', info.table.name), exact: false };
  const text = whereInput(scope, where, 'where', true);
  return text === EMPTY ? undefined : { text, params: builder.params };
}

/**
 * A fresh alias on each call (`ormlock_r1`, `ormlock_r2` …), never the one name it must not
 * shadow: the table the outer query names unaliased.
 */
export function aliasMaker(prefix: string, avoid: string): () => string {
  let counter = 0;
  return () => {
    let alias: string;
    do alias = `${prefix}${++counter}`;
    while (alias === avoid);
    return alias;
  };
}

/** Where a filter is being translated: the model, how its table is referenced here, and the shared parameters and aliases. */
interface Scope {
  readonly builder: SqlBuilder;
  readonly info: PrismaModelInfo;
  /** The model's table as this level of the statement names it: the quoted table name, or a sub-select's alias. */
  readonly ref: string;
  readonly aliases: () => string;
  /**
   * Whether an unknown (NULL) result must stay NULL rather than count as false: under `NOT` (and
   * inside `isNot` and `every`, which negate their filter) NULL and false part ways. Prisma writes
   * to-one relation filters as joins, so a related row whose filter is NULL makes the relation
   * filter NULL; where that shows, the translation must keep it (see {@link toOne}).
   */
  readonly exact: boolean;
}

/**
 * A filter that filters nothing (`{}`, `AND: []`, `owner: {}`). Prisma drops these where a real
 * condition would count: an `OR` of them is false at the top of `where` and dropped when nested,
 * and `NOT` of one is again nothing. Kept apart from `1=1`, which is a real (true) condition.
 */
const EMPTY = null;
type Condition = string | typeof EMPTY;

const TRUE = '1=1';
const FALSE = '1=0';

function and(parts: Condition[]): Condition {
  const kept = parts.filter((part): part is string => part !== EMPTY);
  if (kept.length === 0) return EMPTY;
  if (kept.length === 1) return kept[0] as string;
  return `(${kept.join(' AND ')})`;
}

function whereInput(scope: Scope, where: unknown, path: string, root = false): Condition {
  if (!isPlainObject(where)) throw new InvalidLockArgumentError(path, `expected an object of filters, got ${describe(where)}`);
  const { info } = scope;
  const parts: Condition[] = [];
  for (const [key, value] of Object.entries(where)) {
    if (value === undefined) continue;
    const at = `${path}.${key}`;
    if (key === 'AND') parts.push(and(listOf(value, at).map((item, i) => whereInput(scope, item, `${at}[${i}]`))));
    else if (key === 'OR') parts.push(or(listOf(value, at).map((item, i) => whereInput(scope, item, `${at}[${i}]`)), root));
    else if (key === 'NOT') {
      const negated = { ...scope, exact: true };
      if (Array.isArray(value)) parts.push(and(value.map((item, i) => not(whereInput(negated, item, `${at}[${i}]`)))));
      else parts.push(not(whereInput(negated, value, at)));
    } else {
      const field = info.fields.get(key);
      const relation = field ? undefined : info.relations.get(key);
      if (field) parts.push(fieldFilter(scope, field, value, at));
      else if (relation) parts.push(relationFilter(scope, relation, value, at));
      else parts.push(compoundKey(scope, key, value, at));
    }
  }
  return and(parts);
}

function listOf(value: unknown, path: string): unknown[] {
  if (Array.isArray(value)) return value;
  if (isPlainObject(value)) return [value];
  throw new InvalidLockArgumentError(path, `expected an array of filters, got ${describe(value)}`);
}

function or(parts: Condition[], root: boolean): Condition {
  const kept = parts.filter((part): part is string => part !== EMPTY);
  if (kept.length === 0) return root ? FALSE : EMPTY;
  if (kept.length === 1) return kept[0] as string;
  return `(${kept.join(' OR ')})`;
}

function not(part: Condition): Condition {
  return part === EMPTY ? EMPTY : `(NOT ${part})`;
}

/** `orgId_userId: { orgId: 1, userId: 2 }`: the default name of a compound id or unique key. */
function compoundKey(scope: Scope, key: string, value: unknown, path: string): Condition {
  const { info } = scope;
  const names = key.split('_');
  const isCompound =
    names.length > 1 &&
    names.every((name) => info.fields.has(name)) &&
    isPlainObject(value) &&
    Object.keys(value).length === names.length &&
    names.every((name) => Object.hasOwn(value, name));
  if (!isCompound) {
    throw new InvalidLockArgumentError(
      path,
      `unsupported filter: ${describe(key)} is neither a field nor a relation of ${info.name} (custom-named compound keys are not supported by $lock; filter by the fields instead)`,
    );
  }
  const record = value as Record<string, unknown>;
  return and(names.map((name) => equalsValue(scope, info.fields.get(name) as PrismaScalarField, record[name], `${path}.${name}`, false)));
}

const TO_ONE_KEYS = new Set(['is', 'isNot']);
const TO_MANY_KEYS = new Set(['some', 'every', 'none']);

/**
 * A relation filter. To-one: `{ is }`, `{ isNot }`, `null`, or the related model's filters as
 * they are (the shorthand for `is`). To-many: `{ some }`, `{ every }`, `{ none }`.
 */
function relationFilter(scope: Scope, relation: PrismaRelationField, value: unknown, path: string): Condition {
  if (relation.problem !== undefined) throw new InvalidLockArgumentError(path, `unsupported filter: ${relation.problem}`);
  if (relation.isList) return toMany(scope, relation, value, path);
  if (value === null) return isNull(scope, relation);
  if (!isPlainObject(value)) throw new InvalidLockArgumentError(path, `filter the relation ${relation.name} with { is }, { isNot }, null or ${relation.model}'s own filters, got ${describe(value)}`);
  const keys = Object.keys(value).filter((key) => value[key] !== undefined);
  const target = relation.target();
  const wrapped = keys.length > 0 && keys.every((key) => TO_ONE_KEYS.has(key) && !target.fields.has(key) && !target.relations.has(key));
  // The shorthand with nothing in it filters nothing, as in Prisma; `{ is: {} }` or `{ AND: [] }`
  // asks for a related row.
  if (keys.length === 0) return EMPTY;
  if (!wrapped) return toOne(scope, relation, value, path, 'is');
  const parts: Condition[] = [];
  for (const key of keys) {
    const nested = value[key];
    const at = `${path}.${key}`;
    if (key === 'is') parts.push(nested === null ? isNull(scope, relation) : toOne(scope, relation, nested, at, 'is'));
    else parts.push(nested === null ? not(isNull(scope, relation)) : toOne(scope, relation, nested, at, 'isNot'));
  }
  return and(parts);
}

/** A sub-select on the related table, under a fresh alias, and the condition joining it to this row. */
function subSelect(scope: Scope, relation: PrismaRelationField): { from: string; join: string; alias: string } {
  const alias = quoteIdent(scope.aliases());
  const join = relation.on.map((pair) => `${alias}.${quoteIdent(pair.related)} = ${scope.ref}.${quoteIdent(pair.own)}`).join(' AND ');
  return { from: `FROM ${qualifiedTable(relation.target().table)} AS ${alias}`, join, alias };
}

/** `filter` on the related model, translated inside a sub-select aliased `alias` (a fresh top-level `where`). */
function relatedWhere(scope: Scope, relation: PrismaRelationField, alias: string, where: unknown, path: string, exact: boolean): Condition {
  return whereInput({ ...scope, info: relation.target(), ref: alias, exact }, where, path, true);
}

function exists(from: string, conditions: Condition[]): string {
  return `EXISTS (SELECT 1 ${from} WHERE ${and(conditions) as string})`;
}

/**
 * `is` / `isNot` on a to-one relation. Prisma joins the related row: `is` is "there is one, and
 * the filter holds on it", `isNot` is "there is none, or NOT filter on it", so a filter that is
 * NULL on the related row makes both NULL. Where NULL and false read the same (no `NOT` above),
 * this is an `EXISTS` the planner can turn into a semi-join; elsewhere the filter's own value is
 * read with a scalar sub-select (a to-one relation has at most one related row), keeping the NULL.
 */
function toOne(scope: Scope, relation: PrismaRelationField, where: unknown, path: string, kind: 'is' | 'isNot'): Condition {
  const row = subSelect(scope, relation);
  const filter = relatedWhere(scope, relation, row.alias, where, path, scope.exact || kind === 'isNot');
  if (filter === EMPTY) return kind === 'is' ? exists(row.from, [row.join]) : `(NOT ${exists(row.from, [row.join])})`;
  if (!scope.exact && kind === 'is') return exists(row.from, [row.join, filter]);
  const any = subSelect(scope, relation);
  const present = exists(any.from, [any.join]);
  if (!scope.exact) return `((NOT ${present}) OR ${exists(row.from, [row.join, `(NOT ${filter})`])})`;
  const value = `(SELECT ${filter} ${row.from} WHERE ${row.join} LIMIT 1)`;
  return kind === 'is' ? `(${present} AND ${value})` : `((NOT ${present}) OR (NOT ${value}))`;
}

/**
 * `some` / `every` / `none` on a to-many relation, as `EXISTS` / `NOT EXISTS`: always true or
 * false, as Prisma's sub-selects are. `every` is "no related row fails the filter"; a row the
 * filter is NULL for does not fail it.
 */
function toMany(scope: Scope, relation: PrismaRelationField, value: unknown, path: string): Condition {
  if (!isPlainObject(value)) throw new InvalidLockArgumentError(path, `filter the to-many relation ${relation.name} with { some }, { every } or { none }, got ${describe(value)}`);
  const parts: Condition[] = [];
  for (const [key, where] of Object.entries(value)) {
    if (where === undefined) continue;
    const at = `${path}.${key}`;
    if (!TO_MANY_KEYS.has(key)) throw new InvalidLockArgumentError(at, `unsupported filter on the to-many relation ${relation.name} (expected some, every or none)`);
    const sub = subSelect(scope, relation);
    const filter = relatedWhere(scope, relation, sub.alias, where, at, key === 'every');
    if (key === 'some') parts.push(exists(sub.from, [sub.join, filter]));
    else if (key === 'none') parts.push(`(NOT ${exists(sub.from, [sub.join, filter])})`);
    else parts.push(filter === EMPTY ? TRUE : `(NOT ${exists(sub.from, [sub.join, `(NOT ${filter})`])})`);
  }
  return and(parts);
}

/**
 * `relation: null` / `{ is: null }`: on the side holding the foreign key, its columns are all NULL
 * (what Prisma checks); on the other side, no row points here.
 */
function isNull(scope: Scope, relation: PrismaRelationField): Condition {
  if (relation.holdsForeignKey) return and(relation.on.map((pair) => `${scope.ref}.${quoteIdent(pair.own)} IS NULL`));
  const sub = subSelect(scope, relation);
  return `(NOT ${exists(sub.from, [sub.join])})`;
}

const FILTER_KEYS = new Set(['equals', 'in', 'notIn', 'lt', 'lte', 'gt', 'gte', 'not', 'contains', 'startsWith', 'endsWith', 'mode']);
const NESTED_NOT_KEYS = new Set(['equals', 'in', 'notIn', 'lt', 'lte', 'gt', 'gte', 'contains', 'startsWith', 'endsWith']);
const STRING_ONLY = new Set(['contains', 'startsWith', 'endsWith', 'mode']);

function isValueObject(value: unknown): boolean {
  return value instanceof Date || value instanceof Uint8Array || isDecimalLike(value);
}

function isDecimalLike(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { toFixed?: unknown }).toFixed === 'function' &&
    typeof (value as { isNaN?: unknown }).isNaN === 'function' &&
    typeof (value as { d?: unknown }).d !== 'undefined'
  );
}

function fieldFilter(scope: Scope, field: PrismaScalarField, value: unknown, path: string): Condition {
  if (field.isList) throw new InvalidLockArgumentError(path, `unsupported filter: list field ${field.name} (has, hasEvery …) is not supported by $lock`);
  if (field.type === 'Json') return jsonFilter(scope, field, value, path);
  if (value === null || !isPlainObject(value) || isValueObject(value)) return equalsValue(scope, field, value, path, false);
  const filter = value;
  for (const key of Object.keys(filter)) {
    if (!FILTER_KEYS.has(key)) throw new InvalidLockArgumentError(`${path}.${key}`, `unsupported filter on ${field.name}`);
    if (STRING_ONLY.has(key) && field.type !== 'String' && filter[key] !== undefined) {
      throw new InvalidLockArgumentError(`${path}.${key}`, `only applies to String fields, and ${field.name} is ${field.type}`);
    }
  }
  const mode = filter['mode'];
  if (mode !== undefined && mode !== 'default' && mode !== 'insensitive') {
    throw new InvalidLockArgumentError(`${path}.mode`, `expected 'default' or 'insensitive', got ${describe(mode)}`);
  }
  const insensitive = mode === 'insensitive';
  const parts: Condition[] = [];
  for (const [key, operand] of Object.entries(filter)) {
    if (operand === undefined || key === 'mode') continue;
    if (key === 'not') parts.push(notFilter(scope, field, operand, `${path}.not`, insensitive));
    else parts.push(operator(scope, field, key, operand, `${path}.${key}`, insensitive));
  }
  return and(parts);
}

function notFilter(scope: Scope, field: PrismaScalarField, operand: unknown, path: string, insensitive: boolean): Condition {
  if (operand === null) return `${col(scope, field)} IS NOT NULL`;
  if (!isPlainObject(operand) || isValueObject(operand)) return equalsValue(scope, field, operand, path, insensitive, true);
  const parts: Condition[] = [];
  for (const [key, nested] of Object.entries(operand)) {
    if (nested === undefined) continue;
    if (!NESTED_NOT_KEYS.has(key)) throw new InvalidLockArgumentError(`${path}.${key}`, `unsupported filter inside not on ${field.name}`);
    if (STRING_ONLY.has(key) && field.type !== 'String') throw new InvalidLockArgumentError(`${path}.${key}`, `only applies to String fields, and ${field.name} is ${field.type}`);
    parts.push(operator(scope, field, key, nested, `${path}.${key}`, insensitive, true));
  }
  return and(parts);
}

function col(scope: Scope, field: PrismaScalarField): string {
  return `${scope.ref}.${quoteIdent(field.column)}`;
}

function operator(scope: Scope, field: PrismaScalarField, key: string, operand: unknown, path: string, insensitive: boolean, negate = false): string {
  const { builder } = scope;
  switch (key) {
    case 'equals':
      return equalsValue(scope, field, operand, path, insensitive, negate);
    case 'in':
    case 'notIn': {
      if (!Array.isArray(operand)) throw new InvalidLockArgumentError(path, `expected an array, got ${describe(operand)}`);
      const excluded = (key === 'notIn') !== negate;
      if (operand.length === 0) return excluded ? TRUE : FALSE;
      const target = insensitive ? `LOWER(${col(scope, field)})` : col(scope, field);
      const items = operand.map((item, i) => {
        const param = builder.param(scalarValue(field, item, `${path}[${i}]`));
        return insensitive ? `LOWER(${param}::text)` : param;
      });
      return `${target} ${excluded ? 'NOT IN' : 'IN'} (${items.join(',')})`;
    }
    case 'lt':
    case 'lte':
    case 'gt':
    case 'gte': {
      const param = builder.param(scalarValue(field, operand, path));
      const op = { lt: '<', lte: '<=', gt: '>', gte: '>=' }[key];
      const text = insensitive ? `LOWER(${col(scope, field)}) ${op} LOWER(${param}::text)` : `${col(scope, field)} ${op} ${param}`;
      return negate ? `(NOT ${text})` : text;
    }
    case 'contains':
    case 'startsWith':
    case 'endsWith': {
      const param = `${builder.param(scalarValue(field, operand, path))}::text`;
      const pattern = key === 'contains' ? `('%' || ${param} || '%')` : key === 'startsWith' ? `(${param} || '%')` : `('%' || ${param})`;
      const like = `${negate ? 'NOT ' : ''}${insensitive ? 'ILIKE' : 'LIKE'}`;
      return `${insensitive ? col(scope, field) : `${col(scope, field)}::text`} ${like} ${pattern}`;
    }
    default:
      throw new InvalidLockArgumentError(path, `unsupported filter on ${field.name}`);
  }
}

function equalsValue(scope: Scope, field: PrismaScalarField, value: unknown, path: string, insensitive: boolean, negate = false): string {
  const { builder } = scope;
  if (value === null) return `${col(scope, field)} IS ${negate ? 'NOT ' : ''}NULL`;
  const param = builder.param(scalarValue(field, value, path));
  if (insensitive) return `${col(scope, field)} ${negate ? 'NOT ILIKE' : 'ILIKE'} ${param}::text`;
  return `${col(scope, field)} ${negate ? '<>' : '='} ${param}`;
}

function jsonFilter(scope: Scope, field: PrismaScalarField, value: unknown, path: string): Condition {
  if (!isPlainObject(value)) throw new InvalidLockArgumentError(path, `filter Json field ${field.name} with { equals } or { not }`);
  const parts: Condition[] = [];
  for (const [key, operand] of Object.entries(value)) {
    if (operand === undefined) continue;
    if (key !== 'equals' && key !== 'not') throw new InvalidLockArgumentError(`${path}.${key}`, `unsupported Json filter on ${field.name} (only equals and not)`);
    if (operand === null || typeof operand === 'symbol' || (typeof operand === 'object' && !Array.isArray(operand) && !isPlainObject(operand))) {
      throw new InvalidLockArgumentError(`${path}.${key}`, 'Json null filters (Prisma.JsonNull / DbNull / AnyNull) are not supported by $lock');
    }
    parts.push(`${col(scope, field)}::jsonb ${key === 'equals' ? '=' : '<>'} ${scope.builder.param(JSON.stringify(operand))}::jsonb`);
  }
  return and(parts);
}

const NUMBER_TYPES = new Set(['Int', 'Float']);

/** Checks a value against the field's type and returns what to bind. */
function scalarValue(field: PrismaScalarField, value: unknown, path: string): unknown {
  const bad = (): never => {
    throw new InvalidLockArgumentError(path, `expected a value for ${field.type} field ${field.name}, got ${describe(value)}`);
  };
  if (value === null || value === undefined) bad();
  if (field.kind === 'enum') return typeof value === 'string' ? value : bad();
  switch (field.type) {
    case 'String':
      return typeof value === 'string' ? value : bad();
    case 'Boolean':
      return typeof value === 'boolean' ? value : bad();
    case 'Int':
    case 'Float':
      return typeof value === 'number' && Number.isFinite(value) && (field.type === 'Float' || Number.isInteger(value)) ? value : bad();
    case 'BigInt':
      if (typeof value === 'bigint') return value.toString();
      return typeof value === 'number' && Number.isSafeInteger(value) ? String(value) : bad();
    case 'Decimal':
      if (isDecimalLike(value)) return (value as { toString(): string }).toString();
      return (typeof value === 'number' && Number.isFinite(value)) || (typeof value === 'string' && value.trim() !== '' && !Number.isNaN(Number(value))) ? String(value) : bad();
    case 'DateTime':
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? bad() : value.toISOString();
      return typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? value : bad();
    case 'Bytes':
      return value instanceof Uint8Array ? value : bad();
    default:
      return NUMBER_TYPES.has(field.type) ? value : bad();
  }
}

/** Translates Prisma's `orderBy` (`{ field: 'asc' }`, `{ field: { sort, nulls } }`, or an array of them). */
export function translateOrderBy(info: PrismaModelInfo, orderBy: unknown): OrderTerm[] | undefined {
  if (orderBy === undefined) return undefined;
  const items = Array.isArray(orderBy) ? orderBy : [orderBy];
  const terms: OrderTerm[] = [];
  items.forEach((item, index) => {
    const path = Array.isArray(orderBy) ? `orderBy[${index}]` : 'orderBy';
    if (!isPlainObject(item)) throw new InvalidLockArgumentError(path, `expected { field: 'asc' | 'desc' }, got ${describe(item)}`);
    for (const [key, value] of Object.entries(item)) {
      if (value === undefined) continue;
      const field = info.fields.get(key);
      if (!field) throw new InvalidLockArgumentError(`${path}.${key}`, `unsupported order: not a scalar field of ${info.name}`);
      if (value === 'asc' || value === 'desc') {
        terms.push({ column: field.column, direction: value });
        continue;
      }
      if (isPlainObject(value) && (value['sort'] === 'asc' || value['sort'] === 'desc') && Object.keys(value).every((k) => k === 'sort' || k === 'nulls')) {
        const nulls = value['nulls'];
        if (nulls !== undefined && nulls !== 'first' && nulls !== 'last') throw new InvalidLockArgumentError(`${path}.${key}.nulls`, `expected 'first' or 'last'`);
        terms.push({ column: field.column, direction: value['sort'], nulls: nulls as 'first' | 'last' | undefined });
        continue;
      }
      throw new InvalidLockArgumentError(`${path}.${key}`, `expected 'asc', 'desc' or { sort, nulls }, got ${describe(value)}`);
    }
  });
  return terms;
}

const ARITHMETIC: Record<string, string> = { increment: '+', decrement: '-', multiply: '*', divide: '/' };

/**
 * Translates the `set` of a claim, as Prisma's `data` of an update: plain values, `{ set }`, and
 * `{ increment | decrement | multiply | divide }` on numeric fields.
 */
export function translateSet(info: PrismaModelInfo, set: unknown): SetItem[] | undefined {
  if (set === undefined) return undefined;
  if (!isPlainObject(set)) throw new InvalidLockArgumentError('set', `expected an object of field values, got ${describe(set)}`);
  const items: SetItem[] = [];
  for (const [key, value] of Object.entries(set)) {
    if (value === undefined) continue;
    const path = `set.${key}`;
    const field = info.fields.get(key);
    if (!field) throw new InvalidLockArgumentError(path, `not a scalar field of ${info.name}`);
    let operand: unknown = value;
    if (isPlainObject(value) && field.type !== 'Json' && !isValueObject(value)) {
      const [op, ...rest] = Object.keys(value);
      if (op === undefined || rest.length > 0) throw new InvalidLockArgumentError(path, `expected a value or one of { set | increment | decrement | multiply | divide }`);
      operand = value[op];
      if (op !== 'set') {
        const sign = ARITHMETIC[op];
        if (sign === undefined || !['Int', 'Float', 'BigInt', 'Decimal'].includes(field.type)) {
          throw new InvalidLockArgumentError(`${path}.${op}`, `unsupported update of ${field.type} field ${field.name}`);
        }
        items.push({ column: field.column, value: { text: `${quoteIdent(field.column)} ${sign} $1`, params: [scalarValue(field, operand, `${path}.${op}`)] } });
        continue;
      }
    }
    if (operand === null) items.push({ column: field.column, value: { text: 'NULL', params: [] } });
    else if (field.type === 'Json') items.push({ column: field.column, value: { text: '$1', params: [JSON.stringify(operand)] } });
    else items.push({ column: field.column, value: { text: '$1', params: [scalarValue(field, operand, path)] } });
  }
  return items;
}
