import { Decimal } from '@prisma/client/runtime/client';
import { describe } from '../core/duration.js';
import { InvalidLockArgumentError } from '../core/errors.js';
import type { Row } from '../core/executor.js';
import type { SelectColumn, TableRef } from '../core/row-lock.js';
import { type DeclaredRelations, parseDeclaredRelations } from './prisma-schema-relations.js';

/** One scalar field of a Prisma model, with its database column. */
export interface PrismaScalarField {
  /** The Prisma field name. */
  readonly name: string;
  /** The column in the database (`@map`), or the field name. */
  readonly column: string;
  /** Prisma's scalar type (`Int`, `Decimal`, `DateTime`, `Json` …), or the enum's name. */
  readonly type: string;
  readonly kind: 'scalar' | 'enum';
  readonly isList: boolean;
}

/**
 * One relation field of a Prisma model (`fromAccount`, `outgoing`), with the columns that join
 * its table to the related model's table.
 */
export interface PrismaRelationField {
  /** The Prisma field name. */
  readonly name: string;
  /** The related model's name. */
  readonly model: string;
  /** A to-many relation (`Transfer[]`). */
  readonly isList: boolean;
  /** Whether this model's table holds the foreign key (`@relation(fields: […])` on this side). */
  readonly holdsForeignKey: boolean;
  /**
   * Column pairs that join the two tables: `own` (on this model's table) = `related` (on the
   * related model's table). Empty when the relation cannot be joined, and then `problem` says why.
   */
  readonly on: readonly { readonly own: string; readonly related: string }[];
  /** Why this relation cannot be used in a lock (e.g. an implicit many-to-many relation), if it cannot. */
  readonly problem?: string;
  /** The related model's info. */
  readonly target: () => PrismaModelInfo;
}

/** A Prisma model as ormlock needs it: where its table is, its scalar fields and its relation fields. */
export interface PrismaModelInfo {
  readonly name: string;
  readonly table: TableRef;
  readonly fields: ReadonlyMap<string, PrismaScalarField>;
  readonly relations: ReadonlyMap<string, PrismaRelationField>;
  readonly columns: readonly SelectColumn[];
  /** The primary key's column, when it is one field (`@id`, not `@@id`). */
  readonly key: string | undefined;
  /** The scalar fields whose raw values {@link toModelRows} converts (Decimal, BigInt, DateTime, Bytes, and lists). */
  readonly converted: readonly PrismaScalarField[];
  /** Whether a row read with node-postgres (the adapter's parsers, see adapter-pool.ts) and {@link toModelRows} is Prisma's own: no list fields. */
  readonly plainRows: boolean;
}

interface RuntimeField {
  name: string;
  kind: string;
  type: string;
  dbName?: string | null;
  isList?: boolean;
  relationName?: string | null;
}
interface RuntimeModel {
  dbName?: string | null;
  schema?: string | null;
  fields: RuntimeField[];
}
interface RuntimeDataModel {
  models: Record<string, RuntimeModel>;
}

/**
 * Reads model → table and field → column mappings from the client's runtime data model (what
 * `prisma generate` embeds in the client: `@@map`, `@map`, `@@schema`), and the foreign keys of
 * relations from the schema the client embeds. Models without `@@schema` use the adapter's
 * `schema` option if it has one, else the connection's `search_path`.
 */
export function modelResolver(client: object): (model: unknown) => PrismaModelInfo {
  const cache = new Map<string, PrismaModelInfo>();
  let declared: DeclaredRelations | undefined;
  const declaredRelations = (): DeclaredRelations => {
    if (declared === undefined) {
      const schema = (client as { _engineConfig?: { inlineSchema?: unknown } })._engineConfig?.inlineSchema;
      declared = typeof schema === 'string' ? parseDeclaredRelations(schema) : new Map();
    }
    return declared;
  };
  const resolve = (model: unknown): PrismaModelInfo => {
    if (typeof model !== 'string') throw new InvalidLockArgumentError('model', `expected a model name such as 'Account', got ${describe(model)}`);
    const cached = cache.get(model);
    if (cached) return cached;
    const dataModel = (client as { _runtimeDataModel?: RuntimeDataModel })._runtimeDataModel;
    if (!dataModel?.models) throw new InvalidLockArgumentError('model', 'this Prisma client exposes no runtime data model (ormlock/prisma needs Prisma ≥ 7)');
    if (!Object.hasOwn(dataModel.models, model)) {
      const known = Object.keys(dataModel.models);
      throw new InvalidLockArgumentError('model', `unknown model ${describe(model)}; the client's models are ${known.map((m) => `'${m}'`).join(', ')}`);
    }
    const runtime = dataModel.models[model] as RuntimeModel;
    // Prisma 7's runtime data model says nothing of scalar lists (`tags String[]`): the schema does.
    const declaredFields = declaredRelations().get(model);
    const fields = new Map<string, PrismaScalarField>();
    const relations = new Map<string, PrismaRelationField>();
    for (const field of runtime.fields) {
      if (field.kind === 'object' && Object.hasOwn(dataModel.models, field.type)) {
        relations.set(field.name, relationField(dataModel, declaredRelations(), model, field, () => resolve(field.type)));
        continue;
      }
      if (field.kind !== 'scalar' && field.kind !== 'enum') continue;
      fields.set(field.name, {
        name: field.name,
        column: field.dbName ?? field.name,
        type: field.type,
        kind: field.kind,
        isList: field.isList === true || declaredFields?.get(field.name)?.isList === true,
      });
    }
    const scalars = [...fields.values()];
    const info: PrismaModelInfo = {
      name: model,
      table: { schema: runtime.schema ?? adapterSchema(client) ?? null, name: runtime.dbName ?? model },
      fields,
      relations,
      columns: scalars.map((field) => ({ column: field.column, as: field.name, cast: castOf(field, declaredFields?.get(field.name)) })),
      key: keyColumn(fields, declaredFields),
      converted: scalars.filter((field) => field.isList || CONVERTED_TYPES.has(field.type)),
      // Rows read straight from node-postgres decode exactly as Prisma's for these: no lists
      // (their element parsing differs), and fields known from the schema.
      plainRows: declaredFields !== undefined && scalars.every((field) => !field.isList && declaredFields.has(field.name)),
    };
    cache.set(model, info);
    return info;
  };
  return resolve;
}

/** The column of the model's one `@id` field, if the schema declares exactly one. */
function keyColumn(fields: ReadonlyMap<string, PrismaScalarField>, declared: ReadonlyMap<string, { readonly isId: boolean }> | undefined): string | undefined {
  const ids = [...(declared ?? [])].filter(([name, field]) => field.isId && fields.has(name));
  return ids.length === 1 ? fields.get(ids[0]![0])!.column : undefined;
}

function columnOf(model: RuntimeModel | undefined, fieldName: string): string | undefined {
  const field = model?.fields.find((f) => f.name === fieldName && (f.kind === 'scalar' || f.kind === 'enum'));
  return field === undefined ? undefined : (field.dbName ?? field.name);
}

/**
 * Pairs the columns of a relation. The side with `@relation(fields, references)` holds the foreign
 * key; the other side (a list, or a one-to-one back relation) takes the pairs from its opposite
 * field, found by `relationName` in the related model.
 */
function relationField(
  dataModel: RuntimeDataModel,
  declared: DeclaredRelations,
  model: string,
  field: RuntimeField,
  target: () => PrismaModelInfo,
): PrismaRelationField {
  const own = declared.get(model)?.get(field.name);
  const base = { name: field.name, model: field.type, isList: own?.isList ?? field.isList === true, target };
  if (own === undefined) {
    return { ...base, holdsForeignKey: false, on: [], problem: `the client embeds no schema that declares ${model}.${field.name}` };
  }
  const ownModel = dataModel.models[model];
  const relatedModel = dataModel.models[field.type];
  const pairs = (fromModel: RuntimeModel | undefined, from: readonly string[], toModel: RuntimeModel | undefined, to: readonly string[]) => {
    if (from.length === 0 || from.length !== to.length) return undefined;
    const result: { from: string; to: string }[] = [];
    for (const [i, name] of from.entries()) {
      const fromColumn = columnOf(fromModel, name);
      const toColumn = columnOf(toModel, to[i] as string);
      if (fromColumn === undefined || toColumn === undefined) return undefined;
      result.push({ from: fromColumn, to: toColumn });
    }
    return result;
  };
  if (own.fields.length > 0) {
    const on = pairs(ownModel, own.fields, relatedModel, own.references);
    if (on) return { ...base, holdsForeignKey: true, on: on.map((p) => ({ own: p.from, related: p.to })) };
    return { ...base, holdsForeignKey: true, on: [], problem: `cannot read the foreign key of ${model}.${field.name} from the schema` };
  }
  const opposite = relatedModel?.fields.find(
    (f) => f.kind === 'object' && f.type === model && f.relationName === field.relationName && !(field.type === model && f.name === field.name),
  );
  const oppositeDeclared = opposite === undefined ? undefined : declared.get(field.type)?.get(opposite.name);
  if (oppositeDeclared === undefined || oppositeDeclared.fields.length === 0) {
    return { ...base, holdsForeignKey: false, on: [], problem: `${model}.${field.name} is an implicit many-to-many relation (no foreign key on either side)` };
  }
  const on = pairs(relatedModel, oppositeDeclared.fields, ownModel, oppositeDeclared.references);
  if (on) return { ...base, holdsForeignKey: false, on: on.map((p) => ({ own: p.to, related: p.from })) };
  return { ...base, holdsForeignKey: false, on: [], problem: `cannot read the foreign key of ${field.type}.${opposite?.name ?? '?'} from the schema` };
}

function adapterSchema(client: object): string | undefined {
  const schema = (client as { _engineConfig?: { adapter?: { options?: { schema?: unknown } } } })._engineConfig?.adapter?.options?.schema;
  return typeof schema === 'string' && schema.length > 0 ? schema : undefined;
}

/**
 * How Prisma reads a column that drivers would not hand over as its values: a `money` column's
 * text ('-$1,234.56') is no number, and node-postgres leaves a list of enums as its literal ('{a,b}').
 */
function castOf(field: PrismaScalarField, declared: { readonly nativeType: string | undefined } | undefined): SelectColumn['cast'] {
  if (declared?.nativeType === 'Money') return 'numeric';
  if (field.kind === 'enum' && field.isList) return 'textArray';
  return undefined;
}

/**
 * Turns rows of a raw query (columns already aliased to field names) into the values Prisma's own
 * queries return. `$queryRawUnsafe` already decodes most types; this makes the model's declared
 * types certain: `Decimal` as Prisma's Decimal, `BigInt` as bigint, `DateTime` as Date (a time of
 * day on 1970-01-01, as Prisma reads `@db.Time`), `Bytes` as Uint8Array; element by element in lists.
 */
export function toModelRows<T>(info: PrismaModelInfo, rows: Row[]): T[] {
  const converted = info.converted;
  if (converted.length === 0) return rows as T[];
  for (const row of rows) {
    for (const field of converted) {
      const value = row[field.name];
      if (value === null || value === undefined) {
        // Prisma reads a NULL list as an empty one.
        if (field.isList && value === null) row[field.name] = [];
        continue;
      }
      row[field.name] = Array.isArray(value) ? value.map((item: unknown) => (item === null ? null : toFieldValue(field.type, item))) : toFieldValue(field.type, value);
    }
  }
  return rows as T[];
}

/** The field types {@link toModelRows} converts. */
const CONVERTED_TYPES = new Set(['Decimal', 'BigInt', 'DateTime', 'Bytes']);

function toFieldValue(type: string, value: unknown): unknown {
  switch (type) {
    case 'Decimal':
      return Decimal.isDecimal(value) ? value : new Decimal(String(value));
    case 'BigInt':
      return typeof value === 'bigint' ? value : BigInt(value as string | number);
    case 'DateTime':
      return value instanceof Date ? value : new Date(dateText(value as string));
    case 'Bytes':
      return value instanceof Uint8Array && value.constructor === Uint8Array ? value : new Uint8Array(value as ArrayLike<number>);
    default:
      return value;
  }
}

/** A time of day (`17:50:00.123456`, from a `time` column) is read as that time on 1970-01-01 UTC, as Prisma does. */
function dateText(text: string): string {
  return /^\d{2}:\d{2}/.test(text) ? `1970-01-01T${text}Z` : text;
}
